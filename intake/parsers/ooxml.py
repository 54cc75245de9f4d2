"""Office Open XML packages (.docx, .xlsx) read within bounds.

A sender controls every byte of these zips: a 2 KB workbook can declare cells A1,
XFD1 and A1048576 (openpyxl then builds every cell between them), a 1 MB document can
unpack to 120 MiB of empty paragraphs (python-docx then builds a tree of all of them),
a merged range can cover a whole sheet. Nothing here builds a part's whole tree: a part
is read as a stream by lxml's pull parser, fed a chunk at a time, under a ``XmlBudget`` of
XML elements and bytes; each element is handed over when it ends and the reader
forgets it once used, so memory stays bounded by the budget however large the part.
Reading stops when the budget is spent and the reader says so (``XmlBudget.spent``).
"""

from __future__ import annotations

import posixpath
import re
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote

from lxml import etree


class PackageError(Exception):
    """The package cannot be read: not a zip, broken XML, or beyond a bound that makes it absurd."""


class PackageTooLarge(PackageError):
    """The package is beyond a bound (its size, its merged cells, its shared strings)."""


# Refused outright: packages that would unpack absurdly large, and the few-byte
# constructs that make a reader expand them cell by cell (a merged range
# A1:XFD1048576 covers 17 billion cells).
MAX_OPC_UNPACKED = 512 << 20
MAX_MERGED_CELLS = 100_000  # a real sheet merges a few thousand cells
CHUNK = 1 << 16  # bytes fed to the parser at a time: the most one step can add to the tree

Merge = tuple[int, int, int, int]  # first row, first column, last row, last column (1-based)

_MERGE_REF = re.compile(rb"<(?:\w+:)?mergeCell\b[^>]*\bref=\"([A-Z]{1,3})(\d{1,7}):([A-Z]{1,3})(\d{1,7})\"")
_RELS = "{http://schemas.openxmlformats.org/package/2006/relationships}Relationship"


@dataclass
class XmlBudget:
    """What one read may still consume: XML elements (each ~100 bytes in memory) and bytes."""

    elements: int
    bytes: int
    spent: bool = False


def check_opc(path: Path) -> dict[str, list[Merge]]:
    """Refuse a package that unpacks absurdly large or merges absurdly many cells.

    Returns the merged ranges of each worksheet part (read-only readers do not give
    them, and the merged 题型 cell of a question bank must still fill its rows).
    """
    merges: dict[str, list[Merge]] = {}
    try:
        with zipfile.ZipFile(path) as package:
            infos = package.infolist()
            if sum(info.file_size for info in infos) > MAX_OPC_UNPACKED:
                raise PackageTooLarge("package unpacks to more than 512 MiB")
            total = 0
            for info in infos:
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    ranges = merges.setdefault(info.filename, [])
                    for match in _scan(package, info.filename, _MERGE_REF):
                        c1, r1, c2, r2 = match.groups()
                        top, bottom = sorted((int(r1), int(r2)))
                        left, right = sorted((_column_number(c1), _column_number(c2)))
                        total += (bottom - top + 1) * (right - left + 1)
                        if total > MAX_MERGED_CELLS:
                            raise PackageTooLarge("merged cell ranges cover more than 100,000 cells")
                        ranges.append((top, left, bottom, right))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, zlib.error, NotImplementedError) as err:
        raise PackageError(f"not an Office Open XML package: {err}") from None
    return merges


def _scan(package: zipfile.ZipFile, member: str, pattern: re.Pattern[bytes]) -> Iterator[re.Match[bytes]]:
    """Matches of ``pattern`` in a package member, read in chunks (members can be large)."""
    overlap = b""
    with package.open(member) as stream:
        while chunk := stream.read(1 << 20):
            data = overlap + chunk
            last_end = 0
            for match in pattern.finditer(data):
                last_end = match.end()
                yield match
            overlap = data[max(last_end, len(data) - 256):]


def _column_number(letters: bytes) -> int:
    number = 0
    for ch in letters:
        number = number * 26 + ch - 64
    return number


def elements(package: zipfile.ZipFile, member: str, budget: XmlBudget) -> Iterator[etree._Element]:
    """Every element of a part as it ends, until the part or the budget is spent.

    The caller forgets what it has used (``forget``); an element not yet ended when
    the budget runs out (a table half read) is still in the tree, reachable from
    the last element handed over.
    """
    parser = etree.XMLPullParser(
        events=("end",), resolve_entities=False, no_network=True, huge_tree=False,
        remove_comments=True, remove_pis=True, load_dtd=False,
    )
    try:
        with package.open(member) as stream:
            while chunk := stream.read(min(CHUNK, max(budget.bytes, 0))):
                budget.bytes -= len(chunk)
                parser.feed(chunk)
                for _event, element in parser.read_events():
                    budget.elements -= 1
                    if budget.elements < 0:
                        budget.spent = True
                        return
                    yield element
            if budget.bytes <= 0 and stream.read(1):
                budget.spent = True
                return
            parser.close()  # the parser may hold back the last elements until it is closed
            for _event, element in parser.read_events():
                yield element
    except etree.LxmlError as err:
        raise PackageError(f"{member}: broken XML ({err})") from None
    except KeyError:
        raise PackageError(f"{member} is missing from the package") from None
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError) as err:
        raise PackageError(f"{member}: {err}") from None


def forget(element: etree._Element) -> None:
    """Drop an element that has been used, and its earlier siblings, from the tree."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


class Relationship(NamedTuple):
    id: str
    type: str
    target: str  # the part's name in the zip


def relationships(package: zipfile.ZipFile, part: str) -> list[Relationship]:
    """The internal relationships of ``part`` ('' for the package itself)."""
    folder, name = posixpath.split(part)
    rels = posixpath.join(folder, "_rels", f"{name}.rels")
    if rels not in package.NameToInfo:
        return []
    found = []
    for element in elements(package, rels, XmlBudget(20_000, 4 << 20)):
        if element.tag == _RELS and element.get("TargetMode") != "External":
            target = unquote(element.get("Target") or "")
            if target.startswith("/"):
                resolved = target.lstrip("/")
            else:
                resolved = posixpath.normpath(posixpath.join(folder, target))
            found.append(Relationship(element.get("Id") or "", element.get("Type") or "", resolved))
        forget(element)
    return found


def related(package: zipfile.ZipFile, part: str, kind: str) -> str | None:
    """The first part ``part`` relates to with a relationship type ending in /``kind``."""
    for relationship in relationships(package, part):
        if relationship.type.endswith(f"/{kind}") and relationship.target in package.NameToInfo:
            return relationship.target
    return None


def root_tag(element: etree._Element) -> str:
    """The tag of the document element of the tree ``element`` belongs to."""
    return str(element.getroottree().getroot().tag)


def main_part(package: zipfile.ZipFile, fallback: str) -> str:
    """The package's main part (its officeDocument relationship), else ``fallback``."""
    found = related(package, "", "officeDocument")
    if found is not None:
        return found
    if fallback in package.NameToInfo:
        return fallback
    raise PackageError("no main document part in the package")
