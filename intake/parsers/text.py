"""Text rules shared by the checks: counting 字, and comparing names loosely."""

from __future__ import annotations

import functools
import re
import unicodedata

# Punctuation Word counts as 字 although Unicode calls its width "ambiguous".
_AMBIGUOUS_FULL_PUNCT = set("“”‘’…—–·¨〃※§°′″")


_JOINERS = set(".-'’_")


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF or 0x20000 <= code <= 0x3134F
        or 0xF900 <= code <= 0xFAFF or 0x3040 <= code <= 0x30FF or 0xAC00 <= code <= 0xD7AF
        or 0x3100 <= code <= 0x312F or 0x31A0 <= code <= 0x31BF or code == 0x3007  # 〇
    )


def _is_full_width_punct(ch: str) -> bool:
    if ch in _AMBIGUOUS_FULL_PUNCT:
        return True
    category = unicodedata.category(ch)
    if not (category.startswith("P") or category.startswith("S")):
        return False
    return unicodedata.east_asian_width(ch) in ("F", "W")


def count_zi(text: str) -> int:
    """字 as Word's 字数 counts them (the contract's rule).

    Each CJK character and each full-width punctuation mark is one; each run of
    Latin letters or digits is one; white space and half-width punctuation are
    not counted.
    """
    count = 0
    in_run = False
    for index, ch in enumerate(text):
        if _is_cjk(ch) or _is_full_width_punct(ch) or 0x2460 <= ord(ch) <= 0x24FF:  # ① counts alone
            count += 1
            in_run = False
        elif ch.isalnum():
            if not in_run:
                count += 1
            in_run = True
        elif in_run and ch in _JOINERS and text[index + 1:index + 2].isalnum() and not _is_cjk(text[index + 1]):
            continue  # '3.14', 'COVID-19', "don't", 'e-mail' are one word, as in Word
        else:
            in_run = False
    return count


_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)


def clean(text: str) -> str:
    """NFKC (full-width letters to half-width), no invisible characters, trimmed."""
    return unicodedata.normalize("NFKC", text or "").translate(_INVISIBLE).strip()


@functools.lru_cache(maxsize=8192)
def squash(text: str) -> str:
    """A key for loose comparison: NFKC, lower case, no white space or punctuation."""
    return "".join(
        ch for ch in clean(text).lower()
        if not (ch.isspace() or unicodedata.category(ch)[0] in "PSZ")
    )


_CN_NUM = "零一二三四五六七八九十百〇两"
_NUMBERING = re.compile(
    rf"""^\s*(?:
        (?:项目|课程|作品|成果)?\s*[{_CN_NUM}\d]+\s*[:：.．、\-_—)）]\s*   # 项目一： 1. 01- 一、
      | [(（]\s*[{_CN_NUM}\d]+\s*[)）]\s*                               # （一） (1)
      | 第\s*[{_CN_NUM}\d]+\s*[项个部]?\s*[:：.．、\-_—]?\s*               # 第一项
      | \d+\s+                                                          # "01 name"
      | [①-⑳]\s*
    )""",
    re.X,
)


def strip_numbering(name: str) -> str:
    """'01-安全课', '项目一：安全课', '（一）安全课' -> '安全课'."""
    stripped = _NUMBERING.sub("", name, count=1).strip()
    return stripped or name.strip()
