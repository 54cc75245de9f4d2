"""Folder and file names for the export tree, made from sender-controlled text.

A unit or course name comes from a mail or a report form: it may hold ``/``, ``..``,
NUL, control characters, names Windows refuses, or be hundreds of characters long.
``safe_name`` turns any text into one plain path component; ``allocate`` gives each
project a folder name of its own, keeping the one it had in an earlier export.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME_BYTES = 150  # well under the 255-byte limit, room left for " (项目123)" and ".tmp" names
FALLBACK = "未命名"
_FORBIDDEN = re.compile(r'[\x00-\x1f\x7f/\\:*?"<>|]')
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{n}" for n in range(1, 10)), *(f"LPT{n}" for n in range(1, 10))}


def safe_name(text: str | None) -> str:
    """One path component: no separator, no control character, not '.' or '..', not
    hidden, at most MAX_NAME_BYTES of UTF-8; FALLBACK when nothing is left."""
    value = unicodedata.normalize("NFC", text or "")
    value = "".join(ch for ch in value if unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Cn"))
    value = _FORBIDDEN.sub("_", value)
    value = re.sub(r"\s+", " ", value).strip(" ._")
    value = _cut(value).rstrip(" .")
    if not value or value.split(".")[0].upper() in _WINDOWS_RESERVED:
        value = f"{FALLBACK}{('_' + value) if value else ''}"
    return value


def _cut(value: str) -> str:
    """At most MAX_NAME_BYTES of UTF-8, cut at a character."""
    encoded = value.encode("utf-8")
    if len(encoded) <= MAX_NAME_BYTES:
        return value
    return encoded[:MAX_NAME_BYTES].decode("utf-8", "ignore")


def fold(name: str) -> str:
    """Names that a case-insensitive file system (an expert's USB stick) takes as one."""
    return unicodedata.normalize("NFKC", name).casefold()


def allocate(wanted: dict[str, str], previous: dict[str, str], ordinal: dict[str, int],
             reserved: tuple[str, ...] = ()) -> dict[str, str]:
    """A distinct folder name for each key (key -> name wanted, already safe).

    ``previous``: the names the keys had in the last export; a key keeps its name while
    that still is what it wants and no other key had it first. The rest take names in
    the order of ``ordinal`` (the project's number, stable across runs): the first gets
    the plain name, the next ``名称 (项目N)`` with its own number, so a name never
    depends on which other projects happen to be exported. ``reserved``: names the
    export's own files have beside these folders (a unit may call itself 项目索引.xlsx)."""
    names: dict[str, str] = {}
    taken: set[str] = {fold(name) for name in reserved}
    for key in sorted(wanted, key=lambda k: ordinal[k]):
        old = previous.get(key)
        if old is not None and _base(old, ordinal[key]) == wanted[key] and fold(old) not in taken:
            names[key] = old
            taken.add(fold(old))
    for key in sorted(wanted, key=lambda k: ordinal[k]):
        if key in names:
            continue
        candidate = wanted[key]
        if fold(candidate) in taken:
            candidate = _numbered(candidate, ordinal[key])
        while fold(candidate) in taken:  # a sender named a course "甲 (项目7)" on purpose
            candidate = _numbered(candidate, ordinal[key])
        names[key] = candidate
        taken.add(fold(candidate))
    return names


def _numbered(name: str, number: int) -> str:
    return f"{name} (项目{number})"  # name is at most MAX_NAME_BYTES: the whole stays under 255


def _base(name: str, number: int) -> str:
    """The name wanted that ``name`` was allocated for (undoing _numbered)."""
    suffix = f" (项目{number})"
    while name.endswith(suffix):
        name = name[: -len(suffix)]
    return name
