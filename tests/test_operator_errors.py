"""An operator's mistake gets one line that names what to fix, exit 2, and no
traceback unless asked for (--debug or INTAKE_DEBUG=1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.imap_server import free_port

ROOT = Path(__file__).resolve().parents[1]


def intake(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    return subprocess.run([sys.executable, "-m", "intake.cli", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**clean, "PYTHONPATH": str(ROOT), **env})


def one_line(proc: subprocess.CompletedProcess, *words: str) -> str:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("url, words", [
    ("mysql://x", ["INTAKE_DATABASE_URL", "mysql", "postgresql://"]),
    ("garbage", ["INTAKE_DATABASE_URL", "not a database URL"]),
    ("postgresql://intake:secret@127.0.0.1:{port}/x", ["INTAKE_DATABASE_URL", "cannot use the database", "running"]),
])
def test_a_bad_database_url_is_one_line(tmp_path, url, words):
    url = url.format(port=free_port())  # nothing listens there
    line = one_line(intake("submissions", cwd=tmp_path, INTAKE_DATABASE_URL=url), *words)
    assert "secret" not in line  # a password is never printed


def test_a_data_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "a-file").write_text("x")
    one_line(intake("submissions", cwd=tmp_path, INTAKE_DATA_DIR=str(tmp_path / "a-file" / "data")),
             "INTAKE_DATA_DIR", "a-file")


def test_sample_into_an_existing_file_is_one_line(tmp_path):
    (tmp_path / "taken").write_text("x")
    one_line(intake("sample", tmp_path / "taken", cwd=tmp_path), "sample:", "taken", "not a folder")
    assert (tmp_path / "taken").read_text() == "x"


@pytest.mark.parametrize("how", ["flag-before", "flag-after", "environment"])
def test_debug_shows_the_traceback(tmp_path, how):
    args, env = ["submissions"], {"INTAKE_DATABASE_URL": f"postgresql://u@127.0.0.1:{free_port()}/x"}
    if how == "flag-before":
        args = ["--debug", *args]
    elif how == "flag-after":
        args = [*args, "--debug"]
    else:
        env["INTAKE_DEBUG"] = "1"
    proc = intake(*args, cwd=tmp_path, **env)
    assert proc.returncode == 2 and "Traceback" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("intake: INTAKE_DATABASE_URL")


def test_check_rejects_an_unknown_key_as_the_daemon_does(tmp_path):
    config = tmp_path / "intake.toml"
    config.write_text('imap_hots = "imap.163.com"\n[policy.question_bank]\nmin_questions = 25\n')
    folder = tmp_path / "pkg"
    folder.mkdir()
    for command in (["check", folder], ["submissions"]):
        one_line(intake(*command, "--config", config, cwd=tmp_path), "unknown setting", "imap_hots")


def test_check_reads_the_policy_name_from_the_file_as_the_daemon_does(tmp_path):
    config = tmp_path / "intake.toml"
    config.write_text('policy = "innovation"\n')
    folder = tmp_path / "pkg"
    folder.mkdir()
    proc = intake("check", "--json", folder, "--config", config, cwd=tmp_path)
    assert proc.returncode == 1 and '"policy": "innovation"' in proc.stdout


@pytest.mark.parametrize("url, words", [
    ("postgresql+psycopg2://u@127.0.0.1/x", ["INTAKE_DATABASE_URL", "psycopg2"]),
    ("sqlite://", ["INTAKE_DATABASE_URL", "sqlite:///PATH"]),
])
def test_a_driver_or_path_the_url_lacks_is_one_line(tmp_path, url, words):
    one_line(intake("submissions", cwd=tmp_path, INTAKE_DATABASE_URL=url), *words)


def test_a_data_folder_without_write_access_names_the_data_folder(tmp_path):
    one_line(intake("submissions", cwd=tmp_path, INTAKE_DATA_DIR="/proc/self"), "INTAKE_DATA_DIR")


def test_a_config_that_is_a_folder_is_one_line(tmp_path):
    one_line(intake("check", tmp_path, "--config", tmp_path, cwd=tmp_path), "--config", "cannot read")


def test_policy_table_keys_are_case_blind_like_every_key(tmp_path):
    config = tmp_path / "intake.toml"
    config.write_text("[Policy.deadline]\nat = 2024-07-01T00:00:00\n")
    folder = tmp_path / "pkg"
    folder.mkdir()
    proc = intake("check", "--json", folder, "--received-at", "2024-07-02T00:00:00+08:00", "--config", config,
                  cwd=tmp_path)
    assert proc.returncode == 1 and "deadline.late" in proc.stdout


def test_run_stops_at_start_up_on_a_setting_no_round_can_mend(tmp_path):
    proc = intake("run", cwd=tmp_path, INTAKE_MAILDIR=str(tmp_path / "not-a-maildir"))
    one_line(proc, "INTAKE_MAILDIR", "not a Maildir")
