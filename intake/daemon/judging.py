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
from intake.budgeted import MessageJudgement
from intake.daemon.claims import aware, locked
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


class InFlight:
    """A claimed message whose judgement is under way in the judging child (or known
    already: reading its links ran over the budget). Its claim is held, and renewed, from
    ``start`` until ``finish`` has saved it (or found the claim lost)."""

    def __init__(self, message_id: int, fetched: FetchedPackage | None, workdir: Path | None,
                 judgement: MessageJudgement | None, report: Report | None = None) -> None:
        self.message_id, self.fetched, self.workdir = message_id, fetched, workdir
        self.judgement, self.report = judgement, report
        self.error: BaseException | None = None

    def wait(self) -> None:
        """Take the child's answer (the child is free again); errors are kept for ``finish``."""
        if self.judgement is not None and self.report is None and self.error is None:
            try:
                self.report = self.judgement.report()
            except Exception as err:  # the judgement's failure is this message's: raised in finish
                self.error = err


def judge(worker: Worker, message_id: int, fetched: FetchedPackage | None = None) -> bool:
    """Unpack and judge one claimed message, with what its links brought (``fetched``);
    save the outcome (True), or quarantine a message that its workers died on
    ``max_attempts`` times (False)."""
    flight = start(worker, message_id, fetched)
    if flight is None:
        return False
    finish(worker, flight)
    return True


def start(worker: Worker, message_id: int, fetched: FetchedPackage | None = None) -> InFlight | None:
    """Count the attempt, move to ``unpacking`` and hand the message to the judging child;
    None when it was quarantined instead (its workers died on it ``max_attempts`` times)."""
    with worker.Session.begin() as session:
        message = locked(session, message_id)
        if message.claimed_by != worker.me:
            raise LostClaim(f"message {message_id} was taken over")
        if message.state == State.UNPACKING and message.attempts >= worker.settings.max_attempts:
            # it was in hand when its worker died, max_attempts times: a poison message
            message.last_error = "the worker died while processing this message"
            move(session, message, State.QUARANTINED, worker.me, release=True, error=message.last_error)
            return None
        message.attempts += 1  # counted when work starts: a crash counts too
        move(session, message, State.UNPACKING, worker.me, attempt=message.attempts)
    over_budget = worker.over_budget.pop(message.id, None)
    if over_budget is not None:  # reading its links ran over the budget: judged already
        return InFlight(message_id, fetched, None, None, over_budget)
    # a folder of its own: two workers may share a pid (containers) and a data folder
    workdir = worker.settings.data_dir / "work" / f"{message.receipt or message.id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    received = aware(message.received_at) if message.received_at else None
    worker.leases.hold(message_id)  # until finish: judged in the child, then saved
    try:
        judgement = intake.budgeted.submit_message(raw_file(worker.settings.data_dir, message), worker.policy,
                                                   received, workdir, worker.judges, fetched)
    except BaseException:
        worker.leases.release(message_id)
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    return InFlight(message_id, fetched, workdir, judgement)


def finish(worker: Worker, flight: InFlight) -> None:
    """Wait for the judgement and save it, once, while the claim is still ours."""
    try:
        report, attachments = _outcome(flight)
        with worker.Session.begin() as session:
            message = locked(session, flight.message_id)
            if message.report is not None or message.claimed_by != worker.me:  # never twice
                raise LostClaim(f"message {flight.message_id} was judged or taken over meanwhile")
            _save(session, worker.me, message, report, attachments, flight.fetched)
    finally:
        worker.leases.release(flight.message_id)


def _outcome(flight: InFlight) -> tuple[Report, list[tuple[str, str, int]]]:
    """The report and the digests of the attachments the child unpacked (then removed)."""
    try:
        flight.wait()
        if flight.error is not None:
            raise flight.error
        assert flight.report is not None
        return flight.report, _attachment_digests(flight.workdir / "attachments") if flight.workdir else []
    finally:
        if flight.workdir is not None:
            shutil.rmtree(flight.workdir, ignore_errors=True)


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
