"""What could not be unpacked, said to the sender: ArchiveProblems become Findings.

intake.parsers.archives reports each problem as data (ArchiveProblem: its kind is
the finding code, its reason the case, plus the names, sizes and limits involved);
this is the one place that words them, in Simplified Chinese.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from intake.kernel.findings import Finding
from intake.parsers.archives import ArchiveProblem


def archive_findings(problems: Iterable[ArchiveProblem]) -> list[Finding]:
    """One finding per problem, in the same order; the project is not known here."""
    return [Finding(problem.kind, archive_message(problem), None, problem.path) for problem in problems]


def archive_message(problem: ArchiveProblem) -> str:
    """The sender-facing text for one problem."""
    return _MESSAGES[problem.reason](problem)


def _human(size: int | float | None) -> str:
    size = size or 0
    for unit, factor in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} 字节"


def _number(limit: int | float | None) -> str:  # as {limit:g}
    return f"{limit or 0:g}"


def _password(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”设置了密码，无法解压。"
            "请取消密码（不加密压缩包及其中的文件）后重新打包发送。")


def _folder_unreadable(p: ArchiveProblem) -> str:
    return f"无法读取文件夹“{p.entry or '.'}”：{p.error}。"


def _volumes_missing(p: ArchiveProblem) -> str:
    listed = "、".join(f"“{m}”" for m in p.missing[:10])
    return (f"分卷压缩包“{p.archive}”缺少分卷 {listed}，无法解压。"
            "请将全部分卷一并发送，或改为不分卷的单个压缩包。")


def _unreadable(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”无法读取，文件可能已损坏或未完整上传。"
            "请在本机确认能正常解压后，重新打包发送。")


def _volumes_unreadable(p: ArchiveProblem) -> str:
    return (f"分卷压缩包“{p.archive}”无法解压，可能缺少最后的分卷或某个分卷已损坏。"
            "请将全部分卷一并重新发送，或改为不分卷的单个压缩包。")


def _unsafe(p: ArchiveProblem) -> str:
    return (f"“{p.entry}”是链接、设备文件或指向材料包以外的路径，出于安全原因未予处理。"
            "请直接打包文件本身（不要包含快捷方式、链接或“..”路径）后重新发送。")


def _nesting(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”嵌套层数超过 {p.limit} 层（压缩包里套压缩包）。"
            "请解开多余的压缩层，只保留一层压缩包后重新发送。")


def _entry_count(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”中的文件过多（整个材料包超过 {p.limit} 个文件）。"
            "请只打包报送所需的视频、文档和题库后重新发送。")


def _total_size(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”解压后约 {_human(p.size)}，整个材料包超过 "
            f"{_human(p.limit)} 的上限。请删除与报送无关的文件后重新发送。")


def _ratio(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”只有 {_human(p.packed)}，解压后却达 {_human(p.size)}，"
            f"压缩比超过 {_number(p.limit)}:1，不像正常的报送材料，已拒绝解压。"
            "请检查压缩包内容后重新打包发送。")


def _entry_ratio(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”中的“{p.entry}”解压后达 {_human(p.size)}，"
            f"压缩比超过 {_number(p.limit)}:1，不像正常的报送材料，已拒绝解压。"
            "请检查该文件后重新打包发送。")


def _timeout(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”解压超过 {_number(p.limit)} 秒仍未完成，已停止。"
            "请确认压缩包内只有报送材料，或拆分为几个较小的压缩包后重新发送。")


def _disk_cap(p: ArchiveProblem) -> str:
    return (f"压缩包“{p.archive}”解压后的实际大小超过材料包上限 {_human(p.limit)}"
            "（与压缩包声明的大小不符），已停止解压。请检查后重新打包发送。")


# reason -> wording; every reason of intake.parsers.archives.PROBLEM_REASONS has one
_MESSAGES: dict[str, Callable[[ArchiveProblem], str]] = {
    "password": _password,
    "folder_unreadable": _folder_unreadable,
    "volumes_missing": _volumes_missing,
    "unreadable": _unreadable,
    "volumes_unreadable": _volumes_unreadable,
    "unsafe": _unsafe,
    "nesting": _nesting,
    "entry_count": _entry_count,
    "total_size": _total_size,
    "ratio": _ratio,
    "entry_ratio": _entry_ratio,
    "timeout": _timeout,
    "disk_cap": _disk_cap,
}
