"""What a judgement says: the verdict, the projects and every finding (the contract's
JSON object)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

from intake.kernel.findings import Finding
from intake.kernel.verdicts import Verdict

BEIJING = ZoneInfo("Asia/Shanghai")


def beijing_text(moment: datetime) -> str:
    """A time as senders read it: Beijing time, 2024年07月31日 23:59:59 (naive means UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(BEIJING).strftime("%Y年%m月%d日 %H:%M:%S")


@dataclass
class ProjectResult:
    name: str
    verdict: Verdict
    files: dict
    folder: str | None = None

    def to_json(self) -> dict:
        return {"name": self.name, "verdict": str(self.verdict), "files": self.files}


@dataclass
class Report:
    verdict: Verdict
    policy: str
    received_at: datetime | None
    unit: str | None
    projects: list[ProjectResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    message: dict | None = None
    source: str | None = None
    ignored_reason: str | None = None  # why an ignored message is not a submission

    def to_json(self) -> dict:
        data: dict[str, object] = {
            "verdict": str(self.verdict),
            "policy": self.policy,
            "received_at": _iso(self.received_at),
        }
        if self.message is not None:
            data["message"] = self.message
        data["unit"] = self.unit
        data["projects"] = [p.to_json() for p in self.projects]
        data["findings"] = [f.to_json() for f in self.findings]
        return data


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(BEIJING).isoformat()
