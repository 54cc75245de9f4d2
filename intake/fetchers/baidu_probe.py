"""The ``probe`` route (the default, no account): is the link alive, is the code right?

The share page with the netdisk client's User-Agent and share/verify with the code (the
``?pwd=`` code first, then the one in the text when they differ and the first gives -9).
A wrong code or a dead link is the sender's problem: a finding at once. A valid link
raises ``NoAccount`` with the listing (names, sizes) for staff: without an account
Baidu lets nothing be downloaded.
"""

from __future__ import annotations

from pathlib import Path

from intake.fetchers.base import DownloadLimits, Fetched, NoAccount, Progress, SenderProblem, finding_for
from intake.fetchers.baidu_share import share_ref
from intake.fetchers.baidu_web import MAX_ENTRIES, ShareWeb
from intake.fetchers.http import Http
from intake.fetchers.transfer_plan import listing
from intake.parsers.links import Link


class ProbeFetcher:
    provider = "baidu"

    def __init__(self, http: Http) -> None:
        self.http = http

    def fetch(self, link: Link, dest: Path, limits: DownloadLimits, progress: Progress | None = None,
              *, key: str | None = None) -> Fetched:
        ref = share_ref(link)
        try:
            web = ShareWeb(self.http, ref)
            info = web.list_tree(web.open())
            files = listing(info.files())
        except SenderProblem as problem:
            return Fetched([], [], [finding_for(problem)])
        size = sum(f.size for f in files)
        raise NoAccount(f"未配置百度网盘账号（INTAKE_NETDISK_ROUTE=probe）：链接 {ref.url} 与提取码有效，"
                        f"共 {len(files)} 个文件、{size / 1024 ** 2:.1f} MB"
                        f"{f'（超过 {MAX_ENTRIES} 项，列表不完整）' if info.truncated else ''}，需工作人员手工下载，"
                        "或配置 cookie / openapi 方式后重新处理。", files)
