"""Benchmark output into the docs: `python scripts/bench.py [--images|--input|--methods|--distributed]
--write docs/BENCHMARKS.md` prints as always and also writes what it printed into that file as one
section, with the command, the machine and the date it ran on. A section is replaced when the same
benchmark runs again, so the file holds each benchmark's latest run and nothing typed by hand."""
from __future__ import annotations

import contextlib
import datetime
import io
import os
import platform
import sys
from pathlib import Path


class Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def machine() -> str:
    """The hardware and software a table's figures belong to."""
    import torch
    parts = [f"{platform.machine()} {platform.processor() or platform.system()}".strip(),
             f"{os.cpu_count()} CPU cores", f"torch {torch.__version__}", f"python {platform.python_version()}"]
    if torch.cuda.is_available():
        parts.insert(1, torch.cuda.get_device_name(0))
    return ", ".join(parts)


def section(name: str, command: str, printed: str, when: datetime.datetime) -> str:
    return (f"<!-- bench:{name} -->\n### {name}\n\n`{command}` on {machine()}, {when:%Y-%m-%d %H:%M} UTC.\n\n"
            f"```\n{printed.rstrip()}\n```\n<!-- /bench:{name} -->\n")


def write_section(path: Path, name: str, text: str) -> None:
    """`text` (a whole section with its markers) in place of the file's section `name`, or after the
    file's end when it has none; written through a temp file and renamed."""
    path = Path(path)
    old = path.read_text() if path.is_file() else ""
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    if start in old and end in old:
        head, rest = old.split(start, 1)
        new = head + text.rstrip("\n") + rest.split(end, 1)[1]
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(new)
    os.replace(tmp, path)


def run_and_write(name: str, main, argv: list, path: str, command: str):
    """main(argv), its printed output also written into `path` as the section `name` when it succeeds."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(Tee(sys.stdout, printed)):
        code = main(argv)
    if not code:
        write_section(Path(path), name, section(name, command, printed.getvalue(),
                                                 datetime.datetime.now(datetime.timezone.utc)))
        print(f"wrote section {name!r} of {path}")
    return code
