"""One distribution with a name of its own, installing one import package: `intake`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def source_copy(target: Path) -> Path:
    """The checkout's own files only: a build in the checkout would reuse a stale build/."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, files.decode().split("\0")):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    return target


def test_the_wheel_installs_only_the_intake_package(tmp_path):
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the source files cannot be listed")
    source = source_copy(tmp_path / "src")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
                    "-w", str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    assert wheel.name.startswith("wuxiao_intake-")  # not "intake": that name is another project's
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/top_level.txt"))
        assert archive.read(info).decode().split() == ["intake"]
        entry_points = archive.read(info.replace("top_level.txt", "entry_points.txt")).decode()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == {"intake"}
    for module in ("intake/parsers/archives.py", "intake/validators/video.py", "intake/notifier/replies.py",
                   "intake/policies/roadshow.toml", "intake/migrations/versions/0001_initial_schema.py"):
        assert module in names
    assert "intake = intake.cli:main" in entry_points

    # the wheel's own files work: unpacked alone on the path, away from the checkout
    target = tmp_path / "site"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(target)
    env = {**os.environ, "PYTHONPATH": str(target)}
    # every intake module imported must come from the unpacked wheel, none from the checkout
    probe = ("import sys, intake.cli, intake.service, intake.parsers.archives; "
             "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'intake'))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = proc.stdout.split()
    assert len(loaded) > 40 and all(path.startswith(str(target / "intake")) for path in loaded)
    proc = subprocess.run([sys.executable, "-m", "intake.cli", "policies"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.stdout.split() == ["innovation", "roadshow"], proc.stderr
