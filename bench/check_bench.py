"""Benchmark: `intake check` on a five-project package against the parsing floor.

The floor is the least any checker must do: MediaInfo on each video, python-docx on
each Word file and openpyxl on each workbook, in one process. intake adds project
discovery, section finding, row checks and reporting on top. Prints both timings
and the ratio (target <= 1.3x), plus the wall time of the real command.

    .venv/bin/python bench/check_bench.py [--repeat 15] [--seconds 60]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intake.core import check_package  # noqa: E402
from intake.kernel.policy import load_policy  # noqa: E402
from intake.samples import make_form, make_project, make_scan  # noqa: E402
from intake.parsers import layout  # noqa: E402
from intake.parsers.text import squash  # noqa: E402
from intake.parsers.question_bank_header import header_key  # noqa: E402


def build(root: Path, seconds: int) -> Path:
    courses = [f"课程{n}" for n in "甲乙丙丁戊"]
    for n, course in enumerate(courses, start=1):
        make_project(root / f"{n:02d}-{course}", course, seconds=seconds, rate=25)
    make_form(root / "附件5-报送表.docx", courses=courses)
    make_scan(root / "附件5-报送表（盖章）.pdf")
    return root


def floor(root: Path) -> None:
    import docx
    import openpyxl
    from pymediainfo import MediaInfo

    for path in sorted(root.rglob("*")):
        suffix = path.suffix.lower()
        if suffix == ".mp4":
            MediaInfo.parse(str(path))
        elif suffix == ".docx":
            docx.Document(str(path))
        elif suffix == ".xlsx":
            openpyxl.load_workbook(str(path), data_only=True).close()


def intake_once(root: Path, policy) -> None:
    # a fresh process would have empty caches: clear them so each run parses everything
    layout._blocks_cached.cache_clear()
    layout._sheets_cached.cache_clear()
    squash.cache_clear()
    header_key.cache_clear()
    report = check_package(root, policy)
    assert report.verdict == "accepted", report.findings


def timed_pair(first, second, repeat: int) -> tuple[list[float], list[float]]:
    """Alternate the two so that machine noise hits both alike."""
    first(), second()  # warm up imports and the OS cache
    a, b = [], []
    for _ in range(repeat):
        for fn, runs in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
    return a, b


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--seconds", type=int, default=60, help="length of each video")
    args = parser.parse_args()
    policy = load_policy()
    with tempfile.TemporaryDirectory() as tmp:
        root = build(Path(tmp) / "pkg", args.seconds)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        floor_runs, intake_runs = timed_pair(lambda: floor(root), lambda: intake_once(root, policy), args.repeat)
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "intake.cli", "check", "--json", str(root)],
                       check=True, capture_output=True)
        command_s = time.perf_counter() - start
    print(f"package: 5 projects, {size / 1e6:.1f} MB, {args.seconds}s 1920x1080 videos")
    floor_min, intake_min = min(floor_runs), min(intake_runs)
    floor_med, intake_med = statistics.median(floor_runs), statistics.median(intake_runs)
    print(f"{args.repeat} alternating runs each; best (median) in ms")
    print(f"floor (MediaInfo + python-docx + openpyxl, one process): {floor_min * 1000:7.1f} ({floor_med * 1000:.1f})")
    print(f"intake check_package (same files, in process):          {intake_min * 1000:7.1f} ({intake_med * 1000:.1f})")
    print(f"ratio of best runs: {intake_min / floor_min:.2f}x (target <= 1.3x); of medians: {intake_med / floor_med:.2f}x")
    print(f"`intake check --json` as a command (with interpreter start): {command_s * 1000:.0f} ms")


if __name__ == "__main__":
    main()
