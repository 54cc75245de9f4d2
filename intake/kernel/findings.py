"""Finding codes of the contract and the Finding record every check produces."""

from __future__ import annotations

from dataclasses import dataclass, field

ERROR, WARNING, INFO = "error", "warning", "info"

# The contract's table: code -> severity. A code is never renamed.
SEVERITY: dict[str, str] = {
    "deadline.late": ERROR,
    "package.empty": ERROR,
    "package.no_projects": ERROR,
    "link.unsupported": ERROR,
    "link.code_wrong": ERROR,
    "link.unavailable": ERROR,
    "link.fetch_failed": ERROR,
    "archive.encrypted": ERROR,
    "archive.corrupt": ERROR,
    "archive.unsafe_path": ERROR,
    "archive.too_large": ERROR,
    "form.missing": ERROR,
    "form.course_not_in_package": ERROR,
    "form.course_not_listed": WARNING,
    "form.scan_missing": WARNING,
    "video.missing": ERROR,
    "video.not_mp4": ERROR,
    "video.too_long": ERROR,
    "video.resolution": ERROR,
    "video.unreadable": ERROR,
    "document.missing": ERROR,
    "document.unreadable": ERROR,
    "document.mentor_intro_missing": ERROR,
    "document.mentor_intro_too_long": ERROR,
    "document.video_intro_missing": ERROR,
    "document.video_intro_too_long": ERROR,
    "question_bank.missing": ERROR,
    "question_bank.unreadable": ERROR,
    "question_bank.bad_header": ERROR,
    "question_bank.too_few": ERROR,
    "question_bank.invalid_question": ERROR,
    "photo.too_few": ERROR,
    "photo.not_jpg": ERROR,
    "photo.low_dpi": ERROR,
    "photo.bad_size": ERROR,
    "audio.not_mp3": ERROR,
    "audio.missing": ERROR,
    "declaration.name_too_long": WARNING,
    "declaration.summary_too_long": ERROR,
    "declaration.background_too_long": WARNING,
    "declaration.too_many_completers": ERROR,
    "declaration.bad_category": ERROR,
    "declaration.new_productivity_missing": ERROR,
    "authorization.missing": ERROR,
    "pledge.missing": ERROR,
    # hostile input: bounded time, memory and reading (every step a sender controls)
    "package.too_complex": ERROR,
    "message.too_deep": ERROR,
    "link.too_many": WARNING,
    # linked packages: a reply whose only links, in quoted text, came with an earlier submission
    "link.already_received": INFO,
    "document.read_partly": WARNING,
    "quota.exceeded": WARNING,
    "duplicate.resubmission": INFO,
}


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    project: str | None = None
    path: str | None = None
    severity: str = field(default="")
    # duplicate.resubmission only: the receipt of the earlier report this project
    # replaces, as data for the reply (the message says it in words)
    replaces: str | None = None

    def __post_init__(self) -> None:
        if self.code not in SEVERITY:
            raise ValueError(f"unknown finding code {self.code!r}")
        if not self.severity:
            object.__setattr__(self, "severity", SEVERITY[self.code])

    def to_json(self) -> dict:
        data = {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "project": self.project,
            "path": self.path,
        }
        if self.replaces is not None:  # the contract's keys stay as they are for every other finding
            data["replaces"] = self.replaces
        return data
