"""Benchmark: unpacking one-project zips in process (zipfile) against 7-Zip.

Builds one project as the daemon benchmark does (form, scan, 2 s 1080p video, document,
question bank), zips it N times under different names (stored, as in the daemon
benchmark, and deflated), and unpacks each zip twice with ``intake.parsers.archives.
unpack``: once with zips extracted in process, once with every zip sent to 7-Zip (the
path before). The two ways alternate zip by zip so that a noisy machine hurts both
alike. Prints the per-zip time of the whole unpacking step (listing, limits,
extraction, the walk and name checks): median, mean and 90th percentile.

    .venv/bin/python bench/zip_bench.py [--zips 200]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from intake.kernel.policy import load_policy  # noqa: E402
from intake.parsers.archives import unpack  # noqa: E402
from intake.samples import make_form, make_project, make_scan, zip_folder  # noqa: E402

LIMITS = load_policy().archive


def build(work: Path, count: int, method: int) -> list[Path]:
    project = work / "pkg"
    if not project.exists():
        make_form(project / "报送表.docx", courses=["课程甲"])
        make_scan(project / "报送表.pdf")
        make_project(project / "课程甲", "材料")
    zips = work / f"zips-{method}"
    zips.mkdir()
    return [zip_folder(project, zips / f"{n:03d}-材料.zip", method) for n in range(count)]


def unpack_ms(archive: Path, workdir: Path, in_process: bool) -> float:
    started = time.perf_counter()
    package = unpack(archive, workdir, LIMITS, zip_in_process=in_process)
    elapsed = (time.perf_counter() - started) * 1000
    expected = "zipfile" if in_process else "7zz"
    if package.extracted_by != [expected] or package.problems or len(package.files) != 5:
        raise SystemExit(f"{archive.name}: unexpected result {package.extracted_by} {package.problems}")
    shutil.rmtree(workdir)
    return elapsed


def line(label: str, times: list[float]) -> str:
    times = sorted(times)
    p90 = times[int(len(times) * 0.9) - 1]
    return (f"  {label:<22} median {statistics.median(times):6.2f} ms   mean {statistics.fmean(times):6.2f} ms"
            f"   p90 {p90:6.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--zips", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="zip-bench-") as tmp:
        work = Path(tmp)
        for method, label in ((zipfile.ZIP_STORED, "stored"), (zipfile.ZIP_DEFLATED, "deflated")):
            zips = build(work, args.zips, method)
            size = zips[0].stat().st_size
            old: list[float] = []
            new: list[float] = []
            for n, archive in enumerate(zips):
                ways = [(True, new), (False, old)] if n % 2 else [(False, old), (True, new)]
                for in_process, times in ways:
                    times.append(unpack_ms(archive, work / "out", in_process))
            print(f"{args.zips} one-project zips, {label} ({size / 1e6:.2f} MB, 5 files each), unpack() per zip:")
            print(line("7-Zip (before)", old))
            print(line("zipfile in process", new))
            saved = statistics.median(old) - statistics.median(new)
            print(f"  saved per zip (median): {saved:.2f} ms, {statistics.median(old) / statistics.median(new):.1f}x")


if __name__ == "__main__":
    main()
