"""What fetching a message's links came to, as plain data: the daemon's ``fetching``
stage and ``intake check`` make it (with ``intake.fetchers``), the core judges with it
(it must not import the fetchers), and the stage keeps it on disk between attempts.

Each link has one outcome:
- ``fetched``: its files are in ``root / folder`` (findings may still name a file the
  share serves as the blocked-content stand-in);
- ``sender``: the sender's problem (``link.code_wrong``, ``link.unavailable``), told at once;
- ``failed``: our side could not fetch it (no account, over the size cap, the retries
  ran out); ``reason`` says why in Chinese, the message is ``needs_review`` (unless
  another link is the sender's problem: then it is rejected and the sender asked to
  send this link again with the mended one);
- ``quoted``: a link in quoted text that the unit's earlier message (``earlier``, its
  receipt) already brought: not fetched again, not a finding;
- ``late``: not fetched because the message came after the deadline (it is void anyway).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from intake.kernel.findings import Finding

FETCHED, SENDER, FAILED, QUOTED, LATE = "fetched", "sender", "failed", "quoted", "late"
OUTCOMES = (FETCHED, SENDER, FAILED, QUOTED, LATE)


@dataclass
class LinkFetch:
    provider: str  # baidu | netease | qq
    url: str
    outcome: str  # one of OUTCOMES
    folder: str | None = None  # fetched: the folder under FetchedPackage.root holding its files
    findings: list[Finding] = field(default_factory=list)  # the sender's problems
    reason: str | None = None  # failed: why, in Chinese (the reply's words)
    detail: str | None = None  # failed: the error as raised, for staff
    listing: list[tuple[str, int]] = field(default_factory=list)  # (path, size) the share lists, for staff
    earlier: str | None = None  # quoted: the receipt of the message that brought it first

    def to_json(self) -> dict[str, Any]:
        return {"provider": self.provider, "url": self.url, "outcome": self.outcome, "folder": self.folder,
                "findings": [f.to_json() for f in self.findings], "reason": self.reason, "detail": self.detail,
                "listing": [{"path": path, "size": size} for path, size in self.listing], "earlier": self.earlier}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinkFetch:
        findings = [Finding(f["code"], f["message"], f.get("project"), f.get("path")) for f in data["findings"]]
        listing = [(item["path"], int(item["size"])) for item in data.get("listing", [])]
        return cls(data["provider"], data["url"], data["outcome"], data.get("folder"), findings,
                   data.get("reason"), data.get("detail"), listing, data.get("earlier"))


@dataclass
class FetchedPackage:
    """A message's fetched links, keyed by their position among the message's links."""
    root: Path
    links: dict[int, LinkFetch] = field(default_factory=dict)

    def of(self, *outcomes: str) -> list[LinkFetch]:
        return [self.links[n] for n in sorted(self.links) if self.links[n].outcome in outcomes]

    def sender_problems(self) -> list[Finding]:
        """The sender's problems with the links: a ``sender`` outcome's, or a fetched
        link's (a file the share serves as the blocked-content stand-in)."""
        return [f for link in self.of(SENDER, FETCHED) for f in link.findings]

    def folders(self) -> list[Path]:
        """The folders holding fetched files, in the order of the links."""
        return [self.root / link.folder for link in self.of(FETCHED) if link.folder]

    def summary(self) -> list[dict[str, Any]]:
        """What staff see of each link (kept with the message's report as ``fetch``)."""
        return [{"n": n, **self.links[n].to_json()} for n in sorted(self.links)]

    def save(self, path: Path) -> None:
        """Written whole, then renamed: a crash leaves the old file or the new one."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        data = {str(n): link.to_json() for n, link in self.links.items()}
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, root: Path, path: Path) -> FetchedPackage:
        """The outcomes saved at ``path`` (none when there is no file or it is unreadable)."""
        try:
            data = json.loads(path.read_text("utf-8"))
            links = {int(n): LinkFetch.from_json(item) for n, item in data.items()}
        except (OSError, ValueError, KeyError, TypeError):
            links = {}
        return cls(root, links)
