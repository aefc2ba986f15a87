"""Damaged files: checkpoints and metric caches checked against the CRC-32s inside them, and a
metrics.jsonl whose last line a kill cut short.

torch.save writes a zip file with a CRC-32 of every record (the pickle, each tensor's bytes); torch.load
never checks them. ganzoo.checkpoint.verify does, so damaged bytes are refused (a checkpoint: one line,
the file left as it is) or recomputed (a cache: a warning), never loaded as wrong numbers. Each test is
in-process and small (tiny tensors, a classifier trained for one epoch on 30 images).
"""
import hashlib
import io
import json
import logging
import os
import warnings
import zipfile

import pytest
import torch

from conftest import Split

from ganzoo import checkpoint
from ganzoo.config import MetricsConfig
from ganzoo.errors import CheckpointError, GanzooError
from ganzoo.logger import RunLogger, append_line
from ganzoo.metrics import classifier as clf
from ganzoo.metrics import fidelity
from ganzoo.report import read_job

WEIGHT = torch.arange(64, dtype=torch.float32).reshape(8, 8) / 7  # bytes easy to find in the file


def a_state():
    return {"format": checkpoint.FORMAT, "step": 120, "nets": {"g.w": WEIGHT.clone(), "g.b": torch.ones(8)},
            "opt": {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.full((4,), 0.5)}}},
            "rng": checkpoint.rng_state(), "name": "run"}


def equal(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    return a == b


def flip(path, offset: int, n: int = 16) -> bytes:
    """Invert n bytes of a file from offset on; returns the damaged bytes."""
    data = bytearray(path.read_bytes())
    data[offset:offset + n] = bytes(b ^ 0xFF for b in data[offset:offset + n])
    path.write_bytes(bytes(data))
    return bytes(data)


def offset_of(path, tensor: torch.Tensor, skip: int = 8) -> int:
    raw = tensor.contiguous().numpy().tobytes()
    at = path.read_bytes().find(raw)
    assert at >= 0
    return at + skip


def torch_load(path_or_bytes):
    """torch.load alone, as ganzoo did before: what a reader without the check gets."""
    src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
    return torch.load(src, map_location="cpu", weights_only=True)


# ---------------------------------------------------------------- checkpoints
def test_flipped_bytes_in_a_weight_are_refused_in_one_line_and_the_file_is_left_as_it_is(tmp_path):
    path = tmp_path / "ckpt" / "last.pt"
    checkpoint.save(path, a_state())
    damaged = flip(path, offset_of(path, WEIGHT))
    # the damage is real and torch.load alone does not see it: a weight reads a wrong number
    assert not torch.equal(torch_load(path)["nets"]["g.w"], WEIGHT)

    with pytest.raises(CheckpointError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400
    assert str(path) in message and "damaged" in message and "archive/data/" in message
    assert "ckpt/best.pt" in message and "start a new run" in message
    assert path.read_bytes() == damaged  # nothing changed
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


def test_an_intact_checkpoint_loads_equal(tmp_path):
    path = tmp_path / "last.pt"
    state = a_state()
    checkpoint.save(path, state)
    checkpoint.verify(path)
    assert equal(checkpoint.load(path), state)


def test_a_checkpoint_of_an_earlier_version_still_loads(tmp_path):
    """Earlier ganzoo wrote plain torch.save through atomic_write, with no field added: the zip's own
    CRC-32s (torch's default) are what the check reads, so those files are checked too."""
    path = tmp_path / "old.pt"
    state = a_state()
    checkpoint.atomic_write(path, lambda fh: torch.save(state, fh))
    assert equal(checkpoint.load(path), state)
    flip(path, offset_of(path, WEIGHT))
    with pytest.raises(CheckpointError, match="damaged"):
        checkpoint.load(path)


def test_truncated_or_garbage_checkpoints_are_still_refused(tmp_path):
    path = tmp_path / "last.pt"
    checkpoint.save(path, a_state())
    whole = path.read_bytes()
    for cut in (whole[: len(whole) // 2], whole[:-10], b"", b"not a checkpoint"):
        path.write_bytes(cut)
        with pytest.raises(CheckpointError, match="corrupt or truncated") as info:
            checkpoint.load(path)
        assert "\n" not in str(info.value)
        assert path.read_bytes() == cut


def test_no_single_damaged_byte_loads_as_a_wrong_value(tmp_path):
    """The negative control for the whole format: every byte of a small checkpoint in turn is damaged.
    Each damaged file is refused, or loads equal to the original (a byte torch.load does not use: a
    timestamp, alignment padding). Flipping bit 4 also covers the one hole the CRC-32s leave: that bit of
    a record's external attributes makes torch's zip reader take the record for an empty folder and
    return uninitialised memory for its tensor, which `verify` refuses separately. Every byte of every
    record (pickle and tensors) must be caught."""
    state = {"format": checkpoint.FORMAT, "w": WEIGHT[:1].clone(), "step": 7}  # small: ~1,600 loads
    path = tmp_path / "small.pt"
    checkpoint.save(path, state)
    original = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        records = []
        for info in zf.infolist():
            head = original[info.header_offset: info.header_offset + 30]
            start = info.header_offset + 30 + int.from_bytes(head[26:28], "little") + int.from_bytes(head[28:30], "little")
            records.append(range(start, start + info.file_size))
    covered = {i for r in records for i in r}
    assert len(covered) > 100
    refused, harmless = set(), set()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about damaged pickle headers it still reads
        fd = os.open(path, os.O_RDWR)
        try:
            for i in range(len(original)):
                os.pwrite(fd, bytes([original[i] ^ 0x10]), i)  # in place: rewriting the file costs 10x more
                try:
                    loaded = checkpoint.load(path)
                except CheckpointError:
                    refused.add(i)
                    continue
                finally:
                    os.pwrite(fd, original[i:i + 1], i)
                assert equal(loaded, state), f"byte {i} damaged loads a wrong value"
                harmless.add(i)
        finally:
            os.close(fd)
    assert path.read_bytes() == original
    assert covered <= refused  # every byte of every record is read and checked
    assert refused and harmless


def test_save_writes_the_checksums_even_where_torch_was_told_not_to(tmp_path):
    path = tmp_path / "last.pt"
    torch.serialization.set_crc32_options(False)
    try:
        checkpoint.save(path, a_state())
    finally:
        torch.serialization.set_crc32_options(True)
    checkpoint.load(path)
    flip(path, offset_of(path, WEIGHT))
    with pytest.raises(CheckpointError, match="damaged"):
        checkpoint.load(path)


# ---------------------------------------------------------------- the reference-feature cache
class TinyImages:
    """ganzoo's image-data interface (name, shape, num_classes, images, fingerprint) on 12 random images."""
    name, shape, num_classes = "tiny", (1, 4, 4), 0

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randint(0, 256, (12, *self.shape), generator=g, dtype=torch.uint8)
        self.split = (x, torch.full((12,), -1, dtype=torch.long))

    def images(self, split):
        return Split(*self.split)

    def fingerprint(self, split):
        return hashlib.sha256(self.split[0].numpy().tobytes()).hexdigest()


class TinyExtractor:
    """What ImageMetrics reads of an extractor: name, sha256, and (rgb uint8, device) -> {layer: features}."""
    name, sha256 = "tiny", "0" * 64

    def __init__(self):
        self.calls = 0

    def __call__(self, rgb, device):
        self.calls += 1
        return {"f": rgb.float().flatten(1)[:, :3] / 255}


def test_damaged_reference_features_are_recomputed_with_a_warning(tmp_path, caplog):
    cfg = MetricsConfig(inception=False, classifier=False, cache_dir=str(tmp_path / "cache"), batch_size=8)
    data, ext = TinyImages(), TinyExtractor()
    first = fidelity.ImageMetrics(cfg, data, "cpu")._reference(ext, "f", None, stats=True)
    path = fidelity.ImageMetrics(cfg, data, "cpu").reference_key(ext, "f", None)[1]
    assert path.is_file() and ext.calls == 2
    fake = torch.rand(12, 3, generator=torch.Generator().manual_seed(1))
    right = fidelity.fid_from_features(fake, {"mu": first["mu"].numpy(), "sigma": first["sigma"].numpy()})

    # the cached statistics take damage; torch.load alone returns them, and the score would be wrong
    flip(path, offset_of(path, first["sigma"], skip=0), n=8)
    silent = torch_load(path)
    wrong = fidelity.fid_from_features(fake, {"mu": silent["mu"].numpy(), "sigma": silent["sigma"].numpy()})
    assert not torch.equal(silent["sigma"], first["sigma"]) and wrong != pytest.approx(right)

    again = fidelity.ImageMetrics(cfg, data, "cpu")
    with caplog.at_level(logging.WARNING, logger="ganzoo"):
        entry = again._reference(ext, "f", None, stats=True)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and str(path) in warned[0] and "damaged" in warned[0] and "recomputing" in warned[0]
    assert again.cache.misses == 1 and again.cache.hits == 0 and ext.calls == 4  # recomputed
    assert torch.equal(entry["sigma"], first["sigma"]) and torch.equal(entry["features"], first["features"])
    score = fidelity.fid_from_features(fake, {"mu": entry["mu"].numpy(), "sigma": entry["sigma"].numpy()})
    assert score == right
    # and the cache file is whole again: the next evaluation reads it
    checkpoint.verify(path)
    third = fidelity.ImageMetrics(cfg, data, "cpu")
    third._reference(ext, "f", None, stats=True)
    assert third.cache.hits == 1 and ext.calls == 4


# ---------------------------------------------------------------- the classifier cache
class Bands:
    """Class k is a bright band at rows 2k..2k+1 of an 8x8 gray image (as in test_classifier), 3 classes."""
    name, shape, num_classes = "bands3", (1, 8, 8), 3

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        y = torch.arange(3).repeat(10)
        x = torch.randint(0, 40, (len(y), *self.shape), generator=g).to(torch.uint8)
        for i, k in enumerate(y.tolist()):
            x[i, 0, 2 * k: 2 * k + 2] = 255 - x[i, 0, 2 * k: 2 * k + 2]
        self.split = (x, y)

    def images(self, split):
        return Split(*self.split)

    def fingerprint(self, split):
        return hashlib.sha256(self.split[0].numpy().tobytes()).hexdigest()


def test_a_damaged_cached_classifier_is_retrained_with_a_warning(tmp_path, caplog, monkeypatch):
    data, recipe = Bands(), clf.Recipe(epochs=1, batch_size=10, seed=0)
    made = clf.train_classifier(data, tmp_path, recipe)
    head = made.model.head.weight.detach().clone()
    flip(made.path, offset_of(made.path, head))
    assert not torch.equal(torch_load(made.path)["state_dict"]["head.weight"], head)  # silent without the check

    # the torch-fidelity extractor reading the file refuses it in one line
    with pytest.raises(GanzooError, match="damaged") as info:
        clf.ClassifierFeatureExtractor("x", ["features"], feature_extractor_weights_path=str(made.path))
    assert "\n" not in str(info.value)

    real_train, calls = clf.train_classifier, []
    monkeypatch.setattr(clf, "train_classifier", lambda *a, **k: calls.append(1) or real_train(*a, **k))
    with caplog.at_level(logging.WARNING, logger="ganzoo"):
        again = clf.load_or_train_classifier(data, tmp_path, recipe)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and str(made.path) in warned[0] and "damaged" in warned[0] and "retraining" in warned[0]
    assert calls == [1]
    # the same classifier again (training is deterministic; the file's bytes differ by its timing field)
    assert equal(again.model.state_dict(), made.model.state_dict()) and again.accuracy == made.accuracy
    checkpoint.verify(again.path)
    assert clf.load_or_train_classifier(data, tmp_path, recipe).sha256 == again.sha256 and calls == [1]


# ---------------------------------------------------------------- metrics.jsonl
def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_log(run_dir, lines):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "metrics.jsonl").write_text("".join(lines))


def good(step):
    return json.dumps({"step": step, "time": 1.0, "fid": 10.0 - step / 10}) + "\n"


def test_a_torn_last_line_is_dropped_on_resume_with_a_warning(tmp_path, caplog):
    run = tmp_path / "run"
    write_log(run, [good(10), good(20), good(30), '{"step": 40, "time": 1.0, "fi'])
    with caplog.at_level(logging.WARNING, logger="ganzoo"):
        logger = RunLogger(run, steps=100, start_step=30, log_every=10)
    logger.close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "metrics.jsonl" in warned[0] and "last line" in warned[0]
    assert [r["step"] for r in records(run / "metrics.jsonl")] == [10, 20, 30]


def test_records_after_the_checkpoint_are_still_dropped_and_a_clean_log_is_not_rewritten(tmp_path, caplog):
    run = tmp_path / "run"
    write_log(run, [good(10), good(20), good(40)])
    RunLogger(run, steps=100, start_step=30, log_every=10).close()
    assert [r["step"] for r in records(run / "metrics.jsonl")] == [10, 20]
    stamp = (run / "metrics.jsonl").stat().st_mtime_ns
    with caplog.at_level(logging.WARNING, logger="ganzoo"):
        RunLogger(run, steps=100, start_step=30, log_every=10).close()
    assert (run / "metrics.jsonl").stat().st_mtime_ns == stamp and not caplog.records


def test_a_damaged_line_before_the_last_is_dropped_with_a_warning_naming_it(tmp_path, caplog):
    """Not refused: the run does not depend on its own log, and every reader skips such a line."""
    run = tmp_path / "run"
    write_log(run, [good(10), '{"step": 20, "ti\x00\x00' + good(20), "[1, 2]\n", good(30)])
    with caplog.at_level(logging.WARNING, logger="ganzoo"):
        RunLogger(run, steps=100, start_step=30, log_every=10).close()
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 2 and "line 2" in warned[0] and "line 3" in warned[1]
    assert [r["step"] for r in records(run / "metrics.jsonl")] == [10, 30]


def test_a_record_is_one_write_and_is_never_glued_to_a_torn_line(tmp_path, monkeypatch):
    run = tmp_path / "run"
    write_log(run, [good(10), '{"step": 20, "ti'])  # torn, and not resumed past (start_step=0 keeps the log)
    logger = RunLogger(run, steps=100, start_step=0, log_every=10)
    writes = []
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, b: writes.append(bytes(b)) or real_write(fd, b))
    logger.metrics(30, {"fid": 7.0, "class_hist": [0.5] * 200})
    monkeypatch.undo()
    logger.close()
    mine = [w for w in writes if b'"step": 30' in w]
    assert len(mine) == 1 and mine[0].endswith(b"\n")  # the whole line in one write() call
    lines = (run / "metrics.jsonl").read_text().split("\n")
    assert lines[1] == '{"step": 20, "ti' and json.loads(lines[2])["step"] == 30 and lines[3] == ""
    # ganzoo report reads the records and skips the torn one
    job = read_job(run)
    assert [s for s, _ in job.curves["fid"]] == [10, 30]


def test_append_line_creates_the_file_and_ends_each_line(tmp_path):
    path = tmp_path / "m.jsonl"
    append_line(path, '{"step": 1}')
    append_line(path, '{"step": 2}\n')
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'


def test_append_line_cuts_a_failed_write_back(tmp_path, monkeypatch):
    """A full disk mid-line (simulated: the second write() raises ENOSPC) leaves the file as it was."""
    import errno
    path = tmp_path / "m.jsonl"
    path.write_text(good(10))
    real_write, calls = os.write, []

    def half_then_full(fd, data):
        calls.append(1)
        if len(calls) == 1:
            return real_write(fd, bytes(data[:5]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(OSError) as info:
        append_line(path, good(20))
    monkeypatch.undo()
    assert info.value.filename == str(path) and path.read_text() == good(10)


# ---------------------------------------------------------------- damaged job records
@pytest.mark.parametrize("name, content, why", [
    ("status.json", b"[1, 2]", "status.json: a JSON list, not a record"),
    ("status.json", b'"done"', "status.json: a JSON str, not a record"),
    ("status.json", b'{"status": "done", "step": "abc"}', "status.json: step 'abc' is not a whole number"),
    ("status.json", b'{"status": "done", "step": Infinity}', "status.json: step inf is not a whole number"),
    ("status.json", b'{"status": "done", "step": 5}\xff\xfe', "status.json: Extra data"),
    (".hydra/overrides.yaml", b'- !!python/object/apply:os.system ["touch PWNED"]\n',
     ".hydra/overrides.yaml: could not determine a constructor for the tag"),
    (".hydra/overrides.yaml", b"- [unclosed\n", ".hydra/overrides.yaml: while parsing"),
    (".hydra/overrides.yaml", b"just a string\n", ".hydra/overrides.yaml: not a list of key=value"),
])
def test_report_lists_a_damaged_job_as_unreadable_with_the_reason(tmp_path, monkeypatch, name, content, why):
    from ganzoo.report import write_report
    monkeypatch.chdir(tmp_path)
    for job in ("good", "bad"):
        (tmp_path / job / ".hydra").mkdir(parents=True)
        (tmp_path / job / ".hydra" / "overrides.yaml").write_text(f"- seed={len(job)}\n")
        (tmp_path / job / "status.json").write_text(json.dumps({"status": "done", "step": 5}))
        (tmp_path / job / "metrics.jsonl").write_bytes(b'{"step": 5, "mmd": 0.5}\n{"step": "x", "mmd": 9}\n'
                                                       b'{"step": Infinity, "mmd": 9}\n\xff\xfe\n')
    (tmp_path / "bad" / name).write_bytes(content)
    bad, good = read_job(tmp_path / "bad"), read_job(tmp_path / "good")
    assert bad.status == "unreadable" and why in bad.error
    assert (good.status, good.final) == ("done", {"mmd": 0.5})  # the damaged records are skipped
    write_report(tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "`bad`: **unreadable**" in md and "| 0.5 |" in md.replace("0.500", "0.5")
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("content", ['{"status": "done", "step": "abc"}', '{"status": "done", "step": -3}',
                                     '{"status": "done", "step": 1.5}'])
def test_resume_auto_refuses_a_damaged_status_step_in_one_line(tmp_path, content):
    from ganzoo.rundir import auto_resume
    (tmp_path / "status.json").write_text(content)
    with pytest.raises(CheckpointError, match="status.json is damaged .* delete it to let resume=auto use the "
                                              "checkpoint"):
        auto_resume(tmp_path, 10)


@pytest.mark.parametrize("content", [b"[1, 2]", b'"done"', b"\xff\xfe", b"{"])
def test_resume_auto_reads_a_status_that_is_no_record_as_none(tmp_path, content):
    from ganzoo.rundir import auto_resume, read_status
    (tmp_path / "status.json").write_bytes(content)
    assert read_status(tmp_path) is None and auto_resume(tmp_path, 10) is None  # no checkpoint: a fresh start
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "last.pt").write_bytes(b"x")
    assert auto_resume(tmp_path, 10) == "resume"  # the checkpoint decides (and is checked when loaded)


def test_a_killed_writes_temp_file_is_removed_when_the_run_next_starts(tmp_path):
    from ganzoo.rundir import RunLock, atomic_write
    (tmp_path / "ckpt").mkdir()
    left = [tmp_path / "ckpt" / ".last.pt.k3j_9x0a.tmp", tmp_path / ".status.json.abcdefgh.tmp"]
    kept = [tmp_path / "notes.tmp", tmp_path / ".my.file.tmp", tmp_path / "ckpt" / "last.pt.abcdefgh.tmp",
            tmp_path / ".hidden.ABCDEFGH.tmp"]  # not the writer's pattern: a user's files stay
    for f in left + kept:
        f.write_bytes(b"x" * 10)
    lock = RunLock(tmp_path).acquire()
    try:
        assert not any(f.exists() for f in left) and all(f.exists() for f in kept)
    finally:
        lock.release()
    # the pattern is atomic_write's own: a temp it leaves matches it (negative control above: others do not)
    import ganzoo.rundir as rundir
    seen = []
    real_replace = os.replace
    try:
        os.replace = lambda src, dst: seen.append(os.path.basename(src)) or real_replace(src, dst)
        atomic_write(tmp_path / "status.json", lambda fh: fh.write(b"{}"))
    finally:
        os.replace = real_replace
    assert seen and rundir._TEMP.match(seen[0])


def test_a_lock_that_is_a_folder_is_refused_in_one_line(tmp_path):
    from ganzoo.rundir import FolderBusy, RunLock
    (tmp_path / ".lock").mkdir()
    with pytest.raises(FolderBusy, match=r"\.lock is a folder, not ganzoo's lock file: remove it"):
        RunLock(tmp_path).acquire()
    assert FolderBusy.exit_code == 2


def test_a_full_disk_at_start_leaves_no_lock_and_no_empty_folder(tmp_path, monkeypatch):
    import errno
    from ganzoo.rundir import RunLock
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "write", full)
    run = tmp_path / "new" / "run"
    with pytest.raises(GanzooError, match=r"cannot lock the run folder: .*No space left on device \(ENOSPC\): "
                                          r"free space on that disk"):
        RunLock(run).acquire()
    assert not (tmp_path / "new").exists()  # neither the folders it made nor a 0-byte .lock
    # an existing folder keeps what it held (negative control: only what acquire made goes)
    run.mkdir(parents=True)
    (run / "keep.txt").write_text("mine")
    with pytest.raises(GanzooError):
        RunLock(run).acquire()
    assert (run / "keep.txt").read_text() == "mine" and not (run / ".lock").exists()
    monkeypatch.setattr(os, "write", real_write)
    RunLock(run).acquire().release()  # and with space again it locks
