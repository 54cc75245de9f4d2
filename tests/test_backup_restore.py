"""The operations guide's backup and restore, run as written (docs/operations.md).

A backup taken from a live data folder, restored into a new folder at another path (the old
one deleted), must hold every submission, and the daemon must be able to work on them
there: a reprocessed message is judged again from the restored raw mail.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import PG_URL

ROOT = Path(__file__).resolve().parents[1]


def intake(data_dir: Path, *args: str, database_url: str | None = None,
           maildir: Path | None = None) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env.update(PYTHONPATH=str(ROOT), INTAKE_DATA_DIR=str(data_dir), INTAKE_FETCH_LINKS="false")
    if maildir:
        env["INTAKE_MAILDIR"] = str(maildir)
    if database_url:
        env["INTAKE_DATABASE_URL"] = database_url
    return subprocess.run([sys.executable, "-m", "intake.cli", *args], capture_output=True, text=True,
                          env=env, cwd=data_dir.parent, timeout=600)


def run(*command: str) -> None:
    done = subprocess.run(list(command), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{command}: {done.stderr}"


def submissions(data_dir: Path, database_url: str | None = None) -> list[dict]:
    listed = intake(data_dir, "submissions", "--json", database_url=database_url)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def live_data_folder(tmp_path: Path, database_url: str | None = None) -> tuple[Path, list[dict]]:
    """A data folder the daemon has worked in: the demo's sample mailbox, polled once."""
    data = tmp_path / "intake-data"
    data.mkdir()
    demo = intake(data, "demo", database_url=database_url)
    assert demo.returncode == 0, demo.stderr
    before = submissions(data, database_url)
    assert len(before) >= 4, before  # the demo's good, late, broken and linked submissions at least
    return data, before


def restore_data_folder(archive: Path, target: Path) -> None:
    target.mkdir()
    run("tar", "-C", str(target), "-xzf", str(archive))


def reprocess_and_judge(data: Path, receipt: str, database_url: str | None = None) -> dict:
    """Staff replay one message in the restored folder; the next round judges it again."""
    again = intake(data, "reprocess", receipt, database_url=database_url)
    assert again.returncode == 0, again.stderr
    polled = intake(data, "poll", "--once", database_url=database_url, maildir=data / "demo-maildir")
    assert polled.returncode == 0, polled.stderr
    return {item["receipt"]: item for item in submissions(data, database_url)}[receipt]


def accepted_receipt(listed: list[dict]) -> str:
    return next(item["receipt"] for item in listed if item["verdict"] == "accepted")


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 command is absent (deploy/bootstrap.sh installs it)")
def test_sqlite_backup_restored_into_a_new_data_folder_finds_every_submission(tmp_path):
    data, before = live_data_folder(tmp_path)
    backups = tmp_path / "backups"
    backups.mkdir()
    # docs/operations.md, "Back up": the database with SQLite's online backup, the rest with tar
    run("sqlite3", str(data / "intake.sqlite3"), f".backup '{backups / 'intake.sqlite3'}'")
    run("tar", "-C", str(data), "--exclude=./intake.sqlite3*", "-czf", str(backups / "intake-data.tar.gz"), ".")
    shutil.rmtree(data)  # the server is gone

    restored = tmp_path / "srv" / "intake-data"
    restored.parent.mkdir()
    restore_data_folder(backups / "intake-data.tar.gz", restored)
    shutil.copy(backups / "intake.sqlite3", restored / "intake.sqlite3")
    upgraded = intake(restored, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr

    after = submissions(restored)
    assert after == before
    receipt = accepted_receipt(after)
    assert reprocess_and_judge(restored, receipt)["verdict"] == "accepted"


@pytest.mark.skipif(not PG_URL, reason="INTAKE_TEST_DATABASE_URL is not set (PostgreSQL)")
@pytest.mark.skipif(shutil.which("pg_dump") is None, reason="pg_dump is absent")
def test_postgresql_backup_restored_into_a_new_database_finds_every_submission(tmp_path):
    assert PG_URL is not None
    server = urlsplit(PG_URL)
    names = [f"intake_backup_{uuid.uuid4().hex[:8]}", f"intake_restore_{uuid.uuid4().hex[:8]}"]
    urls = [urlunsplit(server._replace(path=f"/{name}")) for name in names]
    for name in names:
        run("psql", "-q", "-d", PG_URL, "-c", f"CREATE DATABASE {name}")
    try:
        data, before = live_data_folder(tmp_path, urls[0])
        backups = tmp_path / "backups"
        backups.mkdir()
        # docs/operations.md, "Back up": pg_dump in its custom format, the data folder with tar
        run("pg_dump", "-Fc", "-d", urls[0], "-f", str(backups / "intake.dump"))
        run("tar", "-C", str(data), "--exclude=./intake.sqlite3*", "-czf", str(backups / "intake-data.tar.gz"), ".")
        shutil.rmtree(data)

        restored = tmp_path / "srv" / "intake-data"
        restored.parent.mkdir()
        restore_data_folder(backups / "intake-data.tar.gz", restored)
        run("pg_restore", "--no-owner", "-d", urls[1], str(backups / "intake.dump"))
        after = submissions(restored, urls[1])
        assert after == before
        receipt = accepted_receipt(after)
        assert reprocess_and_judge(restored, receipt, urls[1])["verdict"] == "accepted"
    finally:
        for name in names:
            subprocess.run(["psql", "-q", "-d", PG_URL, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                           capture_output=True, timeout=60)


def crash_with_work_unsaved(database: Path) -> None:
    """The server went down after the backup: a writer died with its last transactions
    still in SQLite's write-ahead log (intake.sqlite3-wal), not yet in the database file."""
    crash = ("import os, sqlite3, sys\n"
             "db = sqlite3.connect(sys.argv[1])\n"
             "db.execute('PRAGMA wal_autocheckpoint=0')\n"
             "db.execute('DELETE FROM findings')\n"
             "db.execute('DELETE FROM messages')\n"
             "db.commit()\n"
             "os._exit(9)\n")
    subprocess.run([sys.executable, "-c", crash, str(database)], timeout=60)
    wal = database.with_name(database.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0, "the crash left a write-ahead log behind"


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="the sqlite3 command is absent (deploy/bootstrap.sh installs it)")
def test_sqlite_backup_restored_on_the_same_server_after_a_crash_finds_every_submission(tmp_path):
    """The guide's restore on the server that crashed, at the same path: the old folder's
    write-ahead log must not be replayed into the restored database."""
    data, before = live_data_folder(tmp_path)
    backups = tmp_path / "backups"
    backups.mkdir()
    run("sqlite3", str(data / "intake.sqlite3"), f".backup '{backups / 'intake.sqlite3'}'")
    run("tar", "-C", str(data), "--exclude=./intake.sqlite3*", "-czf", str(backups / "intake-data.tar.gz"), ".")
    crash_with_work_unsaved(data / "intake.sqlite3")

    # docs/operations.md, "Restore": the crashed folder is moved aside, a new one made in its place
    data.rename(data.with_name(data.name + ".before-restore"))
    restore_data_folder(backups / "intake-data.tar.gz", data)
    shutil.copy(backups / "intake.sqlite3", data / "intake.sqlite3")
    upgraded = intake(data, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert submissions(data) == before
