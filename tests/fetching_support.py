"""Helpers of tests/test_fetching*.py: a one-project package built with real tools, mail
that links to it, and `intake poll --once` run as a subprocess against the loopback fakes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select, update

from intake.samples import make_form, make_project, make_scan
from intake.service import open_service
from intake.sources import deliver_to_maildir
from intake.store import Message
from tests.conftest import daemon_settings

ROOT = Path(__file__).resolve().parents[1]
ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)  # 12:00 Beijing, before the deadline
COURSE = "班组安全隐患排查"
SENDER = "hbzgh@126.com"


def build_package(folder: Path) -> Path:
    """The demo's good package, unzipped: a stamped form listing one course, and the
    course's video, document and question bank (judged accepted)."""
    root = folder / "湖北省总工会"
    make_form(root / "附件5-报送表.docx", courses=[COURSE])
    make_scan(root / "附件5-报送表（盖章）.pdf")
    make_project(root / f"01-{COURSE}", COURSE)
    return root


def share_files(package: Path) -> dict[str, Path]:
    """The package as a share's files: paths below the package's own folder."""
    return {path.relative_to(package.parent).as_posix(): path for path in sorted(package.rglob("*"))
            if path.is_file()}


def mail(n: int, text: str, html: str | None = None, sender: str = SENDER,
         attachments: dict[str, bytes] | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"] = sender, "collect@163.com"
    message["Subject"] = f"湖北省总工会路演项目 {n}"
    message["Message-ID"] = f"<fetch{n}@test.example.cn>"
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for name, data in (attachments or {}).items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


class Daemon:
    """A Maildir, a database and `intake poll --once` pointed at the fakes."""

    def __init__(self, tmp_path: Path, database_url: str, fake, **environ: str) -> None:
        self.tmp_path, self.database_url = tmp_path, database_url
        self.maildir = tmp_path / "Maildir"
        for sub in ("new", "cur", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_MAILDIR": str(self.maildir),
                    "INTAKE_DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "INTAKE_HOST_MAP": fake.host_map,
                    "INTAKE_DISK_RESERVE_GB": "0", **environ}
        self.service = open_service(daemon_settings(tmp_path, database_url, maildir=self.maildir))
        self.sent = 0

    def deliver(self, raw: bytes, received: datetime | None = None) -> None:
        self.sent += 1
        deliver_to_maildir(self.maildir, raw, received or ON_TIME + timedelta(minutes=self.sent))

    def intake(self, *args: str, **environ: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "intake.cli", *args], env={**self.env, **environ}, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)

    def poll(self, **environ: str) -> subprocess.CompletedProcess:
        done = self.intake("poll", "--once", **environ)
        assert done.returncode == 0, done.stderr
        return done

    def messages(self) -> list[Message]:
        with self.service.Session() as session:
            return list(session.scalars(select(Message).order_by(Message.id)).all())

    def show(self, receipt: str) -> dict:
        done = self.intake("show", receipt, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def make_due(self) -> None:
        """The next attempt's time has come (set in the database: the test never sleeps)."""
        with self.service.Session.begin() as session:
            session.execute(update(Message).where(Message.next_attempt_at.is_not(None))
                            .values(next_attempt_at=datetime.now(timezone.utc) - timedelta(seconds=1)))

    def replies(self) -> list[Path]:
        outbox = self.tmp_path / "data" / "outbox"
        return sorted(outbox.glob("*.eml")) if outbox.is_dir() else []


def codes(message: Message) -> list[str]:
    return [f["code"] for f in (message.report or {}).get("findings", [])]
