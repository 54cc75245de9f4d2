"""Policies are data: a TOML file shipped in intake/policies, optionally overridden.

``load_policy("roadshow", overrides)`` returns a validated, frozen Policy. Every bad
value raises ConfigError naming the setting, so a typo in a config file stops the
program instead of silently changing a rule.
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from intake.kernel.budget import Budget
from intake.kernel.errors import ConfigError
from intake.kernel.report import BEIJING


@dataclass(frozen=True)
class ArchiveLimits:
    max_total_bytes: int
    max_entries: int
    max_depth: int
    bomb_entry_bytes: int
    bomb_ratio: float
    timeout_seconds: float


@dataclass(frozen=True)
class VideoRules:
    max_seconds: float
    width: int
    height: int


@dataclass(frozen=True)
class DocumentRules:
    mentor_intro_max_chars: int
    video_intro_max_chars: int


@dataclass(frozen=True)
class QuestionBankRules:
    min_questions: int


@dataclass(frozen=True)
class PhotoRules:
    min_count: int
    min_dpi: int
    min_bytes: int
    max_bytes: int


@dataclass(frozen=True)
class DeclarationRules:
    name_about: int
    name_warn_over: int
    summary_max: int
    background_about: int
    background_warn_over: int
    max_completers: int
    categories: tuple[str, ...]


# What a project is checked for; a policy lists the ones it applies.
KNOWN_CHECKS = ("video", "document", "question_bank", "photos", "audio", "declaration", "letters")


@dataclass(frozen=True)
class Policy:
    name: str
    title: str
    deadline: datetime  # aware
    contact: str  # the notice's own contact, closing every reply (INTAKE_CONTACT overrides it)
    archive: ArchiveLimits
    video: VideoRules
    question_bank: QuestionBankRules
    checks: tuple[str, ...] = ("video", "document", "question_bank")
    form_required: bool = True  # the unit's report form (附件5) must come with the package
    document: DocumentRules | None = None
    photo: PhotoRules | None = None
    declaration: DeclarationRules | None = None
    budget: Budget = Budget()  # what one judgement may use (memory, CPU, wall time)


def available_policies() -> list[str]:
    folder = resources.files("intake") / "policies"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def load_policy(name: str = "roadshow", overrides: dict | None = None) -> Policy:
    if name not in available_policies():
        raise ConfigError(
            f"policy: unknown policy {name!r}; available: {', '.join(available_policies())}"
        )
    text = (resources.files("intake") / "policies" / f"{name}.toml").read_text("utf-8")
    data = tomllib.loads(text)
    if overrides:
        data = _merge(data, overrides, "policy")
    return _build(data)


def load_config_file(path: str) -> dict:
    """Read a settings TOML file; its [policy] table overrides policy values."""
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except OSError as err:  # a folder, no permission
        raise ConfigError(f"--config: cannot read {path} ({err.strerror or err})") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"--config: {path} is not valid TOML: {err}") from None


def _merge(base: dict, extra: dict, where: str) -> dict:
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if key not in merged:
            raise ConfigError(f"{where}.{key}: unknown setting")
        if isinstance(merged[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}.{key}: must be a table")
            merged[key] = _merge(merged[key], value, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def _number(data: dict, section: str, key: str, kind=int, minimum=1):
    value = data.get(section, {}).get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"policy.{section}.{key}: must be a number, got {value!r}")
    if kind is int and not isinstance(value, int):
        raise ConfigError(f"policy.{section}.{key}: must be a whole number, got {value!r}")
    if value < minimum:
        raise ConfigError(f"policy.{section}.{key}: must be at least {minimum}, got {value!r}")
    return kind(value)


def _deadline(data: dict) -> datetime:
    section = data.get("deadline", {})
    at = section.get("at")
    if isinstance(at, str):
        try:
            at = datetime.fromisoformat(at)
        except ValueError:
            raise ConfigError(f"policy.deadline.at: not an ISO 8601 time: {at!r}") from None
    if not isinstance(at, datetime):
        raise ConfigError(f"policy.deadline.at: must be a date and time, got {at!r}")
    if at.tzinfo is None:
        tz_name = section.get("timezone", "Asia/Shanghai")
        try:
            at = at.replace(tzinfo=ZoneInfo(tz_name))
        except (ZoneInfoNotFoundError, ValueError, TypeError):
            raise ConfigError(f"policy.deadline.timezone: unknown time zone {tz_name!r}") from None
    return at


def _contact(data: dict) -> str:
    value = data.get("contact")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"policy.contact: must be the collection's contact as text, got {value!r}")
    return value.strip()


def _checks(data: dict) -> tuple[str, ...]:
    checks = data.get("project", {}).get("checks", ["video", "document", "question_bank"])
    if not isinstance(checks, list) or not all(isinstance(c, str) for c in checks):
        raise ConfigError(f"policy.project.checks: must be a list of names, got {checks!r}")
    unknown = [c for c in checks if c not in KNOWN_CHECKS]
    if unknown:
        raise ConfigError(f"policy.project.checks: unknown {', '.join(unknown)}; known: {', '.join(KNOWN_CHECKS)}")
    return tuple(checks)


def _flag(data: dict, section: str, key: str, default: bool) -> bool:
    value = data.get(section, {}).get(key, default)
    if not isinstance(value, bool):
        raise ConfigError(f"policy.{section}.{key}: must be true or false, got {value!r}")
    return value


def _categories(data: dict) -> tuple[str, ...]:
    value = data.get("declaration", {}).get("categories")
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"policy.declaration.categories: must be a list of names, got {value!r}")
    return tuple(value)


def _build(data: dict) -> Policy:
    checks = _checks(data)
    return Policy(
        name=str(data.get("name", "")),
        title=str(data.get("title", "")),
        deadline=_deadline(data),
        contact=_contact(data),
        checks=checks,
        form_required=_flag(data, "form", "required", True),
        archive=ArchiveLimits(
            max_total_bytes=_number(data, "archive", "max_total_bytes"),
            max_entries=_number(data, "archive", "max_entries"),
            max_depth=_number(data, "archive", "max_depth"),
            bomb_entry_bytes=_number(data, "archive", "bomb_entry_bytes"),
            bomb_ratio=_number(data, "archive", "bomb_ratio", float),
            timeout_seconds=_number(data, "archive", "timeout_seconds", float),
        ),
        video=VideoRules(
            max_seconds=_number(data, "video", "max_seconds", float),
            width=_number(data, "video", "width"),
            height=_number(data, "video", "height"),
        ),
        question_bank=QuestionBankRules(
            min_questions=_number(data, "question_bank", "min_questions"),
        ),
        budget=Budget(
            memory_bytes=_number(data, "budget", "memory_mb") << 20,
            cpu_seconds=_number(data, "budget", "cpu_seconds"),
            wall_seconds=_number(data, "budget", "wall_seconds", float),
        ),
        document=DocumentRules(
            mentor_intro_max_chars=_number(data, "document", "mentor_intro_max_chars"),
            video_intro_max_chars=_number(data, "document", "video_intro_max_chars"),
        ) if "document" in checks else None,
        photo=PhotoRules(
            min_count=_number(data, "photo", "min_count"),
            min_dpi=_number(data, "photo", "min_dpi"),
            min_bytes=_number(data, "photo", "min_bytes"),
            max_bytes=_number(data, "photo", "max_bytes"),
        ) if "photos" in checks else None,
        declaration=DeclarationRules(
            name_about=_number(data, "declaration", "name_about"),
            name_warn_over=_number(data, "declaration", "name_warn_over"),
            summary_max=_number(data, "declaration", "summary_max"),
            background_about=_number(data, "declaration", "background_about"),
            background_warn_over=_number(data, "declaration", "background_warn_over"),
            max_completers=_number(data, "declaration", "max_completers"),
            categories=_categories(data),
        ) if "declaration" in checks else None,
    )


def parse_instant(text: str, setting: str) -> datetime:
    """An ISO 8601 time; a naive one is taken as Asia/Shanghai (the collection's zone)."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"{setting}: not an ISO 8601 time: {text!r}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=BEIJING)
    try:  # a report shows it in Beijing time: a moment datetime cannot hold there is no time
        value.astimezone(timezone.utc).astimezone(BEIJING)
    except OverflowError:
        raise ConfigError(f"{setting}: out of range: {text!r}") from None
    return value


def is_late(received_at: datetime, policy: Policy) -> bool:
    """Aware times are compared as they are: converting one at the edge of datetime's
    range to UTC overflows (year 9999 at -12:00), comparing does not."""
    if received_at.utcoffset() is None:  # naive: local time, as astimezone() reads it
        try:
            received_at = received_at.astimezone()
        except (OverflowError, OSError, ValueError):
            received_at = received_at.replace(tzinfo=timezone.utc)
    return received_at > policy.deadline
