"""Where a message stands, where its reply stands, and which moves are allowed.

One enum per thing and one table of transitions; ``intake.daemon.transitions.move`` is
the one function that changes a message's state (and audits it).
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    RECEIVED = "received"  # in the ledger, raw bytes stored; nothing done yet
    UNPACKING = "unpacking"  # a worker is unpacking and judging it (attempts counted)
    JUDGED = "judged"  # verdict, projects and findings saved
    REPLYING = "replying"  # the reply is queued (an outbox row) and being delivered
    DONE = "done"  # answered, or deliberately not answered
    FAILED = "failed"  # an attempt failed; due again at next_attempt_at
    QUARANTINED = "quarantined"  # failed permanently or too often; staff decide


class OutboxState(StrEnum):
    QUEUED = "queued"  # composed, not yet handed to the transport
    SENT = "sent"  # the transport took it; never sent again


# The moves a worker makes. Staff actions (reprocess, resend) may also move a message
# from any state to RECEIVED (judge again) or FAILED (deliver again), see STAFF_MOVES.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.RECEIVED: frozenset({State.UNPACKING, State.FAILED, State.QUARANTINED}),
    # UNPACKING -> UNPACKING: its worker died mid-judgement and another one starts over
    State.UNPACKING: frozenset({State.UNPACKING, State.JUDGED, State.FAILED, State.QUARANTINED}),
    State.JUDGED: frozenset({State.REPLYING, State.DONE, State.FAILED, State.QUARANTINED}),
    State.REPLYING: frozenset({State.DONE, State.FAILED, State.QUARANTINED}),
    # a retry resumes where the failure left it: judging again, or replying
    State.FAILED: frozenset({State.UNPACKING, State.REPLYING, State.DONE, State.FAILED, State.QUARANTINED}),
    State.DONE: frozenset(),
    State.QUARANTINED: frozenset(),
}
STAFF_MOVES: frozenset[State] = frozenset({State.RECEIVED, State.FAILED})

# states a worker picks up: new work, due retries, and work a dead worker left half done
WORKABLE = (State.RECEIVED, State.UNPACKING, State.JUDGED, State.REPLYING)


def allowed(source: State, target: State, *, staff: bool = False) -> bool:
    return target in TRANSITIONS[source] or (staff and target in STAFF_MOVES)
