"""Every metric ganzoo reports, by name: which way is better, what computing it needs, and where
its protocol is recorded. No torch here: config checks (metrics.best, objective) and
`ganzoo report` read it.

A score of a part of a model carries the part as a prefix ("local1/modes_covered"); its
entry is the name after the last "/".
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    needs: str        # "modes": 2-D data; "inception"/"vgg16": the extractor's weights; "classifier": labels
    protocol: str     # the key of metrics.jsonl's "protocol" record that describes how it was computed ("" = none)
    doc: str


METRICS: Dict[str, Metric] = {m.name: m for m in (
    # 2-D data (metrics/toy.py)
    Metric("modes_covered", True, "modes", "", "modes with at least min_mode_count high-quality samples"),
    Metric("high_quality", True, "modes", "", "fraction of samples within hq_std std of their nearest mode"),
    Metric("reverse_kl", False, "modes", "", "KL(generated mode histogram || uniform)"),
    Metric("mmd", False, "samples", "", "squared MMD to reference samples (Gaussian kernels)"),
    Metric("nn_train", False, "finite", "", "mean distance from a sample to its nearest training point"),
    Metric("nn_train_fresh", False, "finite", "", "nn_train of fresh samples of the true distribution"),
    # below 0: nearer the training points than the distribution's own samples (memorised)
    Metric("nn_train_gap", True, "finite", "", "nn_train - nn_train_fresh"),
    Metric("d_mode_score_min", True, "modes", "", "D's lowest mean logit on a mode's real samples"),
    Metric("d_mode_score_mean", True, "modes", "", "D's mean logit on real samples, averaged over modes"),
    Metric("d_mode_score_spread", False, "modes", "", "max - min over modes of D's mean real logit"),
    Metric("modes_per_generator", True, "modes", "", "modes a generator covers, mean over generators"),
    Metric("modes_per_generator_max", False, "modes", "", "the most modes one generator covers"),
    Metric("generators_per_mode", False, "modes", "", "generators covering a mode, mean over held modes"),
    # images, torch-fidelity's Inception (metrics/fidelity.py)
    Metric("fid", False, "inception", "inception", "Frechet Inception distance"),
    Metric("kid_mean", False, "inception", "inception", "kernel Inception distance (mean over subsets)"),
    Metric("kid_std", False, "inception", "inception", "its standard deviation over subsets"),
    Metric("is_mean", True, "inception", "inception", "Inception score (mean over splits)"),
    Metric("is_std", False, "inception", "inception", "its standard deviation over splits"),
    Metric("iprecision", True, "inception", "inception", "k-NN precision in Inception's pool features"),
    Metric("irecall", True, "inception", "inception", "k-NN recall in Inception's pool features"),
    Metric("idensity", True, "inception", "inception", "density in Inception's pool features"),
    Metric("icoverage", True, "inception", "inception", "coverage in Inception's pool features"),
    Metric("precision", True, "vgg16", "prc", "improved precision (Kynkaanniemi et al.)"),
    Metric("recall", True, "vgg16", "prc", "improved recall"),
    Metric("density", True, "vgg16", "prc", "density (Naeem et al.): real k-NN balls holding a sample, per sample / k"),
    Metric("coverage", True, "vgg16", "prc", "coverage (Naeem et al.): share of real k-NN balls holding any sample"),
    # labelled images, ganzoo's own classifier (metrics/classifier.py)
    Metric("cfid", False, "classifier", "classifier", "FID in the classifier's feature space"),
    Metric("ckid_mean", False, "classifier", "classifier", "KID in the classifier's feature space"),
    Metric("ckid_std", False, "classifier", "classifier", "its standard deviation over subsets"),
    Metric("classes_covered", True, "classifier", "classifier", "classes predicted at a fair share"),
    Metric("class_kl", False, "classifier", "classifier", "KL(predicted class histogram || uniform)"),
    Metric("classes_per_generator", True, "classifier", "classifier", "classes a generator covers, mean over generators"),
    Metric("classes_per_generator_max", False, "classifier", "classifier", "the most classes one generator covers"),
    Metric("generators_per_class", False, "classifier", "classifier", "generators covering a class, mean over held classes"),
    # a stacked dataset: the base set's classifier on each channel (metrics/stacked.py)
    Metric("stacked_modes", True, "classifier", "stacked", "modes of 1,000 with at least one sample"),
    Metric("stacked_kl", False, "classifier", "stacked", "KL(mode histogram || uniform)"),
    Metric("stacked_modes_real", True, "classifier", "stacked", "stacked_modes of as many real images"),
    Metric("stacked_kl_real", False, "classifier", "stacked", "stacked_kl of as many real images"),
    Metric("stacked_modes_expected", True, "classifier", "stacked",
           "modes a perfect generator is expected to show under the classifier's confusion"),
    # a conditional run on labelled images: samples asked for each class in turn (metrics/fidelity.py)
    Metric("class_acc", True, "classifier", "classifier", "classifier accuracy on samples of the asked-for class"),
    Metric("class_acc_min", True, "classifier", "classifier", "class_acc of the worst class"),
    Metric("intra_cfid", False, "classifier", "classifier",
           "per-class FID in the classifier's features (asked-for class vs its reals), mean over classes"),
    Metric("intra_fid", False, "inception", "inception", "per-class FID in Inception's features, mean over classes"),
    Metric("cprecision", True, "classifier", "classifier", "k-NN precision in the classifier's feature space"),
    Metric("crecall", True, "classifier", "classifier", "k-NN recall in the classifier's feature space"),
    Metric("cdensity", True, "classifier", "classifier", "density in the classifier's feature space"),
    Metric("ccoverage", True, "classifier", "classifier", "coverage in the classifier's feature space"),
)}

# what picks ckpt/best.pt when metrics.best is null: the first of these an evaluation scores
BEST_DEFAULT = ("fid", "cfid")


def lookup(name: str) -> Optional[Metric]:
    return METRICS.get(name.rpartition("/")[2])


def higher_is_better(name: str) -> bool:
    """For a metric ganzoo does not know (a user's column), lower is better."""
    m = lookup(name)
    return bool(m and m.higher_is_better)


def better(name: str, a: float, b: float) -> bool:
    """Whether score a beats score b."""
    return a > b if higher_is_better(name) else a < b


def score(metrics: Dict[str, object], chosen: Optional[str] = None) -> Optional[Tuple[str, float]]:
    """(name, value) of the metric that ranks checkpoints: `chosen` (metrics.best), else the
    first of BEST_DEFAULT scored; None when it is missing or not finite."""
    for key in ((chosen,) if chosen else BEST_DEFAULT):
        value = metrics.get(key)
        if isinstance(value, (int, float)) and math.isfinite(value):
            return key, float(value)
    return None


def finite_or_none(value):
    """JSON has no NaN: a non-finite score is recorded as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
