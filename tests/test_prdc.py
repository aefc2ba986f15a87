"""k-NN precision, recall, density and coverage (metrics/prdc.py): a case worked by hand, the authors'
`prdc` package on the same features, and the blocks that bound memory."""
import math

import numpy as np
import pytest
import torch

from ganzoo.metrics import prdc as P


def test_a_case_worked_by_hand():
    # reals 0..9 on a line, k=2: the ends' radius is 2, the others' 1; fakes 0.5, 4.2, 20
    real = torch.arange(10.0).unsqueeze(1)
    fake = torch.tensor([[0.5], [4.2], [20.0]])
    assert P.knn_radii(real, 2).tolist() == [2.0] + [1.0] * 8 + [2.0]
    out = P.prdc(real, fake, k=2)
    # 0.5 and 4.2 lie in real balls, 20 in none; 0.5 lies in the balls of 0 and 1, 4.2 in those of 4 and 5;
    # reals 0, 1, 4, 5 have a fake nearer than their radius; the fakes' own radii (19.5, 15.8, 19.5) reach all
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["density"] == pytest.approx((2 + 2 + 0) / 3 / 2)
    assert out["coverage"] == pytest.approx(0.4)
    assert out["recall"] == pytest.approx(1.0)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_equal_to_the_authors_package(k):
    prdc_package = pytest.importorskip("prdc")
    rng = np.random.default_rng(k)
    real = rng.normal(size=(600, 12))
    fake = rng.normal(size=(500, 12)) * 1.3 + 0.2
    want = prdc_package.compute_prdc(real, fake, k)
    got = P.prdc(torch.from_numpy(real), torch.from_numpy(fake), k)
    for name in ("precision", "recall", "density", "coverage"):
        assert got[name] == pytest.approx(float(want[name]), abs=1e-6), name
    # negative control: other fakes give other scores
    assert P.prdc(torch.from_numpy(real), torch.from_numpy(fake + 1.0), k) != got


def test_blocks_and_cached_radii_change_nothing(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(300, 8, generator=gen), torch.randn(200, 8, generator=gen) + 0.5
    whole = P.prdc(real, fake, 5)
    radii = P.knn_radii(real, 5)
    monkeypatch.setattr(P, "BLOCK_ELEMENTS", 1000)  # blocks of 3-5 rows
    assert P.prdc(real, fake, 5) == whole
    assert P.prdc(real, fake, 5, real_radii=radii) == whole
    assert torch.equal(P.knn_radii(real, 5), radii)


def test_too_few_rows_give_no_number():
    out = P.prdc(torch.randn(5, 3), torch.randn(40, 3), k=5)
    assert all(math.isnan(v) for v in out.values())
    with pytest.raises(ValueError, match="more than k rows"):
        P.knn_radii(torch.randn(5, 3), 5)
