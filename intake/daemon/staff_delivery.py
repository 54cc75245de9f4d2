"""Delivery of queued staff mail (the digest, alerts) through the configured transport.

A stand-in: the smtp branch's delivery pass (``deliver_pending``, every kind of mail,
one SMTP connection per batch, retries with backoff) replaces it at merge. It takes
each row with a compare-and-set (queued -> sending), so two workers never hand the
same row to the transport; a row left in ``sending`` by a crash stays there and the
digest lists it for staff.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update
from sqlalchemy.orm import sessionmaker

from intake.kernel.errors import IntakeError, PermanentError
from intake.notifier.transport import Outgoing, Transport
from intake.states import OutboxState
from intake.store import Outbox, utcnow

log = logging.getLogger("intake")
STAFF_KINDS = ("digest", "alert")
SENDING, FAILED = "sending", "failed"  # the smtp branch's OutboxState values


def deliver_staff_mail(Session: sessionmaker, transport: Transport) -> int:
    """Hand every queued staff mail to the transport; returns how many went out."""
    with Session() as session:
        waiting = session.scalars(select(Outbox.id).where(Outbox.kind.in_(STAFF_KINDS),
                                                          Outbox.state == OutboxState.QUEUED.value)
                                  .order_by(Outbox.id)).all()
    sent = 0
    for outbox_id in waiting:
        with Session.begin() as session:
            taken = session.execute(update(Outbox).where(Outbox.id == outbox_id,
                                                         Outbox.state == OutboxState.QUEUED.value)
                                    .values(state=SENDING, updated_at=utcnow()))
            if taken.rowcount != 1:
                continue  # another worker has it
            row = session.get(Outbox, outbox_id)
            assert row is not None  # rows are never deleted while queued
            mail = Outgoing(f"{row.kind}-{row.id}", row.recipient, row.raw)
        try:
            transport.send(mail)
        except IntakeError as err:
            state = FAILED if isinstance(err, PermanentError) else OutboxState.QUEUED.value
            with Session.begin() as session:
                session.execute(update(Outbox).where(Outbox.id == outbox_id)
                                .values(state=state, last_error=str(err)[:2000], updated_at=utcnow()))
            log.error("staff mail %s not delivered: %s", outbox_id, err)
            if state != FAILED:
                break  # the transport's moment: the next round tries again
            continue
        with Session.begin() as session:
            session.execute(update(Outbox).where(Outbox.id == outbox_id)
                            .values(state=OutboxState.SENT.value, sent_at=utcnow(), updated_at=utcnow()))
        sent += 1
    return sent
