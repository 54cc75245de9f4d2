"""Units (provincial and industry unions): names, quotas (附件2/附件4) and contact addresses.

``intake units import FILE`` reads a CSV or XLSX whose header names the columns:
单位 / 单位名称 / 上报单位, 名额 / 数量 / 指标 (the quota), 邮箱 / 联系邮箱 / 电子邮箱 (one or
more addresses, separated by , ; 、 or spaces). Rows are matched to units by name and
updated; a contact address belongs to one unit.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from intake.kernel.errors import ConfigError
from intake.parsers.spreadsheets import SheetError, read_sheets
from intake.parsers.text import squash
from intake.store import Unit, UnitContact, audit

NAME_HEADERS = ("单位", "单位名称", "上报单位", "报送单位", "name", "unit")
QUOTA_HEADERS = ("名额", "数量", "指标", "推荐名额", "名额数", "quota")
EMAIL_HEADERS = ("邮箱", "联系邮箱", "电子邮箱", "email", "联系人邮箱", "e-mail")


def _rows(path: Path) -> list[list[str]]:
    if path.suffix.lower() in (".xlsx", ".xls", ".xlsm"):
        try:
            sheets = read_sheets(path)
        except SheetError as err:
            raise ConfigError(f"units import: cannot read {path}: {err}") from None
        return [list(cells) for _, cells in sheets[0].rows] if sheets else []
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            with open(path, newline="", encoding=encoding) as fh:
                return [row for row in csv.reader(fh)]
        except UnicodeDecodeError:
            continue
        except OSError as err:
            raise ConfigError(f"units import: cannot read {path}: {err.strerror}") from None
    raise ConfigError(f"units import: {path} is neither UTF-8 nor GB18030 text")


def _column(header: list[str], names: tuple[str, ...]) -> int | None:
    keys = [squash(h) for h in header]
    for name in names:
        if squash(name) in keys:
            return keys.index(squash(name))
    return None


def import_units(Session: sessionmaker, path: Path) -> tuple[int, int]:
    """Create or update units from the file; returns (units, contacts) written."""
    rows = [r for r in _rows(Path(path)) if any(c.strip() for c in r)]
    for index, header in enumerate(rows[:10]):
        name_col = _column(header, NAME_HEADERS)
        if name_col is not None:
            break
    else:
        raise ConfigError(f"units import: no 单位/单位名称 column in the first rows of {path}")
    quota_col, email_col = _column(header, QUOTA_HEADERS), _column(header, EMAIL_HEADERS)
    units = contacts = 0
    with Session.begin() as session:
        for row in rows[index + 1:]:
            name = row[name_col].strip() if name_col < len(row) else ""
            if not name or name in ("合计", "总计"):
                continue
            unit = session.scalar(select(Unit).where(Unit.name == name))
            if unit is None:
                unit = Unit(name=name)
                session.add(unit)
                session.flush()
            if quota_col is not None and quota_col < len(row) and row[quota_col].strip():
                try:
                    unit.quota = int(float(row[quota_col]))
                except ValueError:
                    raise ConfigError(f"units import: quota of {name} is not a number: {row[quota_col]!r}") from None
            units += 1
            if email_col is not None and email_col < len(row):
                for address in re.split(r"[\s,;，；、]+", row[email_col]):
                    if "@" not in address:
                        continue
                    address = address.strip().lower()
                    contact = session.scalar(select(UnitContact).where(UnitContact.email == address))
                    if contact is None:
                        session.add(UnitContact(unit_id=unit.id, email=address))
                    else:
                        contact.unit_id = unit.id
                    contacts += 1
        audit(session, None, "staff", "units_import", file=str(path), units=units, contacts=contacts)
    return units, contacts
