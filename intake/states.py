"""Where a message stands, where an outgoing mail stands, and which moves are allowed.

One enum per thing and one table of moves each; ``intake.daemon.transitions.move`` is
the one function that changes a message's state (and audits it), and
``intake.daemon.delivery`` the one place that changes an outbox row's.

How the two relate: a message's work ends when its reply is *decided*, not when it is
delivered. The replying stage queues the reply (an outbox row, or a ``held`` one, or
none) and moves the message to DONE in the same transaction; from then on the row has
its own life (retries, the server's refusal, an uncertain send) and its own staff
listing (`intake outbox`). Staff mail (digest, alerts) is a row with no message.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    RECEIVED = "received"  # in the ledger, raw bytes stored; nothing done yet
    # its linked files (baidu, netease, qq) are being downloaded, or wait for the next
    # attempt at next_attempt_at after a failure on our side (last_error says why)
    FETCHING = "fetching"
    UNPACKING = "unpacking"  # a worker is unpacking and judging it (attempts counted)
    JUDGED = "judged"  # verdict, projects and findings saved
    DONE = "done"  # its reply is queued (the outbox row goes on alone), held, or not due
    FAILED = "failed"  # an attempt failed; due again at next_attempt_at
    QUARANTINED = "quarantined"  # failed permanently or too often; staff decide


class OutboxState(StrEnum):
    QUEUED = "queued"  # composed; the next delivery pass takes it once next_attempt_at is due
    # committed before the SMTP transaction starts: a row found so by anyone later (its
    # sender died, or the server never answered the end of the data) may have reached
    # the recipient, so it is never sent again automatically; staff see it in `intake
    # outbox` and may `intake resend` it
    SENDING = "sending"
    SENT = "sent"  # the server took it; never sent again
    FAILED = "failed"  # the server refused it for good (5xx); its answer is in last_error
    HELD = "held"  # not sent on purpose: over the per-sender cap (INTAKE_REPLY_LIMIT)


# The moves a worker makes. Staff's reprocess may also move a message from any state to
# RECEIVED (judge again), see STAFF_MOVES; resend moves the reply's outbox row, not the message.
#
# A message with fetchable links goes RECEIVED -> FETCHING -> UNPACKING; one without goes
# straight to UNPACKING. FETCHING -> FETCHING: a fetch failed on our side and waits for
# its next attempt (or a dead worker's fetch is taken up again); when the fetch attempts
# run out the message is judged all the same (needs_review, link.fetch_failed).
TRANSITIONS: dict[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.FETCHING, State.UNPACKING, State.FAILED, State.QUARANTINED}),
    State.FETCHING: frozenset({State.FETCHING, State.UNPACKING, State.FAILED, State.QUARANTINED}),
    # UNPACKING -> UNPACKING: its worker died mid-judgement and another one starts over
    State.UNPACKING: frozenset({State.UNPACKING, State.JUDGED, State.FAILED, State.QUARANTINED}),
    State.JUDGED: frozenset({State.DONE, State.FAILED, State.QUARANTINED}),
    # a retry resumes where the failure left it: judging again, or deciding the reply
    State.FAILED: frozenset({State.FETCHING, State.UNPACKING, State.DONE, State.FAILED, State.QUARANTINED}),
    State.DONE: frozenset(),
    State.QUARANTINED: frozenset(),
}
STAFF_MOVES: frozenset[State] = frozenset({State.RECEIVED})

# states a worker picks up: new work, due retries, and work a dead worker left half done
# (FETCHING and FAILED only once next_attempt_at is due: see intake.daemon.claims)
WORKABLE = (State.RECEIVED, State.UNPACKING, State.JUDGED)
WAITING = (State.FETCHING, State.FAILED)

# The moves of an outbox row. The delivery pass: queued -> sending (committed first),
# then sent, failed (5xx), or queued again (4xx, or the connection dropped before the
# data was all sent); a row left in sending stays there. Staff (`intake resend`): a
# failed, held or uncertain row -> queued. The outbox folder may also requeue a dead
# sender's row, because writing the same file again delivers nothing new.
OUTBOX_MOVES: dict[OutboxState, frozenset[OutboxState]] = {
    OutboxState.QUEUED: frozenset({OutboxState.SENDING}),
    OutboxState.SENDING: frozenset({OutboxState.SENT, OutboxState.FAILED, OutboxState.QUEUED}),
    OutboxState.SENT: frozenset(),
    OutboxState.FAILED: frozenset({OutboxState.QUEUED}),
    OutboxState.HELD: frozenset({OutboxState.QUEUED}),
}
UNSENT = (OutboxState.QUEUED, OutboxState.SENDING, OutboxState.FAILED, OutboxState.HELD)


def allowed(source: State, target: State, *, staff: bool = False) -> bool:
    return target in TRANSITIONS[source] or (staff and target in STAFF_MOVES)
