"""Shared test helpers. Everything is made with real tools; nothing is mocked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from intake.core import check_package
from intake.policy import load_policy, parse_instant

# ../shared beside the checkout, or wherever INTAKE_SHARED_DIR points
SHARED = Path(os.environ.get("INTAKE_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
LIBARCHIVE = SHARED / "fixtures" / "libarchive"


@pytest.fixture
def policy():
    return load_policy("roadshow")


def tight_policy(**archive):
    return load_policy("roadshow", {"archive": archive})


def judge(path, policy=None, received_at=None, workdir=None):
    """The core's JSON for a path, as `intake check --json` prints it."""
    policy = policy or load_policy("roadshow")
    moment = parse_instant(received_at, "received_at") if received_at else None
    return check_package(Path(path), policy, moment, workdir).to_json()


def codes(report: dict) -> list[str]:
    return [f["code"] for f in report["findings"]]


@pytest.fixture
def libarchive_fixture(tmp_path):
    """Copy one of ../shared/fixtures/libarchive into its own folder (tools look for volumes by name)."""
    if not LIBARCHIVE.is_dir():
        pytest.skip(f"shared fixtures absent: {LIBARCHIVE}")

    def copy(*names: str) -> Path:
        target = tmp_path / "fixture"
        target.mkdir(exist_ok=True)
        for name in names:
            shutil.copy(LIBARCHIVE / name, target / name)
        return target / names[0]

    return copy


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "intake.cli", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=600,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
    )


def cli_json(*args: str) -> tuple[int, dict]:
    proc = run_cli("check", "--json", *args)
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def zip_folder(folder: Path, archive: Path) -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for file in sorted(folder.rglob("*")):
            bundle.write(file, file.relative_to(folder.parent).as_posix())
    return archive


def soffice_convert(source: Path, to: str, outdir: Path) -> Path:
    """Convert with LibreOffice (makes real legacy .doc/.xls files for the tests)."""
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        pytest.skip("LibreOffice is not installed (deploy/bootstrap.sh --test installs it)")
    profile = Path(tempfile.mkdtemp(prefix="lo-profile-"))
    subprocess.run(
        [soffice, f"-env:UserInstallation=file://{profile}", "--headless", "--convert-to", to,
         "--outdir", str(outdir), str(source)],
        check=True, capture_output=True, timeout=180,
    )
    shutil.rmtree(profile, ignore_errors=True)
    return outdir / f"{source.stem}.{to.split(':')[0]}"
