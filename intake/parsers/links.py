"""File-host links in a message body, each with the extraction code that belongs to it.

Text is normalised first (NFKC, zero-width characters and NBSP removed) and read
twice: as written and URL-decoded (links inside redirect wrappers). HTML is read
through BeautifulSoup, both its hrefs and its visible text.

Baidu: ``/s/1…`` and ``/share/init?surl=…`` (reported as ``/s/1…``), ``?pwd=`` codes,
and codes written after 提取码/密码/访问码/pwd in any punctuation, brackets or on the
next line, each bound to the link it follows. 163/126 and QQ large attachments, with
the size and expiry printed beside 163's (``by_expiry`` orders them soonest first).
Every other file host is ``other``. Each link is marked ``quoted`` when it is only in
text quoted from another mail (``intake.parsers.quoting``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import parse_qs, unquote, urlsplit

from intake.kernel.report import BEIJING
from intake.parsers.quoting import CLOSE, OPEN, inside, mark_quotes, merge, quoted_spans, strip_marks

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e"), None)
# ASCII URL characters only, without , ; ' ( ) [ ]: NFKC turns the Chinese comma and
# semicolon that follow a link into ASCII ones, and links are glued to Chinese text.
_URL = re.compile(r"https?://[A-Za-z0-9\-._~:/?#@!$&*+=%]+", re.I)
_BARE_BAIDU = re.compile(r"(?<![A-Za-z0-9/.])(?:pan|yun)\.baidu\.com/[A-Za-z0-9\-._~:/?#@!$&*+=%]+", re.I)
_START = re.compile(r"https?://|(?<![A-Za-z0-9/.])(?:pan|yun)\.baidu\.com/", re.I)  # where either begins
_RUN = re.compile(r"[A-Za-z0-9\-._~:/?#@!$&*+=%]+")  # the URL characters of both
MAX_LINKS = 100  # distinct links judged per message; a message with more is told so (link.too_many)
# Bounded separators: unbounded \s* runs here backtrack for minutes on long blanks.
_CODE = re.compile(
    r"(?:提\s?取\s?码|提取密码|密码|访问码|验证码|提取|pwd)(?:\s{0,3}[为是])?"
    r"[\s:：=\[【(（“\"'<]{0,12}([A-Za-z0-9]{4})(?![A-Za-z0-9])",
    re.I,
)
_SIZE_EXPIRY = re.compile(
    r"[(（]\s*([\d.]+\s*[KMGT]?i?B?)\s*[,，]\s*(\d{4}年\d{1,2}月\d{1,2}日(?:\s*\d{1,2}:\d{2})?)\s*到期\s*[)）]", re.I)

OTHER_HOSTS = (
    "aliyundrive.com", "alipan.com", "quark.cn", "123pan.com", "123pan.cn", "123684.com", "123865.com",
    "123912.com", "lanzou", "lanzoui.com", "lanzoux.com", "lanzouw.com", "ilanzou.com", "1drv.ms",
    "onedrive.live.com", "sharepoint.com", "cloud.189.cn", "caiyun.139.com", "yun.139.com",
    "pan.xunlei.com", "weiyun.com", "share.weiyun.com", "drive.google.com", "dropbox.com",
    "wetransfer.com", "we.tl", "ctfile.com", "jianguoyun.com", "mail.sina.com.cn/filecenter",
    "pan.wo.cn", "feijipan.com", "cowtransfer.com", "wenshushu.cn", "mega.nz", "box.com",
    "icloud.com/iclouddrive", "pan.huang1111.cn", "tianyi", "115.com", "115cdn.com",
)


@dataclass
class Link:
    provider: str  # baidu | netease | qq | other
    url: str
    code: str | None = None
    size: str | None = None  # 163 large attachments print "(80.96M, 2026年8月17日 0:49 到期)"
    expires: str | None = None
    quoted: bool = False  # only in text quoted from another mail (not in the contract's JSON)

    def to_json(self) -> dict:
        return {"provider": self.provider, "url": self.url, "code": self.code}


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text or "")
    return text.translate(_INVISIBLE).replace("\u00a0", " ")


def _canonical(url: str) -> tuple[str, str, str | None]:
    """(provider, URL as reported, code carried in the URL)."""
    url = url.rstrip(".,;:!?)'\"")
    parts = urlsplit(url if "://" in url else f"https://{url}")
    host = (parts.hostname or "").lower()
    if host.endswith("pan.baidu.com") or host.endswith("yun.baidu.com"):
        query = parse_qs(parts.query)  # only here: every candidate of a long run is read
        pwd = query.get("pwd")
        code = pwd[0] if pwd and re.fullmatch(r"[A-Za-z0-9]{4}", pwd[0]) else None
        match = re.match(r"/s/(1[A-Za-z0-9_-]+)", parts.path)
        if match:
            return "baidu", f"https://{host}/s/{match.group(1)}", code
        if parts.path.startswith(("/share/init", "/wap/init")) and query.get("surl"):
            return "baidu", f"https://{host}/s/1{query['surl'][0]}", code
        if parts.path.startswith("/share/link") and query.get("shareid"):
            return "baidu", url.split("#", 1)[0], code  # the old shareid/uk form
        return "", url, None  # the home page, a help page: not a share
    if host in ("mail.163.com", "mail.126.com", "mail.yeah.net") and "large-attachment-download" in parts.path:
        return "netease", url, None
    if host == "dashi.163.com" and "cloud-attachment-download" in parts.path:
        return "netease", url, None
    if host in ("mail.qq.com", "exmail.qq.com") and "ftnExs_download" in parts.path:
        return "qq", url, None
    if host in ("wx.mail.qq.com", "iwx.mail.qq.com", "mail.qq.com") and parts.path.startswith("/ftn/download"):
        return "qq", url, None
    target = f"{host}{parts.path}"
    if any(h in target for h in OTHER_HOSTS):
        return "other", url, None
    return "", url, None


@dataclass
class _Hit:
    start: int
    end: int
    link: Link


def _hits(text: str) -> list[_Hit]:
    """File-host URLs in ``text``, in one pass.

    Every "http(s)://" (and every bare pan/yun.baidu.com) is a candidate start, so a
    link wrapped inside another URL (a redirect's ``gourl=``) is found too. All
    candidates in one run of URL characters end where the run ends, so that end is
    found once per run; a candidate is judged on its own part of the run (up to the
    next candidate), and only a file-host link is read again to the run's end, after
    which the rest of the run is its own. The work is linear in the text's length
    (``http://a.cn/`` repeated 90,000 times was quadratic: minutes).
    """
    hits: list[_Hit] = []
    starts = [m.start() for m in _START.finditer(text)]
    run_end = taken_until = -1
    for index, start in enumerate(starts):
        if start >= run_end:
            run_end = _RUN.match(text, start).end()  # type: ignore[union-attr]  # a start is in a run
        if start < taken_until:
            continue  # inside a link already found
        own_end = min(starts[index + 1], run_end) if index + 1 < len(starts) else run_end
        provider, url, code = _canonical_at(text, start, own_end)
        if not provider:
            continue
        if own_end < run_end:
            whole = _canonical_at(text, start, run_end)
            if whole[0] == provider:
                provider, url, code = whole
        taken_until = run_end
        hits.append(_Hit(start, run_end, Link(provider, url, code)))
    return hits


def _canonical_at(text: str, start: int, end: int) -> tuple[str, str, str | None]:
    match = _URL.match(text, start, end) or _BARE_BAIDU.match(text, start, end)
    return _canonical(match.group(0)) if match else ("", "", None)


def _bind_codes(text: str, hits: list[_Hit]) -> None:
    """Each Baidu link takes the code written after it (before the next link), else
    a code written just before it (after the previous link) that no link has taken."""
    used: set[int] = set()  # start offsets of codes that belong to a link
    baidu = [(i, h) for i, h in enumerate(hits) if h.link.provider == "baidu"]
    for index, hit in enumerate(hits):
        after_end = hits[index + 1].start if index + 1 < len(hits) else len(text)
        match = _CODE.search(text, hit.end, after_end)
        if match:
            used.add(match.start())  # a Quark or Aliyun code is not a Baidu code either
            if hit.link.provider == "baidu":
                hit.link.code = hit.link.code or match.group(1)
    for index, hit in baidu:
        if hit.link.code is None:
            before_start = hits[index - 1].end if index else 0
            codes = [m for m in _CODE.finditer(text, before_start, hit.start) if m.start() not in used]
            if codes:
                hit.link.code = codes[-1].group(1)
                used.add(codes[-1].start())
    for index, hit in enumerate(hits):
        if hit.link.provider == "netease":
            after_end = hits[index + 1].start if index + 1 < len(hits) else len(text)
            found = _SIZE_EXPIRY.search(text, hit.end, min(after_end, hit.end + 300))
            if found:
                hit.link.size, hit.link.expires = found.group(1), found.group(2)


def links_in_text(text: str) -> list[Link]:
    """The links of a plain-text part, each marked quoted or not."""
    return _links_in(normalise(text), [])


def _links_in(text: str, marked: list[tuple[int, int]]) -> list[Link]:
    """``text`` is normalised; ``marked``: spans inside HTML quote containers."""
    spans = merge(marked + quoted_spans(text))
    found = _scan(text, spans)
    if "%" in text:
        # links hidden in URL-encoded text (redirect wrappers); a link already found
        # as written is not listed again in its decoded spelling
        known = {unquote(link.url) for link in found}
        decoded, decoded_spans = _decoded(text, spans)
        found += [link for link in _scan(decoded, decoded_spans) if unquote(link.url) not in known]
    return found


def _scan(text: str, spans: list[tuple[int, int]]) -> list[Link]:
    hits = _hits(text)
    _bind_codes(text, hits)
    for hit in hits:
        hit.link.quoted = inside(hit.start, spans)
    return [h.link for h in hits]


def _decoded(text: str, spans: list[tuple[int, int]]) -> tuple[str, list[tuple[int, int]]]:
    """``unquote(text)``, piece by piece between span edges, so the quoted spans of the
    decoded text are known too."""
    edges = sorted({0, len(text), *(edge for span in spans for edge in span)})
    pieces: list[str] = []
    decoded_spans: list[tuple[int, int]] = []
    length = 0
    for start, end in zip(edges, edges[1:]):
        piece = unquote(text[start:end])
        if inside(start, spans):
            decoded_spans.append((length, length + len(piece)))
        pieces.append(piece)
        length += len(piece)
    return "".join(pieces), merge(decoded_spans)


def html_as_text(html: str, quotes: bool = False) -> str:
    """Visible text in reading order, each link's href written just before its text,
    so that codes and sizes printed beside a link are found next to it. ``quotes``:
    the text of quote containers between ``OPEN`` and ``CLOSE`` marks."""
    from bs4 import BeautifulSoup  # ~90 ms to import: paid only for a message with HTML

    soup = BeautifulSoup(html.replace(OPEN, "").replace(CLOSE, ""), "html.parser")
    for hidden in soup(["script", "style", "head", "title"]):
        hidden.decompose()
    if quotes:
        mark_quotes(soup)
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for anchor in soup.find_all("a"):
        href = anchor.get("href")
        if href:
            anchor.insert_before(f" {href} ")
    for block in soup.find_all(["p", "div", "tr", "li", "h1", "h2", "h3", "h4", "table", "blockquote"]):
        block.append("\n")
    for cell in soup.find_all(["td", "th"]):
        cell.append(" ")
    # no separator between inline nodes: Outlook and Word split words across <span>s
    return soup.get_text("")


def find_links(texts: list[str], htmls: list[str]) -> list[Link]:
    """Every distinct file-host link, in order of appearance, codes bound."""
    found: list[Link] = []
    for text in texts:
        found += links_in_text(text)
    for html in htmls:
        try:
            visible = html_as_text(html, quotes=True)
        except Exception:  # BeautifulSoup copes with almost anything; be sure
            visible = re.sub(r"<[^>]+>", " ", html).replace(OPEN, "").replace(CLOSE, "")
        text, marked = strip_marks(normalise(visible))
        found += _links_in(text, marked)
    return _dedupe(found)


def _dedupe(links: list[Link]) -> list[Link]:
    seen: dict[tuple[str, str], Link] = {}
    for link in links:
        key = (link.provider, link.url)  # share ids are case-sensitive
        if key in seen:
            kept = seen[key]
            kept.code = kept.code or link.code
            kept.size = kept.size or link.size
            kept.expires = kept.expires or link.expires
            kept.quoted = kept.quoted and link.quoted  # in the reply's own text once: not quoted
        else:
            seen[key] = link
    return list(seen.values())


_EXPIRY = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日(?:\s*(\d{1,2}):(\d{2}))?")


def expiry(link: Link) -> datetime | None:
    """When the link stops working, from the text printed beside it ("2026年8月17日
    0:49 到期", Beijing time; a date alone is read as its start, 0:00: the cautious reading)."""
    found = _EXPIRY.fullmatch((link.expires or "").strip())
    if not found:
        return None
    year, month, day, hour, minute = (int(part) if part else 0 for part in found.groups())
    try:
        return datetime(year, month, day, hour, minute, tzinfo=BEIJING)
    except ValueError:  # "2026年2月30日": not a date
        return None


def by_expiry(links: list[Link]) -> list[Link]:
    """The order to fetch a message's links in: those expiring soonest first, then the
    rest as found (Baidu shares and QQ links print no expiry)."""
    dated = sorted((moment, index) for index, link in enumerate(links) if (moment := expiry(link)) is not None)
    first = [links[index] for _, index in dated]
    return first + [link for link in links if expiry(link) is None]
