"""Shared test helpers. Everything is made with real tools; nothing is mocked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from intake.core import check_package
from intake.kernel.policy import load_policy, parse_instant
from intake.samples import zip_folder as _zip_folder

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
    """The folder zipped as a sender zips it: every name starts with the folder's name."""
    return _zip_folder(folder, archive, keep_name=True)


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


# ------------------------------------------------------------------ daemon fixtures

PG_URL = os.environ.get("INTAKE_TEST_DATABASE_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """SQLite in the test's folder, and PostgreSQL in a schema of its own when
    INTAKE_TEST_DATABASE_URL is set (.ci/run sets it)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'intake.sqlite3'}"
        return
    if not PG_URL:
        pytest.skip("INTAKE_TEST_DATABASE_URL is not set: PostgreSQL tests skipped")
    import uuid

    from sqlalchemy import create_engine, text

    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    separator = "&" if "?" in PG_URL else "?"
    yield f"{PG_URL}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def dovecot():
    if not shutil.which("dovecot"):
        pytest.skip("dovecot is not installed (deploy/bootstrap.sh --test installs it)")
    from tests.imap_server import Dovecot

    server = Dovecot()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def mailbox_163(dovecot):
    """Dovecot behind the 163-like proxy: (dovecot, proxy)."""
    from tests.imap_server import Proxy163

    proxy = Proxy163(dovecot.port)
    yield dovecot, proxy
    proxy.close()


def daemon_settings(tmp_path, database_url, **values):
    from intake.settings import Settings

    settings = Settings(data_dir=tmp_path / "data", database_url=database_url, **values)
    return settings


def simple_mail(n: int, body: str = "请查收", subject: str | None = None, date: str | None = None,
                attachments: dict | None = None, headers: dict | None = None) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = f"unit{n}@163.com"
    message["To"] = "collect@163.com"
    message["Subject"] = subject or f"报送 {n}"
    message["Message-ID"] = f"<m{n}@test.example.cn>"
    if date:
        message["Date"] = date
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    for name, data in (attachments or {}).items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()
