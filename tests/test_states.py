"""The state machine: one table of moves, one function that makes them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from intake.daemon.claims import locked
from intake.daemon.transitions import IllegalMove, LostClaim, move
from intake.service import open_service, poll_and_process
from intake.sources import deliver_to_maildir
from intake.states import OUTBOX_MOVES, TRANSITIONS, OutboxState, State, allowed
from intake.store import AuditEvent, Message
from tests.conftest import daemon_settings, simple_mail


def answered_service(tmp_path):
    """One message, judged and answered (SQLite)."""
    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), datetime(2024, 7, 30, tzinfo=timezone.utc))
    service = open_service(daemon_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", maildir=folder))
    poll_and_process(service)
    return service


def test_the_table_covers_every_state_and_ends_only_in_done_or_quarantine():
    assert set(TRANSITIONS) == set(State)
    assert [s for s in State if not TRANSITIONS[s]] == [State.DONE, State.QUARANTINED]
    assert not allowed(State.DONE, State.JUDGED) and allowed(State.DONE, State.RECEIVED, staff=True)


def test_the_outbox_table_never_leaves_sent_and_only_staff_or_a_pass_requeue():
    assert set(OUTBOX_MOVES) == set(OutboxState)
    assert [s for s in OutboxState if not OUTBOX_MOVES[s]] == [OutboxState.SENT]
    # a row in sending is never taken by a pass again: only sent, failed or queued (a
    # 4xx before the data went, staff's resend, or the outbox folder's repeat)
    assert OUTBOX_MOVES[OutboxState.QUEUED] == {OutboxState.SENDING}
    assert OutboxState.SENDING not in OUTBOX_MOVES[OutboxState.FAILED] | OUTBOX_MOVES[OutboxState.HELD]


def test_move_refuses_what_the_table_does_not_allow_and_a_lost_claim(tmp_path):
    service = answered_service(tmp_path)
    with service.Session.begin() as session:
        message = session.scalars(select(Message)).one()
        assert message.state == State.DONE
        message.claimed_by = "me"
        with pytest.raises(IllegalMove):
            move(session, message, State.JUDGED, "me")
        with pytest.raises(LostClaim):
            move(session, message, State.JUDGED, "someone else")
    with service.Session() as session:
        actions = [e.action for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id))]
    # every state change on the way was audited by the one function
    assert actions == ["received", "unpacking", "judged", "reply_queued", "mail_sent"]


def test_a_staff_move_releases_the_claim_and_is_audited(tmp_path):
    service = answered_service(tmp_path)
    with service.Session.begin() as session:
        message = locked(session, 1)
        message.claimed_by = "a worker"
        move(session, message, State.RECEIVED, "staff", staff=True, action="reprocess")
        assert message.state == State.RECEIVED and message.claimed_by is None
