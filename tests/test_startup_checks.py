"""Start-up checks of sample, eval and classifier, range checks, and the files a job cannot read or write:
each case asserts the exit code, the one line the user reads (no traceback), and that nothing was
created or left half-written. Checks run in this process (cli.main, ganzoo_here); the installed
command is started only where its exit code is the point. A full disk is simulated in this process
by making a write raise OSError(ENOSPC) (no real disk is filled)."""
import errno
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import ganzoo_here, only_run_dir, run_ganzoo

from ganzoo import cli
from ganzoo.errors import ConfigError, DataError, check_writable, os_error_message

LINUX = sys.platform.startswith("linux")  # /proc/x cannot be made, even by root (who may write anywhere else)
needs_proc = pytest.mark.skipif(not LINUX, reason="uses /proc as a folder nobody can write in")


def snapshot(root: Path) -> dict:
    """Every path under root with its bytes (folders as None): what a refused command must leave alone."""
    return {p: (p.read_bytes() if p.is_file() else None) for p in sorted(Path(root).rglob("*"))}


def refused(capsys, *args) -> tuple:
    """`ganzoo <args>` in this process up to its checks -> (exit code, the one stderr line)."""
    with pytest.raises(SystemExit) as exit_info:
        cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("ganzoo: error: "), lines[0]
    return exit_info.value.code, lines[0]


@pytest.fixture
def fake_run(tmp_path):
    """A folder shaped like a run (the checks read only that its checkpoint exists)."""
    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    (run / "ckpt" / "last.pt").write_bytes(b"not read by the checks")
    return run


@pytest.mark.parametrize("args, code, expected", [
    (["sample", "run={run}", "bogus=1"], 2, "unknown config key 'bogus'"),
    (["sample", "run={run}", "n=0"], 2, "n (samples to draw) must be >= 1, got 0"),
    (["sample", "run={run}", "n=-5", "out=s.png"], 2, "n (samples to draw) must be >= 1, got -5"),
    (["sample", "run={run}", "out=s.txt"], 2, "out=s.txt: the file must end in .npz (arrays) or .png"),
    (["sample", "run=nowhere"], 2, "run=nowhere: no such folder"),
    (["sample", "run={run}", "ckpt=best"], 2, "ckpt=best: {run} has no best.pt"),
    (["sample", "-m", "run={run}", "n=5,0"], 2, "job [run={run} n=0]: n (samples to draw) must be >= 1"),
    (["eval", "run={run}", "seed=abc"], 2, "seed: 'abc' has the wrong type"),
    (["eval", "run={run}", "ckpt=../last"], 2, "ckpt=../last: name a checkpoint of the run's ckpt/ folder"),
    (["eval", "run={run}", "ckpt=step9"], 2, "ckpt=step9: no checkpoint at {run}/ckpt/step9.pt; it has: last"),
    (["classifier", "bogus=1"], 2, "unknown config key 'bogus'"),
    (["classifier", "dataset.workers=-1"], 2, "dataset.workers must be >= 0, got -1"),
    (["classifier", "device=tpu"], 2, "device: 'tpu' is not allowed"),
    (["train", "metrics.num_real=-5"], 2, "metrics.num_real must be > 0 (or null: the whole reference split), got -5"),
    (["train", "metrics.num_samples=0"], 2, "metrics.num_samples must be > 0 (or null: 2,500 for 2-D data"),
])
def test_a_bad_command_line_is_one_line_before_anything_is_made(tmp_path, fake_run, monkeypatch, capsys,
                                                                args, code, expected):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    got, line = refused(capsys, *[a.format(run=fake_run) for a in args])
    assert got == code and expected.format(run=fake_run) in line, line
    assert snapshot(tmp_path) == before


@needs_proc
@pytest.mark.parametrize("args, expected", [
    (["sample", "run={run}", "out=/proc/x/s.npz"], "out: cannot make /proc/x: cannot write in /proc: "),
    (["sample", "run={run}", "out={run}/ckpt/last.pt/s.npz"], "out: cannot make {run}/ckpt/last.pt: "
                                                              "{run}/ckpt/last.pt is a file, not a folder"),
    (["sample", "run={run}", "hydra.run.dir=/proc/x"], "hydra.run.dir: cannot make /proc/x: cannot write in /proc"),
    (["eval", "run={run}", "-m", "hydra.sweep.dir=/proc/x/${{now:%H}}"], "hydra.sweep.dir: cannot make /proc/x"),
    (["classifier", "metrics.cache_dir=/proc/cache"], "metrics.cache_dir: cannot make /proc/cache: cannot write"),
])
def test_an_unwritable_output_folder_is_refused_at_start(tmp_path, fake_run, monkeypatch, capsys, args, expected):
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    code, line = refused(capsys, *[a.format(run=fake_run) for a in args])
    assert code == 2 and expected.format(run=fake_run) in line, line
    assert snapshot(tmp_path) == before


@needs_proc
def test_check_writable_probes_and_leaves_nothing(tmp_path):
    check_writable("out", tmp_path / "a" / "b")  # made later, by the command
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ConfigError, match=r"^out: cannot make /proc/a/b: cannot write in /proc: "):
        check_writable("out", "/proc/a/b")
    if os.geteuid() != 0:  # root writes in a read-only folder; others are refused
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="Permission denied"):
            check_writable("hydra.run.dir", ro)


def test_os_error_message_names_the_path_and_the_reason():
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/runs/a/ckpt/last.pt")
    assert os_error_message(full, "cannot write") == (
        "cannot write /runs/a/ckpt/last.pt: No space left on device (ENOSPC): free space on that disk or "
        "write elsewhere")
    denied = PermissionError(errno.EACCES, "Permission denied", "/x")
    assert os_error_message(denied).startswith("/x: Permission denied (EACCES): no permission there")
    assert "\n" not in os_error_message(OSError("odd\nerror"))


class DiskFull:
    """A file whose writes fail with ENOSPC once `room` bytes are in it: a full disk, in this process."""

    def __init__(self, fh, room: int):
        self.fh, self.room = fh, room

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(data)
        return self.fh.write(data)

    def __getattr__(self, name):
        return getattr(self.fh, name)


def fill_disk(monkeypatch, room: int) -> None:
    """atomic_write's files get `room` bytes before the disk is full."""
    from ganzoo import rundir
    real = rundir._Recording.__init__
    monkeypatch.setattr(rundir._Recording, "__init__", lambda self, fh: real(self, DiskFull(fh, room)))


def test_a_full_disk_inside_torch_save_is_the_os_error_naming_the_file(tmp_path, monkeypatch):
    """torch.save turns the OSError of a failed write into "unexpected pos ..."; atomic_write gives the
    OSError back with the checkpoint's path, and leaves no temp file."""
    from ganzoo import checkpoint
    fill_disk(monkeypatch, 2000)
    target = tmp_path / "ckpt" / "last.pt"
    with pytest.raises(OSError) as info:
        checkpoint.save(target, {"w": torch.zeros(10_000)})
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(target)
    assert os_error_message(info.value, "cannot write").startswith(f"cannot write {target}: No space left")
    assert list((tmp_path / "ckpt").iterdir()) == []


# ------------------------------------------------------------------ a trained run: sample and eval
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("trained")
    ganzoo_here("train", "steps=6", "batch_size=32", "eval_every=0", "ckpt_every=0", "log_every=3",
                "sample_every=null", "metrics.num_samples=200", "device=cpu", cwd=root)
    return only_run_dir(root)


def copy_run(run: Path, to: Path) -> Path:
    import shutil
    shutil.copytree(run, to / "run")
    return to / "run"


def app_error(proc) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "HYDRA" not in line]
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    return lines[-1]


@pytest.mark.slow
def test_sample_refuses_a_diverged_checkpoint(trained, tmp_path):
    from ganzoo import checkpoint
    run = copy_run(trained, tmp_path)
    path = run / "ckpt" / "last.pt"
    state = checkpoint.load(path)

    def poison(tree):
        if isinstance(tree, torch.Tensor) and tree.is_floating_point():
            return torch.full_like(tree, float("nan"))
        if isinstance(tree, dict):
            return {k: poison(v) for k, v in tree.items()}
        if isinstance(tree, (list, tuple)):
            return type(tree)(poison(v) for v in tree)
        return tree

    state["method"] = poison(state["method"])
    checkpoint.save(path, state)
    before = snapshot(tmp_path)
    for command in (["sample", f"run={run}", "out=s.npz"], ["sample", f"run={run}", "out=s.png"],
                    ["eval", f"run={run}"]):
        proc = ganzoo_here(*command, cwd=tmp_path, check=False)
        line = app_error(proc)
        assert proc.returncode == 2, proc.stderr  # the checkpoint is the command's to change
        assert line.startswith(f"ganzoo: error: run={run} ckpt=last: the generator of {path}") and \
            "non-finite samples" in line, line
        assert snapshot(tmp_path) == before  # no samples file; metrics.jsonl as it was


@pytest.mark.slow
def test_a_full_disk_while_sampling_is_one_line_and_leaves_no_file(trained, tmp_path, monkeypatch):
    fill_disk(monkeypatch, 100)
    proc = ganzoo_here("sample", f"run={trained}", "n=50", "out=out/s.npz", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert app_error(proc) == ("ganzoo: error: out/s.npz: No space left on device (ENOSPC): "
                               "free space on that disk or write elsewhere")  # the path as given
    assert list((tmp_path / "out").iterdir()) == []  # neither the file nor atomic_write's temp file


@pytest.mark.slow
def test_a_full_disk_while_eval_appends_leaves_metrics_as_they_were(trained, tmp_path, monkeypatch):
    from ganzoo import use
    run = copy_run(trained, tmp_path)
    metrics = run / "metrics.jsonl"
    before = metrics.read_bytes()

    class HalfFull:
        """The first 10 bytes of a write land, then the disk is full."""
        def __init__(self, path, mode, buffering=-1):
            self.fh = open(path, mode, buffering=buffering)

        def write(self, data):
            self.fh.write(bytes(data[:10]))
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def __getattr__(self, name):
            return getattr(self.fh, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

    monkeypatch.setattr(use, "open", HalfFull, raising=False)
    proc = ganzoo_here("eval", f"run={run}", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert app_error(proc).startswith(f"ganzoo: error: {metrics}: No space left on device (ENOSPC)")
    assert metrics.read_bytes() == before


def test_sample_checks_its_out_folder_before_sampling(fake_run):
    """Called directly (scripts do), sample_command checks out= before it reads the checkpoint."""
    from ganzoo.config import SampleConfig
    from ganzoo.use import sample_command
    with pytest.raises(ConfigError, match="^out: cannot make .*last.pt is a file, not a folder"):
        sample_command(SampleConfig(run=str(fake_run), out=str(fake_run / "ckpt" / "last.pt" / "s.npz")))


@pytest.mark.slow
def test_the_installed_command_exits_2_for_a_bad_sample_or_eval_line(fake_run, tmp_path):
    for args, expected in ((["sample", f"run={fake_run}", "n=-1"], "n (samples to draw) must be >= 1"),
                           (["eval", f"run={fake_run}", "bogus=1"], "unknown config key 'bogus'")):
        before = snapshot(tmp_path)
        proc = run_ganzoo(*args, cwd=tmp_path, check=False)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2 and len(lines) == 1 and expected in lines[0], proc.stderr
        assert "Traceback" not in proc.stderr + proc.stdout and snapshot(tmp_path) == before


# ------------------------------------------------------------------ unreadable images in a streamed folder
def image_folder(root: Path, n: int, bad: str) -> Path:
    from PIL import Image
    root.mkdir()
    for i in range(n):
        Image.fromarray(np.full((8, 8), i % 256, np.uint8)).save(root / f"img{i:03d}.png")
    (root / bad).write_bytes(b"\x89PNG\r\n\x1a\n" + b"not a png" * 8)  # a truncated, damaged file
    return root


def folder_data(root: Path, workers: int):
    from ganzoo.data import build_data
    from ganzoo.data.schemas import ImageData
    return build_data(ImageData(name="image_folder", channels=1, resolution=8, root=str(root), workers=workers))


@pytest.mark.parametrize("workers", [0, 2])
def test_one_unreadable_image_in_a_large_folder_is_skipped_and_named(tmp_path, caplog, workers):
    from ganzoo.data import Stream
    bad = image_folder(tmp_path / "images", 100, "img050b.png") / "img050b.png"  # 101 files: 1 may be skipped
    data = folder_data(tmp_path / "images", workers)
    stream = Stream(data, 16, seed=0, device=torch.device("cpu"), workers=workers)
    with caplog.at_level("WARNING", logger="ganzoo"):
        batches = [stream(16) for _ in range(14)]  # two epochs and more
    assert {len(b) for b in batches} == {16}  # batches keep their size
    assert data.images("train").skipped() == [bad]
    if workers == 0:  # a worker's warning goes to its own process's log
        warned = [r.getMessage() for r in caplog.records if "unreadable" in r.getMessage()]
        assert len(warned) == 1 and str(bad) in warned[0] and "1 of 101 files skipped" in warned[0]


@pytest.mark.parametrize("workers", [0, 2])
def test_an_unreadable_image_in_a_small_folder_stops_with_one_line(tmp_path, workers):
    import multiprocessing
    from ganzoo.data import Stream
    bad = image_folder(tmp_path / "images", 10, "img005b.png") / "img005b.png"
    stream = Stream(folder_data(tmp_path / "images", workers), 4, seed=0, device=torch.device("cpu"),
                    workers=workers)
    before = set(multiprocessing.active_children())
    with pytest.raises(DataError) as info:
        for _ in range(3):
            stream(4)
    # the loader's reader processes are stopped with the error, not left to a later garbage collection
    # (which waited 5 s a reader, in whatever test ran then: the error's traceback holds the loader)
    assert set(multiprocessing.active_children()) <= before and stream._loader is None
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message, message  # also when a worker raised it
    assert message.startswith(f"dataset image_folder: cannot read image {bad} (") and \
        "1 of 11 files are unreadable" in message, message


@pytest.mark.slow
def test_a_training_run_on_a_damaged_folder_ends_in_one_line(tmp_path):
    bad = image_folder(tmp_path / "images", 10, "img005b.png") / "img005b.png"
    proc = ganzoo_here("train", "dataset=image_folder", f"dataset.root={tmp_path / 'images'}", "dataset.channels=1",
                       "dataset.resolution=8", "dataset.workers=0", "arch=stackelberg_mlp_mnist",
                       "arch.g.hidden=[8]", "arch.d.hidden=[8]", "method=gan", "steps=4", "batch_size=4",
                       "eval_every=0", "ckpt_every=0", "sample_every=0", "log_every=2", "metrics.inception=false",
                       "metrics.classifier=false", "device=cpu", "hydra.run.dir=run", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert app_error(proc).startswith(f"ganzoo: error: dataset image_folder: cannot read image {bad} ("), proc.stderr


def test_a_sample_count_that_cannot_fit_in_memory_is_refused_before_drawing(monkeypatch, tmp_path):
    from ganzoo import use
    from ganzoo.errors import ConfigError
    monkeypatch.setattr(use, "memory_available", lambda: 8 * 2**30)
    # a picture holds every sample: 512x512 RGB images, 4,718,608 bytes each with their copies (0.8 x 8 GiB / that = 1,456)
    use.check_sample_memory(1_000, (3, 512, 512), image=True, png=True)  # 4.4 GiB of 8: fine
    with pytest.raises(ConfigError, match=r"n=10,000 samples need about 43\.9 GiB of memory and 8\.0 GiB is "
                                          r"available: draw at most n=1,456 per command"):
        use.check_sample_memory(10_000, (3, 512, 512), image=True, png=True)
    with pytest.raises(ConfigError, match="too many for one picture"):
        use.check_sample_memory(20_000, (3, 32, 32), image=True, png=True)
    # arrays are drawn and written a block at a time: only a block need fit
    use.check_sample_memory(10**12, (2,), image=False, png=False)
    monkeypatch.setattr(use, "memory_available", lambda: 2**20)  # 1 MiB: not even one block of 512x512 images
    with pytest.raises(ConfigError, match="GiB of memory"):
        use.check_sample_memory(10**6, (3, 512, 512), image=True, png=False)
    monkeypatch.setattr(use, "memory_available", lambda: None)  # a system that does not say: no bound
    use.check_sample_memory(10**12, (2,), image=False, png=False)
    # the disk: an .npz larger than the free space is refused before anything is drawn or written
    with pytest.raises(ConfigError, match=r"out=.*n=1,000,000,000,000 samples need about .* GiB on disk"):
        use.check_disk(tmp_path / "s.npz", 10**12, (2,), image=False)
    use.check_disk(tmp_path / "s.npz", 1000, (2,), image=False)


def test_a_batch_or_evaluation_that_cannot_fit_in_memory_is_refused_at_start(monkeypatch):
    from ganzoo import preflight
    from ganzoo.config import compose_train
    from ganzoo.errors import ConfigError
    monkeypatch.setattr(preflight, "memory_available", lambda: 2**30)  # 1 GiB
    preflight.check_counts(compose_train("device=cpu", "batch_size=1000000"))  # 2e6 rows x 8 bytes: fits
    with pytest.raises(ConfigError, match=r"batch_size=100000000 needs at least 1\.[0-9] GiB of memory for its data "
                                          r"alone and 1\.0 GiB is available here: lower it"):
        preflight.check_counts(compose_train("device=cpu", "batch_size=100000000"))
    with pytest.raises(ConfigError, match="metrics.num_samples needs at least"):
        preflight.check_counts(compose_train("device=cpu", "metrics.num_samples=100000000"))
    # fargan's f * N0 candidates count too
    with pytest.raises(ConfigError, match="batch_size=64 needs"):
        monkeypatch.setattr(preflight, "memory_available", lambda: 2**20)
        preflight.check_counts(compose_train("device=cpu", "method=fargan", "batch_size=64", "method.N0=32",
                                             "method.f=4096"))


def test_a_run_that_scores_nothing_says_why():
    from ganzoo.apps.tasks import no_metrics_reason
    from ganzoo.config import compose_train
    smoke = compose_train("dataset=cifar10", "budget=smoke")
    assert no_metrics_reason(smoke).startswith("none (metrics.inception=false; metrics.classifier=false:")
    folder = compose_train("dataset=image_folder", "dataset.root=/x", "metrics.inception=false")
    assert "has no class labels the classifier metrics could use" in no_metrics_reason(folder)


def test_eval_of_a_folder_that_is_no_run_says_so_and_names_one(tmp_path):
    from ganzoo.rundir import check_run
    from ganzoo.errors import CheckpointError, ConfigError
    run = tmp_path / "outputs" / "train" / "2026-12-07_10-00-00_gan_ring_ns"
    (run / "ckpt").mkdir(parents=True)
    (run / "ckpt" / "last.pt").write_bytes(b"x")
    with pytest.raises(ConfigError, match=rf"run={tmp_path / 'outputs'} is not a run folder \(no \.hydra/, "
                                          rf"status\.json or ckpt/ in it\): pass the folder of one run \(e\.g\. "
                                          rf"run={run}\)"):
        check_run(str(tmp_path / "outputs"))
    assert check_run(str(run)) == run / "ckpt" / "last.pt"
    (run / "ckpt" / "last.pt").unlink()  # a run folder without its checkpoint: the checkpoint message stays
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        check_run(str(run))
