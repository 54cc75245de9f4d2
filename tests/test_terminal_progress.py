"""Progress on a terminal, nothing extra when piped: `intake poll --once` over a real
Dovecot (behind the 163-like proxy) and `intake check`, each run piped and under a
pseudo-terminal."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path

from tests.conftest import simple_mail
from tests.imap_server import PASSWORD, USER

ROOT = Path(__file__).resolve().parents[1]
ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
PROGRESS_WORDS = ("正在收取新邮件", "正在处理", "本轮结束", "正在审核")


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    return {**clean, "PYTHONPATH": str(ROOT), "INTAKE_DATA_DIR": str(tmp_path / "data"),
            "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'intake.sqlite3'}", "INTAKE_FETCH_LINKS": "false",
            "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40", **values}


def _mailbox_env(tmp_path: Path, mailbox_163, count: int) -> dict[str, str]:
    dovecot, proxy = mailbox_163
    client = dovecot.client()
    for n in range(1, count + 1):
        client.append("INBOX", simple_mail(n), msg_time=ON_TIME)
    client.logout()
    return _env(tmp_path, INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=str(proxy.port), INTAKE_IMAP_SSL="false",
                INTAKE_IMAP_USER=USER, INTAKE_IMAP_PASSWORD=PASSWORD)


def run_in_pty(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 300) -> tuple[int, str]:
    """Run ``intake ARGS`` with stdin, stdout and stderr on a pseudo-terminal; its exit
    status and everything it wrote there, escapes removed. The child is killed if the
    test fails or times out."""
    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "intake.cli", *args], env=env, cwd=cwd,
                               stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []

    def read() -> None:  # drained all along: a full pty would block the child
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed its end
                return
            if not chunk:
                return
            chunks.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        code = process.wait(timeout=timeout)
        reader.join(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(master)
    return code, ESCAPES.sub("", b"".join(chunks).decode("utf-8", "replace"))


def test_poll_once_piped_prints_only_its_summary(tmp_path, mailbox_163):
    env = _mailbox_env(tmp_path, mailbox_163, 2)
    done = subprocess.run([sys.executable, "-m", "intake.cli", "poll", "--once"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "新邮件 2 封，本次处理 2 封。\n"
    assert "\x1b" not in done.stdout + done.stderr
    assert not [word for word in PROGRESS_WORDS if word in done.stdout + done.stderr]


def test_poll_once_on_a_terminal_shows_each_message(tmp_path, mailbox_163):
    env = _mailbox_env(tmp_path, mailbox_163, 2)
    code, shown = run_in_pty(["poll", "--once"], env, tmp_path)
    assert code == 0, shown
    # a line per message worked: its receipt, sender, state and verdict
    assert re.search(r"WX2024-000001\s+unit1@163\.com\s+已完成\s+未通过", shown), shown
    assert re.search(r"WX2024-000002\s+unit2@163\.com\s+已完成\s+未通过", shown), shown
    assert "本轮结束，共处理 2 封邮件。" in shown
    assert "新邮件 2 封，本次处理 2 封。" in shown
    # run again: nothing new, nothing worked, the live line still says so
    code, again = run_in_pty(["poll", "--once"], env, tmp_path)
    assert code == 0 and "本轮结束，共处理 0 封邮件。" in again and "WX2024-" not in again


def test_check_shows_a_spinner_on_a_terminal_only(tmp_path):
    empty = tmp_path / "package"
    empty.mkdir()
    env = _env(tmp_path)
    piped = subprocess.run([sys.executable, "-m", "intake.cli", "check", str(empty)], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=300)
    assert piped.returncode == 1 and piped.stderr == "" and "\x1b" not in piped.stdout
    code, shown = run_in_pty(["check", str(empty)], env, tmp_path)
    assert code == 1 and "正在审核" in shown
    assert piped.stdout.splitlines()[0] in shown  # the same report, the spinner only added


def test_a_refused_login_on_a_terminal_ends_the_live_line_and_says_the_one_line(tmp_path, mailbox_163):
    env = {**_mailbox_env(tmp_path, mailbox_163, 1), "INTAKE_IMAP_PASSWORD": "wrong"}
    code, shown = run_in_pty(["poll", "--once"], env, tmp_path)
    assert code == 2, shown
    assert "本轮中断，共处理 0 封邮件。" in shown and "Traceback" not in shown
    assert re.search(r"intake: INTAKE_IMAP_PASSWORD", shown), shown
