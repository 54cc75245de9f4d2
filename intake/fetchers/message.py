"""Fetching one message's links, link by link, into outcomes the core can judge with
(``intake.kernel.fetched``): what the daemon's ``fetching`` stage and ``intake check``
share.

- Order: ``by_expiry`` (163 links that expire soonest first).
- Size: INTAKE_DOWNLOAD_MAX_GB is the whole message's: one ``DownloadLimits`` per message
  attempt goes to the fetch of each link (it counts the bytes), charged first with the
  files of links fetched at an earlier attempt.
- Outcomes: files (``fetched``), the sender's problem (``sender``: the fetcher's
  findings; a package larger than the policy allows, ``archive.too_large``), or ours
  that only staff can settle (``failed``: no account, over an operator's cap below the
  policy's limit, a configuration Baidu reports) with a reason in Chinese and the listing.
  ``TransientError`` and ``ConfigError`` are raised: the daemon tries again later,
  ``intake check`` says so at once.
"""

from __future__ import annotations

from pathlib import Path

from intake.fetchers.base import (PARTS_DIR, DownloadLimits, DownloadTooLarge, Fetched, Fetcher, NeedsStaff, NoAccount,
                                  Progress)
from intake.kernel.errors import ConfigError, IntakeError, PermanentError, TransientError
from intake.kernel.fetched import FAILED, FETCHED, SENDER, FetchedPackage, LinkFetch
from intake.kernel.findings import Finding
from intake.parsers.links import Link, by_expiry

MIB = 1024 * 1024
GIB = 1024 * MIB
GAVE_UP = "多次尝试自动下载均未成功，原因在网络或网盘服务一方"
CONFIG = "多次尝试自动下载均未成功，原因在本系统的网盘下载设置，工作人员正在处理"  # a ConfigError
TRY_LATER = "自动下载暂时未能完成，原因在网络或网盘服务一方"
DISABLED = "本系统未开启网盘链接自动下载"
# not fetched because another link of the message is the sender's to mend: they send again
RESEND = "原因在网络或网盘服务一方，本邮件需重新发送，未再等待下载"


def in_order(links: list[tuple[int, Link]]) -> list[tuple[int, Link]]:
    """(position, link) in the order to fetch them: soonest expiry first."""
    ordered = by_expiry([link for _, link in links])
    position = {id(link): n for n, link in links}
    return [(position[id(link)], link) for link in ordered]


def message_limits(limits: DownloadLimits, package: FetchedPackage) -> DownloadLimits:
    """``limits`` (a new object for this attempt) charged with the files of the links
    fetched before it: the cap is the message's, whichever attempt fetched what."""
    for folder in package.folders():
        limits.used_bytes += sum(path.stat().st_size for path in folder.rglob("*")
                                 if path.is_file() and PARTS_DIR not in path.relative_to(folder).parts)
    return limits


def fetch_link(fetcher: Fetcher, link: Link, dest: Path, limits: DownloadLimits,
               progress: Progress | None = None, key: str | None = None,
               package_cap: int | None = None) -> LinkFetch:
    """One link's outcome. Raises TransientError and ConfigError (ours, for later).
    ``limits``: the message's (the same object for each of its links). ``package_cap``:
    the policy's limit on a whole package (bytes); linked files beyond it are the sender's."""
    try:
        fetched = fetcher.fetch(link, dest, limits, progress, key=key)
    except (TransientError, ConfigError):
        raise
    except DownloadTooLarge as err:
        listing = [(f.path, f.size) for f in err.listing]
        if package_cap is not None and err.total > package_cap:
            return LinkFetch(link.provider, link.url, SENDER, None, [too_large_finding(link, err.total, package_cap)],
                             detail=f"{type(err).__name__}: {err}", listing=listing)
        return failed(link, _reason(err, limits), err, listing)
    except NeedsStaff as err:
        return failed(link, _reason(err, limits), err, [(f.path, f.size) for f in err.listing])
    except PermanentError as err:
        return failed(link, "自动下载时遇到需要工作人员处理的问题", err)
    return _outcome(link, dest, fetched)


def _outcome(link: Link, dest: Path, fetched: Fetched) -> LinkFetch:
    listing = [(f.path, f.size) for f in fetched.listing]
    if fetched.files:
        return LinkFetch(link.provider, link.url, FETCHED, dest.name, list(fetched.findings), listing=listing)
    if fetched.findings:
        return LinkFetch(link.provider, link.url, SENDER, None, list(fetched.findings), listing=listing)
    return LinkFetch(link.provider, link.url, FETCHED, dest.name, [], listing=listing)  # an empty share


def too_large_finding(link: Link, total: int, cap: int) -> Finding:
    """The sender's package is larger than the policy allows: nothing was downloaded."""
    return Finding(
        "archive.too_large",
        f"链接 {link.url} 中的文件连同本邮件其他链接的文件共 {total / GIB:.2f} GB 以上，超过单次报送材料总大小的上限"
        f"（{cap / GIB:g} GB），系统未下载。请压缩视频、删去与报送无关的文件后重新分享，并发送新的链接和提取码。",
    )


def failed(link: Link, reason: str, err: BaseException | None = None,
           listing: list[tuple[str, int]] | None = None) -> LinkFetch:
    detail = f"{type(err).__name__}: {err}" if err is not None else None
    return LinkFetch(link.provider, link.url, FAILED, reason=reason, detail=detail, listing=listing or [])


def _reason(err: NeedsStaff, limits: DownloadLimits) -> str:
    files, size = len(err.listing), sum(f.size for f in err.listing) / MIB
    if isinstance(err, NoAccount):
        return f"系统未配置百度网盘账号，无法自动下载；链接和提取码有效，共 {files} 个文件、{size:.1f} MB"
    if isinstance(err, DownloadTooLarge):
        return f"文件共 {size:.1f} MB，超过系统自动下载的大小上限"
    return "自动下载时遇到需要工作人员处理的问题"


def fetch_now(fetchers: dict[str, Fetcher], links: list[tuple[int, Link]], root: Path, limits: DownloadLimits,
              progress: Progress | None = None, package_cap: int | None = None,
              probe: Fetcher | None = None) -> FetchedPackage:
    """Every link once, now (``intake check``; ``limits``: a new object for the message):
    a failure on our side is a ``failed`` outcome at once, and the links of a host that
    failed so are not fetched again; with ``probe`` (the account-free Baidu fetcher) the
    Baidu ones are still checked, so that a wrong code or a dead share is told, as the
    daemon does."""
    package = FetchedPackage(root)
    down: dict[str, str] = {}  # provider -> why it could not be reached
    for n, link in in_order(links):
        if link.provider in down:
            checked = _probed(probe, link, root / str(n), limits) if link.provider == "baidu" else None
            package.links[n] = checked or failed(link, TRY_LATER, None)
            if checked is None:
                package.links[n].detail = down[link.provider]
            continue
        try:
            package.links[n] = fetch_link(fetchers[link.provider], link, root / str(n), limits, progress,
                                          package_cap=package_cap)
        except TransientError as err:
            down[link.provider] = f"{type(err).__name__}: {err}"
            package.links[n] = failed(link, TRY_LATER, err)
        except IntakeError:
            raise  # a ConfigError: one line naming the setting
    return package


def _probed(probe: Fetcher | None, link: Link, dest: Path, limits: DownloadLimits) -> LinkFetch | None:
    """The link's outcome when the probe finds it the sender's problem; None otherwise."""
    if probe is None:
        return None
    try:
        outcome = fetch_link(probe, link, dest, limits)
    except (TransientError, ConfigError):
        return None
    return outcome if outcome.outcome == SENDER else None
