"""Image datasets: real Fashion-MNIST from Debian's package, folders of images, missing-data messages,
and the resumable DataLoader stream."""
import numpy as np
import pytest
import torch

from conftest import run_ganzoo
from ganzoo.config import ImageData as ImageDataConfig
from ganzoo.data import Stream, build_data
from ganzoo.data.files import DEBIAN_FASHION_MNIST
from ganzoo.errors import DataError

needs_fmnist = pytest.mark.skipif(not DEBIAN_FASHION_MNIST.is_dir(),
                                  reason="apt-get install dataset-fashion-mnist (CI installs it)")


def fmnist(**kw):
    return ImageDataConfig(name="fashion_mnist", channels=1, resolution=28, num_classes=10, **kw)


@needs_fmnist
def test_fashion_mnist_is_found_in_the_debian_package_and_held_in_memory():
    data = build_data(fmnist())
    assert data.in_memory and data.shape == (1, 28, 28) and data.num_classes == 10
    assert data.finite.shape == (60000, 1, 28, 28) and data.finite.dtype == torch.uint8
    test = data.images("test")
    assert len(test) == 10000
    labels = torch.tensor([test[i][1] for i in range(0, 10000, 7)])
    assert labels.min() == 0 and labels.max() == 9
    # Fashion-MNIST's known statistics: mean pixel ~72.9 of 255, balanced classes
    assert 70 < data.finite.float().mean() < 76
    counts = torch.bincount(data.images("train").y, minlength=10)
    assert (counts == 6000).all()
    assert data.fingerprint("train") == build_data(fmnist()).fingerprint("train")
    assert data.fingerprint("train") != data.fingerprint("test")


@needs_fmnist
def test_in_memory_stream_gives_floats_in_range_and_resumes():
    data = build_data(fmnist())
    stream = Stream(data, 64, seed=0, device=torch.device("cpu"))
    x = stream()
    assert x.shape == (64, 1, 28, 28) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    state = stream.state_dict()
    ahead = [stream(50) for _ in range(3)]
    again = Stream(data, 64, seed=0, device=torch.device("cpu"))
    again.load_state_dict(state)
    for a in ahead:
        assert torch.equal(a, again(50))


def test_missing_data_names_files_key_and_command(tmp_path):
    with pytest.raises(DataError) as err:
        build_data(fmnist(root=str(tmp_path)))
    message = str(err.value)
    assert "\n" not in message
    assert f"{tmp_path}/train-images-idx3-ubyte.gz" in message
    assert "dataset.root=" in message and "apt-get install dataset-fashion-mnist" in message
    with pytest.raises(DataError, match="cifar-10-batches-py/data_batch_1.*cs.toronto.edu"):
        build_data(ImageDataConfig(name="cifar10", channels=3, resolution=32, root=str(tmp_path)))


@pytest.mark.slow
def test_cli_stops_on_missing_data_before_making_a_run_folder(tmp_path):
    proc = run_ganzoo("train", "dataset=cifar10", f"dataset.root={tmp_path / 'none'}", "arch=dcgan",
                      "metrics.inception=false", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "dataset cifar10: missing" in lines[0] and "dataset.root" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "outputs").exists()


def make_folder(root, n=23, size=40):
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(n):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        arr = rng.integers(0, 256, (size, size + 10, 3), dtype=np.uint8)
        Image.fromarray(arr).save(sub / f"{i:03d}.png")


def test_image_folder_streams_through_a_dataloader_and_resumes_exactly(tmp_path):
    make_folder(tmp_path)
    cfg = ImageDataConfig(name="image_folder", channels=3, resolution=16, root=str(tmp_path), workers=0)
    data = build_data(cfg)
    assert not data.in_memory and len(data.images("train")) == 23
    x, label = data.images("train")[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.uint8 and label == -1

    stream = Stream(data, 8, seed=3, device=torch.device("cpu"), workers=0)
    seen = torch.cat([stream(5) for _ in range(9)])[:23]  # 45 items: one epoch and a bit, odd sizes
    # one epoch visits every image exactly once
    first_epoch = {tuple(img.flatten()[:12].tolist()) for img in seen}
    assert len(first_epoch) == 23
    state = stream.state_dict()
    ahead = [stream(n) for n in (7, 8, 13)]
    again = Stream(data, 8, seed=3, device=torch.device("cpu"), workers=0)
    again.load_state_dict(state)
    for a, n in zip(ahead, (7, 8, 13)):
        assert torch.equal(a, again(n))


def test_image_folder_without_images_says_so(tmp_path):
    with pytest.raises(DataError, match="no images"):
        build_data(ImageDataConfig(name="image_folder", channels=3, resolution=16, root=str(tmp_path)))


def test_picture_images_sets_the_grid_of_an_image_run():
    """picture_images=8 draws one row of 8 samples, the default 64 eight rows (budget=smoke uses 8)."""
    from ganzoo.config import compose_train
    from ganzoo.model import build, picture
    base = ["device=cpu", "dataset=cifar10", "synthetic_images=64", "batch_size=16", "arch=dcgan", "arch.g_width=8",
            "arch.d_width=8", "metrics.inception=false", "metrics.prc=false", "metrics.classifier=false"]
    one = compose_train(*base, "picture_images=8")
    grids = [picture(cfg, build(cfg), 0) for cfg in (one, compose_train(*base))]
    assert grids[0].shape[1] == grids[1].shape[1]  # rows of 8 either way
    rows = [g.shape[0] for g in grids]
    assert rows[1] > 7 * rows[0]  # 8 rows of 32 pixels (and padding) against one


class _CountingImages(torch.utils.data.Dataset):
    """n one-pixel 'images' whose value is their index; counts how many this process decoded."""

    def __init__(self, n):
        self.n, self.reads = n, 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        self.reads += 1
        return torch.full((1, 1, 1), float(i)), 0


class _Folder:
    finite = None
    decode = staticmethod(lambda x: x)

    def __init__(self, n):
        self.ds = _CountingImages(n)

    def images(self, split):
        return self.ds


def _draws(streams, sizes, one):
    from ganzoo.distributed import Shard
    for i, n in enumerate(sizes):
        whole = one(n)
        for r, s in enumerate(streams):
            assert torch.equal(s(n), Shard(r, 2).local(whole)), (i, r)


def test_a_sharded_loader_reads_only_its_ranks_items_and_serves_the_same_draws():
    """Under 2 ranks each reads and decodes exactly half of every draw, and its rows are exactly its share of
    what one process draws: the same order, draws of changing size, draws across an epoch's end."""
    from ganzoo.distributed import Shard
    sizes = [8, 8, 8, 4, 8, 8, 8, 8, 12, 8, 8]  # 88 items over epochs of 40: two epoch ends
    one = Stream(_Folder(40), 8, seed=5, device=torch.device("cpu"))
    ranks = [Stream(_Folder(40), 8, seed=5, device=torch.device("cpu"), shard=Shard(r, 2)) for r in (0, 1)]
    _draws(ranks, sizes, one)
    assert one.data.ds.reads >= sum(sizes)  # one process decodes every item
    for s in ranks:  # workers=0: a loader reads as it serves, so the count is exact
        assert s.data.ds.reads == s.decoded == sum(sizes) // 2


def test_a_sharded_stream_resumes_mid_epoch_to_the_same_draws():
    from ganzoo.distributed import Shard
    one = Stream(_Folder(40), 8, seed=5, device=torch.device("cpu"))
    ranks = [Stream(_Folder(40), 8, seed=5, device=torch.device("cpu"), shard=Shard(r, 2)) for r in (0, 1)]
    _draws(ranks, [8, 8, 4], one)
    state = ranks[0].state_dict()
    for k, v in one.state_dict().items():  # the position is world-size free
        assert torch.equal(state[k], v) if isinstance(v, torch.Tensor) else state[k] == v, k
    fresh = []
    for r in (0, 1):
        fresh.append(Stream(_Folder(40), 8, seed=5, device=torch.device("cpu"), shard=Shard(r, 2)))
        fresh[-1].load_state_dict(ranks[r].state_dict())
    _draws(fresh, [8, 8, 8, 8, 6], one)


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_a_failed_download_says_so_and_does_not_advise_setting_download(tmp_path, monkeypatch, name):
    """With dataset.download=true already set, a failed download is one line that names the failure and where
    to put the files, not "set dataset.download=true"."""
    import torchvision.datasets as tvd
    from ganzoo.data.images import build_images
    from ganzoo.errors import DataError

    def offline(*args, **kwargs):
        raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\n<urlopen error no network>")
    for cls in ("MNIST", "CIFAR10"):
        monkeypatch.setattr(tvd, cls, offline)
    cfg = ImageDataConfig(name=name, channels=1 if name == "mnist" else 3, resolution=28 if name == "mnist" else 32,
                          root=str(tmp_path), download=True, num_classes=10)
    with pytest.raises(DataError) as info:
        build_images(cfg).images("train")
    line = str(info.value)
    assert "download" in line and "needs internet" in line and "no network" in line
    assert "set dataset.download=true" not in line and "or dataset.download=true" not in line
