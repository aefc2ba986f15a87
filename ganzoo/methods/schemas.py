"""Each method's hyperparameters: its config schema, defaults and checks (no torch, so a bad
value stops a job in about a second).

A schema's fields are its method class's constructor arguments (methods/__init__.py builds
the method from them in one place); `check(c)` sees the whole TrainConfig for the checks
that involve other groups (a batch the method splits, a penalty it replaces).
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from importlib import import_module
from typing import List, Optional, Tuple

from ..errors import check, non_negative, positive


class Players(StrEnum):
    """How a multi-player method holds its nets (methods/players.py)."""
    auto = "auto"     # a batched stack for plain 2-D MLPs, else a list
    list = "list"
    stack = "stack"


class Classifier(StrEnum):
    """Where stackelberg's "which generator" loss lives (methods/stackelberg.py)."""
    shared = "shared"        # a head on D's body, in G's and D's losses (the released scripts)
    separate = "separate"    # a net of its own with its own optimiser (v1); shapes G only


class AlphaAct(StrEnum):
    """microbatch's self-learned alpha = act(beta) (methods/microbatch.py:ACTS)."""
    sigmoid = "sigmoid"
    softplus = "softplus"
    tanh = "tanh"
    identity = "identity"


class Reading(StrEnum):
    """How microbatch's alpha enters the losses (methods/microbatch.py's docstring)."""
    additive = "additive"   # D_k: r(x_k) + f(y_k) + alpha r(y_-k)
    mix = "mix"             # D_k's positives a (1 - alpha) / alpha mix of x_k and y_-k


class MethodSchema:
    """What every method schema has besides its fields."""

    def check(self, c) -> None:
        """Range and cross-group checks; `c` is the whole TrainConfig. Never changes anything."""

    def arguments(self, image: bool) -> dict:
        """The method class's constructor arguments (every field but `name`)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "name"}

    def shares(self, c) -> dict:
        """The row counts of one step that ranks split equally (distributed.py): name -> count.
        Each must divide by the world size."""
        return {"batch_size": c.batch_size}


def _check_stack(c, players: Players) -> None:
    if players == Players.stack:
        from ..nets.schemas import MLPArch
        plain = isinstance(c.arch, MLPArch) and not (c.arch.g.spectral_norm or c.arch.d.spectral_norm)
        check(plain, f"method.players=stack batches plain 2-D MLPs only; arch={c.arch.name} needs "
                     f"method.players=list (or auto)")


@dataclass
class GANMethod(MethodSchema):
    """The baseline (docs/METHODS.md, "gan")."""
    name: str = "gan"


@dataclass
class FarganMethod(MethodSchema):
    """Fake-as-real (FARGAN). Paper: CIFAR f=8, N0=32 of N=M=64, k=10, RMSprop lr 1e-4; toy f=8,
    N0=16 of 64. N0=0 is the baseline with loss.penalty=r1; f=1 makes the N0 fakes random ones."""
    name: str = "fargan"
    f: int = 8            # candidates per selected fake-as-real sample
    N0: int = 32          # fakes in D's real set (of batch_size)
    k: float = 10.0       # zero-centred gradient penalty on D's whole real set

    def check(self, c) -> None:
        check(self.f >= 1, f"method.f must be >= 1 (candidates per selected fake), got {self.f}")
        check(0 <= self.N0 < c.batch_size, f"method.N0 must be in [0, batch_size={c.batch_size}): "
                                           f"D's real set needs at least one real sample, got N0={self.N0}")
        non_negative("method.k (gradient penalty weight)", self.k)
        check(c.loss.penalty == "none", f"fargan penalises D's whole real set itself (method.k={self.k}); "
                                        f"set loss.penalty=none instead of {c.loss.penalty}")

    def shares(self, c) -> dict:
        return {**super().shares(c), "method.N0": self.N0, "batch_size - method.N0": c.batch_size - self.N0,
                "method.f * method.N0 (candidates)": self.f * self.N0}


@dataclass
class AWMethod(MethodSchema):
    """Adaptive weighted discriminator (aw, Algorithms 1-2)."""
    name: str = "aw"
    normalized: bool = True   # false: the paper's Algorithm 2 (unit weights instead of 1/|g|)
    alpha1: float = 0.5
    alpha2: float = 0.75
    delta: float = 0.05
    eps: float = 0.05

    def check(self, c) -> None:
        for key in ("alpha1", "alpha2"):  # 0 < alpha1 < alpha2 < 1, as the authors assert
            value = getattr(self, key)
            check(0 < value < 1, f"method.{key} (a mean sigmoid score) must be strictly between 0 and 1, "
                                 f"got {value}")
        check(self.alpha1 < self.alpha2, f"method.alpha1 must be below method.alpha2 (the authors assert it), "
                                         f"got {self.alpha1} and {self.alpha2}")
        non_negative("method.delta", self.delta)
        non_negative("method.eps", self.eps)
        check(c.amp != "fp16", "method=aw combines D's gradients itself and has no loss scaling: "
                               "use amp=bf16 or amp=off")


@dataclass
class StackelbergMethod(MethodSchema):
    """I generators against one D (Stackelberg GAN)."""
    name: str = "stackelberg"
    I: Optional[int] = None        # generators; null = 10 for images, 8 for 2-D data
    shared_noise: bool = False     # every generator gets the same z (the authors' scripts)
    classifier: Classifier = Classifier.shared  # the "which generator" loss: a head on D's body, or a net of its own
    classifier_weight: float = 0.0  # its weight in G's (and, shared, D's) loss: 1.0 MNIST, 0.1 Fashion-MNIST
    #                                 in the released scripts; 0 = off (the paper's objective)
    score_each: Optional[bool] = None  # D scores each generator's batch on its own; null = when D has batchnorm
    players: Players = Players.auto

    def generators(self, image: bool) -> int:
        return self.I if self.I is not None else (10 if image else 8)

    def arguments(self, image: bool) -> dict:
        return {**super().arguments(image), "I": self.generators(image)}

    def check(self, c) -> None:
        from ..data.schemas import is_image
        I = self.generators(is_image(c.dataset))
        check(I >= 1, f"method.I (generators) must be >= 1, got {I}")
        non_negative("method.classifier_weight", self.classifier_weight)
        check(self.classifier_weight == 0 or I >= 2, "method.classifier_weight tells generators apart: "
                                                     "it needs method.I >= 2")
        _check_stack(c, self.players)


@dataclass
class MicrobatchMethod(MethodSchema):
    """K discriminators, each fed its own microbatch (microbatchGAN)."""
    name: str = "microbatch"
    K: int = 8                       # discriminators; microbatches of near-equal size when K does not divide the batch
    alpha: Optional[float] = None    # a number: static alpha (alpha_act is then unused)
    alpha_act: Optional[AlphaAct] = AlphaAct.sigmoid  # self-learned alpha = act(beta)
    alpha_init: Optional[float] = None  # alpha at step 0; null: the paper's beta0 = -1.8 (alpha0 = sigmoid(-1.8))
    reading: Reading = Reading.additive
    g_reuse: bool = False            # G's step scores the fakes of D's last step (same z), not fresh ones
    players: Players = Players.auto

    def check(self, c) -> None:
        check(1 <= self.K <= c.batch_size, f"method.K (discriminators) must be in [1, batch_size={c.batch_size}]: "
                                           f"each needs at least one sample, got K={self.K}")
        if self.alpha is not None:  # a number is a static alpha, whatever alpha_act says
            non_negative("method.alpha", self.alpha)
        else:
            check(self.alpha_act is not None, "microbatch needs method.alpha (a number) or method.alpha_act")
            if self.alpha_init is not None:
                positive("method.alpha_init", self.alpha_init)
            check(self.alpha_init is None or self.alpha_act not in (AlphaAct.sigmoid, AlphaAct.tanh)
                  or self.alpha_init < 1,
                  f"method.alpha_init must be < 1 with alpha_act={self.alpha_act}, got {self.alpha_init}")
        if self.reading == Reading.mix:
            check(self.alpha is None or self.alpha <= 1,
                  f"method.alpha must be in [0, 1] with method.reading=mix (the weight of the other "
                  f"microbatches' fakes among D_k's positives), got {self.alpha}")
            check(self.alpha is not None or self.alpha_act == AlphaAct.sigmoid,
                  f"method.reading=mix needs alpha in [0, 1]: a static alpha or alpha_act=sigmoid, "
                  f"not {self.alpha_act}")
        _check_stack(c, self.players)
        check(self.players != Players.stack or c.batch_size % self.K == 0,
              f"method.players=stack runs K equal microbatches: method.K={self.K} must divide batch_size="
              f"{c.batch_size}, or use method.players=list (or auto)")

    def shares(self, c) -> dict:
        # every rank holds an equal share of each microbatch
        return {"batch_size / method.K (a microbatch)": c.batch_size / self.K}


class Opponent(StrEnum):
    """What sgan's global pair trains against (methods/sgan.py)."""
    message = "message"   # copies of locals drawn uniformly, trained against the global pair
    live = "live"         # v1: the live locals, read-only (D_0 vs their mixture, G_0 vs the mean of the D_i)


class Schedule(StrEnum):
    """When sgan's global pair updates."""
    round = "round"       # once after every local pair's step
    each = "each"         # after each local pair's step (the supplement's Fig. 4)


@dataclass
class SGANMethod(MethodSchema):
    """N local pairs and a global pair (SGAN)."""
    name: str = "sgan"
    N: int = 5                       # local (G_i, D_i) pairs beside the global pair
    opponent: Opponent = Opponent.message
    schedule: Schedule = Schedule.round
    refresh: int = 1                 # global updates between fresh message copies (1: a new draw each update)
    msg_steps: int = 1               # steps of each message net against the global pair per update (0: frozen)

    def check(self, c) -> None:
        check(self.N >= 1, f"method.N (local pairs) must be >= 1, got {self.N}")
        check(self.refresh >= 1, f"method.refresh (global updates between message copies) must be >= 1, "
                                 f"got {self.refresh}")
        non_negative("method.msg_steps", self.msg_steps)

    def shares(self, c) -> dict:
        out = super().shares(c)
        if self.opponent == Opponent.live:  # D_0's mixture: an equal share from each local generator
            out["ceil(batch_size / method.N) (a local generator's share)"] = -(-c.batch_size // self.N)
        return out


@dataclass(frozen=True)
class MethodRecord:
    """Everything ganzoo knows of one method, in one place: its config schema (above), where its
    class is (imported only when a run builds it), and a small instance that still shows what makes
    it itself, which every test and script that loops over methods runs. Adding a method: its file
    in methods/, a schema and a record here, its YAML in conf/method/ (docs/ARCHITECTURE.md)."""
    schema: type
    cls: str                      # "module:Class" under ganzoo/methods
    small: Tuple[str, ...] = ()   # overrides beside method=<name>
    paper: str = ""               # its paper's short name (README "Papers"); the baseline has none

    @property
    def name(self) -> str:
        return self.schema.name

    def load(self):
        module, _, name = self.cls.partition(":")
        return getattr(import_module(f"ganzoo.methods.{module}"), name)

    def overrides(self) -> List[str]:
        """The small instance's command line."""
        return [f"method={self.name}", *self.small]


METHODS = {r.name: r for r in (
    MethodRecord(GANMethod, "gan:GAN"),
    MethodRecord(FarganMethod, "fargan:FARGAN", ("method.f=2", "method.N0=8"), "FARGAN"),
    MethodRecord(AWMethod, "aw:AW", (), "aw"),
    MethodRecord(StackelbergMethod, "stackelberg:Stackelberg", ("method.I=3",), "Stackelberg GAN"),
    MethodRecord(MicrobatchMethod, "microbatch:Microbatch", ("method.K=4",), "microbatchGAN"),
    MethodRecord(SGANMethod, "sgan:SGAN", ("method.N=2",), "SGAN"),
)}
METHOD_SCHEMAS = {name: record.schema for name, record in METHODS.items()}  # the config group's options
