"""The collection's rules beyond one message: which unit sent it, which earlier
projects it replaces (the newest report of a course wins), and the unit's quota."""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from intake.daemon.claims import aware, is_postgresql
from intake.kernel.findings import Finding
from intake.parsers.text import squash
from intake.store import Message, Project, Unit, UnitContact, audit, utcnow


def name_key(name: str) -> str:
    """A course name compared ignoring spacing, width and punctuation."""
    return squash(name)


def find_unit(session: Session, sender: str | None, form_unit: str | None) -> Unit | None:
    """The unit: by the sender's address, else the form's 上报单位 matched to a unit name."""
    if sender:
        contact = session.scalar(select(UnitContact).where(UnitContact.email == sender.lower()))
        if contact is not None:
            return session.get(Unit, contact.unit_id)
    if form_unit:
        key = name_key(form_unit)
        units = session.scalars(select(Unit)).all()
        exact = [u for u in units if name_key(u.name) == key]
        if exact:
            return exact[0]
        near = [u for u in units if key and (key in name_key(u.name) or name_key(u.name) in key)]
        if len(near) == 1:
            return near[0]
    return None


def supersede(session: Session, message: Message, rows: list[Project], actor: str) -> list[Finding]:
    """The newest report of a course wins, whatever order the reports are judged in
    (a retry, two workers, a reprocess): earlier ones point to it."""
    if is_postgresql(session):  # one unit's reports are matched up one at a time
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:unit))"), {"unit": message.unit_name})
    mine = (aware(message.received_at) if message.received_at else utcnow(), message.id)
    findings = []
    for row in rows:
        others = session.execute(
            select(Project, Message.received_at, Message.id, Message.receipt)
            .join(Message, Project.message_id == Message.id)
            .where(Project.unit_name == message.unit_name, Project.name_key == row.name_key,
                   Project.message_id != message.id, Project.superseded_by.is_(None),
                   Project.late.is_(False))
        ).all()
        ranked = sorted(((aware(at) if at else mine[0], mid), project, receipt)
                        for project, at, mid, receipt in others)
        later = [(key, project) for key, project, _ in ranked if key > mine]
        current = later[-1][1] if later else row
        if later:
            row.superseded_by = current.id
            audit(session, message.id, actor, "superseded", project=row.id, by=current.id)
        for key, project, receipt in ranked:
            if project is current:
                continue
            project.superseded_by = current.id
            audit(session, message.id, actor, "superseded", project=project.id, by=current.id)
            if key < mine and not later:
                findings.append(Finding("duplicate.resubmission",
                                        f"本项目替换此前报送的同名项目（回执号 {receipt}），以本次为准。",
                                        row.name, None, replaces=receipt))
    return findings


def quota_finding(session: Session, unit: Unit) -> Finding | None:
    """quota.exceeded when the unit's current projects (not superseded, not late) pass its quota."""
    if unit.quota is None:
        return None
    current = session.scalar(
        select(func.count(Project.id))
        .where(Project.unit_id == unit.id, Project.superseded_by.is_(None), Project.late.is_(False)))
    if (current or 0) <= unit.quota:
        return None
    return Finding("quota.exceeded", f"{unit.name}的报送名额为 {unit.quota} 个，目前已报送 {current} 个，超出名额。"
                                     "请确认需要保留的项目，工作人员将与贵单位联系。")
