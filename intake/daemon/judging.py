"""The unpacking and judging stage: the core judges the stored message offline; its
report, projects, findings and attachment digests are saved in one transaction with
the state ``judged``. A crash before that commit means judging again from scratch,
after it never."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

import intake.budgeted
from intake.daemon.claims import LeaseRenewal, aware, locked
from intake.daemon.ledger import raw_file
from intake.daemon.rules import find_unit, name_key, quota_finding, supersede
from intake.daemon.transitions import LostClaim, move
from intake.kernel.fetched import FetchedPackage
from intake.kernel.findings import Finding
from intake.kernel.report import Report
from intake.states import State
from intake.store import FindingRow, Message, Project, StoredFile

if TYPE_CHECKING:  # the worker calls this stage; typing only, no import cycle
    from intake.daemon.worker import Worker


def judge(worker: Worker, message_id: int, fetched: FetchedPackage | None = None) -> None:
    """Unpack and judge one claimed message, with what its links brought (``fetched``);
    save the outcome (or quarantine a message that its workers died on ``max_attempts`` times)."""
    with worker.Session.begin() as session:
        message = locked(session, message_id)
        if message.claimed_by != worker.me:
            raise LostClaim(f"message {message_id} was taken over")
        if message.state == State.UNPACKING and message.attempts >= worker.settings.max_attempts:
            # it was in hand when its worker died, max_attempts times: a poison message
            message.last_error = "the worker died while processing this message"
            move(session, message, State.QUARANTINED, worker.me, release=True, error=message.last_error)
            return
        message.attempts += 1  # counted when work starts: a crash counts too
        move(session, message, State.UNPACKING, worker.me, attempt=message.attempts)
    report, attachments = _judged(worker, message, fetched)
    with worker.Session.begin() as session:
        message = locked(session, message_id)
        if message.report is not None or message.claimed_by != worker.me:
            raise LostClaim(f"message {message_id} was judged or taken over meanwhile")  # never twice
        _save(session, worker.me, message, report, attachments, fetched)


def _judged(worker: Worker, message: Message,
            fetched: FetchedPackage | None) -> tuple[Report, list[tuple[str, str, int]]]:
    # a folder of its own: two workers may share a pid (containers) and a data folder
    workdir = worker.settings.data_dir / "work" / f"{message.receipt or message.id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    shutil.rmtree(workdir, ignore_errors=True)
    received = aware(message.received_at) if message.received_at else None
    try:
        with LeaseRenewal(worker.Session, message.id, worker.me):  # judged in a child, under the budget
            report = intake.budgeted.check_message_within(raw_file(worker.settings.data_dir, message), worker.policy, received, workdir,
                                                          worker.judges, fetched)
        return report, _attachment_digests(workdir / "attachments")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _save(session: Session, me: str, message: Message, report: Report, attachments: list[tuple[str, str, int]],
          fetched: FetchedPackage | None = None) -> None:
    data = report.to_json()
    if fetched is not None:  # each link's outcome, the listing and our side's errors, for staff
        data["fetch"] = fetched.summary()
    unit = find_unit(session, message.from_address, report.unit)
    message.unit_id = unit.id if unit else None
    message.unit_name = unit.name if unit else report.unit
    rows = [Project(message_id=message.id, unit_id=message.unit_id, unit_name=message.unit_name, name=p.name,
                    name_key=name_key(p.name), verdict=str(p.verdict), files=p.files) for p in report.projects]
    session.add_all(rows)
    session.flush()
    late = any(f["code"] == "deadline.late" for f in data["findings"])
    for row in rows:
        row.late = late
    extra: list[Finding] = []
    if message.unit_name and not late:  # a late report is void: it replaces nothing
        extra += supersede(session, message, rows, me)
    over_quota = quota_finding(session, unit) if unit is not None else None
    if over_quota is not None:
        extra.append(over_quota)
    data["findings"] += [f.to_json() for f in extra]
    data["unit"] = message.unit_name
    session.add_all(FindingRow(message_id=message.id, project=f["project"], code=f["code"], severity=f["severity"],
                               text=f["message"], path=f["path"]) for f in data["findings"])
    session.add_all(StoredFile(message_id=message.id, name=name, sha256=digest, size=size)
                    for name, digest, size in attachments)
    message.report = data
    message.verdict = message.override or data["verdict"]  # a staff decision stands
    message.last_error = None
    move(session, message, State.JUDGED, me, verdict=data["verdict"])


def _attachment_digests(folder: Path) -> list[tuple[str, str, int]]:
    found = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.is_file():
                digest = hashlib.sha256()
                with open(path, "rb") as fh:
                    for chunk in iter(lambda: fh.read(1 << 20), b""):
                        digest.update(chunk)
                found.append((path.name, digest.hexdigest(), path.stat().st_size))
    return found
