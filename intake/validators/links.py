"""The findings about a message's links, worded for the sender: links our side could
not fetch (``link.fetch_failed``: staff look, the sender need not resend, unless another
link of the message is theirs to mend: then it is asked for in the new message), links to
hosts nobody can fetch from (``link.unsupported``), nothing at all (``package.empty``),
and a reply whose only links were already received (``link.already_received``)."""

from __future__ import annotations

from collections.abc import Sequence

from intake.kernel.fetched import LinkFetch
from intake.kernel.findings import Finding
from intake.parsers.links import Link

PROVIDER_NAMES = {"baidu": "百度网盘", "netease": "网易邮箱超大附件", "qq": "QQ邮箱超大附件"}
NOT_TRIED = "未进行自动下载"  # check_message without fetching (a library call, a test)


def fetch_failed(provider: str, url: str, reason: str) -> Finding:
    """Our side could not fetch the link: said to be ours, with nothing for the sender to do."""
    return Finding(
        "link.fetch_failed",
        f"邮件中的{PROVIDER_NAMES.get(provider, '网盘')}链接 {url} 暂未能自动下载（{reason}），"
        "已转工作人员人工核对，您无需重新发送。",
    )


def failed_findings(links: Sequence[LinkFetch]) -> list[Finding]:
    return [fetch_failed(link.provider, link.url, link.reason or "原因不明") for link in links]


def resend_findings(links: Sequence[LinkFetch]) -> list[Finding]:
    """Links our side could not fetch in a message the sender must send again anyway
    (another of its links has a wrong code, is dead or too large): asked for again."""
    return [Finding(
        "link.fetch_failed",
        f"邮件中的{PROVIDER_NAMES.get(link.provider, '网盘')}链接 {link.url} 未能自动下载"
        f"（{link.reason or '原因不明'}）。请在更正其他链接后重新发送时，一并附上此链接及其提取码。",
    ) for link in links]


def not_fetched_findings(links: Sequence[Link]) -> list[Finding]:
    """Fetchable links that were not fetched at all."""
    return [fetch_failed(link.provider, link.url, NOT_TRIED) for link in links]


def nothing_attached(links: Sequence[Link]) -> Finding:
    """No attachment and nothing fetchable: links to other hosts only, or nothing."""
    if links:
        hosts = "、".join(dict.fromkeys(link.url.split("/")[2] for link in links))
        return Finding(
            "link.unsupported",
            f"邮件中只有以下网盘的链接：{hosts}，系统无法从这些网盘下载。"
            "请改用百度网盘链接（附提取码），或将材料直接作为附件发送。",
        )
    return Finding(
        "package.empty",
        "邮件中没有附件，也没有百度网盘链接。请将报送表和各项目的视频、文档、题库打包作为附件发送，"
        "或发送百度网盘分享链接及提取码。",
    )


def already_received(links: Sequence[LinkFetch]) -> Finding:
    """For staff: a reply that only quotes links of an earlier, recorded submission."""
    receipts = "、".join(dict.fromkeys(link.earlier or "" for link in links if link.earlier))
    return Finding(
        "link.already_received",
        f"本邮件只在引用的原邮件中带有链接，这些链接已随此前的报送（回执号 {receipts}）收到，未重新下载；"
        "邮件本身没有新的附件或链接，视为往来回复，不作为新的报送处理。",
    )
