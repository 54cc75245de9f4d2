"""The verdicts of the contract, for a message and for each of its projects."""

from __future__ import annotations

from enum import StrEnum


class Verdict(StrEnum):
    ACCEPTED = "accepted"  # every project passes (warnings allowed)
    PARTIAL = "partial"  # some projects pass, some do not
    REJECTED = "rejected"  # nothing passes, or the whole message fails (late, empty, unsafe)
    NEEDS_REVIEW = "needs_review"  # the outcome depends on something the sender did not cause
    IGNORED = "ignored"  # not a submission (auto-reply, bounce, mailing list)
