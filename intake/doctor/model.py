"""What one check found, and what the checks share while they run."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from intake.settings import Settings


@dataclass(frozen=True)
class Check:
    name: str  # stable, for monitoring: "imap", "smtp", "tool.unar", …
    title: str  # the Chinese label of the printed line
    ok: bool
    required: bool  # False: the configuration does not need it (reported, never a failure)
    detail: str  # Chinese: what was found, or what to do (naming the setting)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "required": self.required, "detail": self.detail}


def passed(name: str, title: str, detail: str) -> Check:
    return Check(name, title, True, True, detail)


def failed(name: str, title: str, detail: str) -> Check:
    return Check(name, title, False, True, detail)


def not_needed(name: str, title: str, detail: str) -> Check:
    return Check(name, title, True, False, detail)


@dataclass(frozen=True)
class ServerTime:
    """A server's clock as seen from here: ``server`` was its time when ours read ``local``
    (to within ``error`` seconds). ``lower_bound``: the server's time was at least this
    (a message's INTERNALDATE: it was received then, so now is later)."""

    source: str  # Chinese, e.g. "pan.baidu.com 的 HTTP Date"
    server: datetime
    local: datetime
    error: float
    lower_bound: bool = False


@dataclass
class Context:
    """The settings (None when they could not be read) and what the checks observed for
    later ones (the clock check compares against the servers' times)."""

    settings: Settings | None
    server_times: list[ServerTime] = field(default_factory=list)
