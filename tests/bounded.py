"""Hostile inputs judged in a child process under a hard address-space limit and a
timeout: reading that is not bounded fails the test (MemoryError, a kill, the timeout)
instead of taking the machine down. Nothing here measures speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from intake.samples import make_project

ROOT = Path(__file__).resolve().parents[1]
MEMORY = 600 << 20  # the old readers took 1 to 4 GiB on these inputs
SECONDS = 120

_JUDGE = """
import json, resource, sys
from pathlib import Path
limit = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
from intake.core import check_package
from intake.kernel.policy import load_policy
report = check_package(Path(sys.argv[2]), load_policy("roadshow"))
print(json.dumps(report.to_json(), ensure_ascii=False))
"""


# The soft limit only: a judging child of the CLI's own (the budget of issue 10 §1) sets
# its own limit, which it could not if this one were hard.
_CHECK = """
import resource, runpy, sys
resource.setrlimit(resource.RLIMIT_AS, (int(sys.argv[1]), resource.RLIM_INFINITY))
sys.argv = ["intake", "check", "--json", sys.argv[2]]
runpy.run_module("intake.cli", run_name="__main__")
"""


def judge_bounded(path: Path, memory: int = MEMORY) -> dict:
    """The core's JSON report on ``path``, judged in a child limited to ``memory`` bytes."""
    proc = subprocess.run(
        [sys.executable, "-c", _JUDGE, str(memory), str(path)],
        capture_output=True, text=True, timeout=SECONDS, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def project_with(tmp_path: Path, kind: str, source: Path) -> tuple[Path, str]:
    """A complete project folder whose ``kind`` (video, document, question_bank) is ``source``;
    the package folder and the file's path in it."""
    folder = make_project(tmp_path / "package" / "安全课", "安全课")
    names = {"video": "安全课.mp4", "document": "安全课-说明.docx", "question_bank": "安全课-题库.xlsx"}
    for existing in folder.iterdir():
        if existing.name == names[kind]:
            existing.unlink()
    target = folder / f"{Path(names[kind]).stem}{source.suffix}"
    source.replace(target)
    return tmp_path / "package", f"安全课/{target.name}"


def judged_in_project(tmp_path: Path, kind: str, source: Path, codes: list[str]) -> list[dict]:
    """The findings on ``source`` judged as a project's ``kind`` within the bounds, which
    must have ``codes``; then `intake check --json` on the package, also within the bounds,
    must exit 1 (the form is missing) with the same findings, never 2."""
    package, rel = project_with(tmp_path, kind, source)
    findings = [f for f in judge_bounded(package)["findings"] if f["path"] == rel]
    assert [f["code"] for f in findings] == codes
    proc = subprocess.run(
        [sys.executable, "-c", _CHECK, str(MEMORY), str(package)],
        capture_output=True, text=True, timeout=SECONDS, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert [f["code"] for f in json.loads(proc.stdout)["findings"] if f["path"] == rel] == codes
    return findings
