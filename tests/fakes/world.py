"""The Python API a test uses to set up the fake world and its fault switches."""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from typing import Any

from .content import Content
from .state import (Account, App, Attachment, Clock, DeviceCode, Grant, Ids, Link, Node, Share,
                    Source, Task, TreeSpec, build_tree)
from .content import as_content

ACCESS_LIFETIME = 2592000          # 30 days, as Baidu gives it
REFRESH_LIFETIME = 10 * 365 * 86400
DEVICE_CODE_LIFETIME = 1800


class World:
    def __init__(self, seed: int | None = None) -> None:
        self.lock = threading.RLock()
        self.ids = Ids(seed)
        self.clock = Clock()
        self.shares: dict[str, Share] = {}
        self.accounts: list[Account] = []
        self.apps: dict[str, App] = {}
        self.device_codes: dict[str, DeviceCode] = {}
        self.auth_codes: dict[str, Grant] = {}   # authorize?response_type=code&redirect_uri=oob
        self.access_tokens: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, Grant] = {}
        self.links: dict[str, Link] = {}
        self.tasks: dict[int, Task] = {}
        self.attachments: dict[str, Attachment] = {}
        self.captchas: dict[str, str] = {}      # vcode_str → the answer
        # switches for transfers and the file host
        self.taskquery_running = 1              # 'running' answers before 'success'
        self.next_task_errno = 0                # the next transfer task fails with this task_errno
        self.expire_after_bytes: int | None = None     # a link dies after sending this many bytes
        self.expire_after_requests: int | None = None  # … or after this many requests
        self.expire_answer = "31360"            # '31360' (JSON error) or '403' (a bare 403)
        self.max_range: int | None = None       # a larger range → 403 31326 (hitcode)
        self.locate_decoys = True               # locatedownload lists an encrypt=1 URL and an nb.cache host first
        self.apaas_short_url = "any"            # 'any' | 'with_1' | 'without_1': which short_url form apaas accepts
        self.bytes_served = 0                   # body bytes every download host sent, all told

    # ---- shares -------------------------------------------------------------------------
    def add_share(self, files: TreeSpec, code: str | None = None, *, surl: str | None = None,
                  page_form: str = "mset", file_list_form: str = "array",
                  owner_uk: int | None = None) -> Share:
        """A share of `files` (see state.build_tree) with extraction code `code` or none."""
        with self.lock:
            share = Share(surl or self.ids.share_id(), code, build_tree(files, self.ids.fs_id),
                          owner_uk or self.ids.uk(), self.ids.number() * 1000 + 7,
                          page_form=page_form, file_list_form=file_list_form)
            self.shares[share.surl] = share
            return share

    def cancel_share(self, share: Share) -> None:
        share.state = "cancelled"

    def expire_share(self, share: Share) -> None:
        share.state = "expired"

    def block_share(self, share: Share) -> None:
        """The whole share taken down for its content (此链接分享内容可能因为涉及侵权…)."""
        share.state = "blocked"

    def serve_standin(self, share_or_account: Share | Account, path: str) -> Node:
        """The file at `path` is blocked: downloads of it (and of its copies) get the stand-in."""
        node = (share_or_account.find_path(path) if isinstance(share_or_account, Share)
                else share_or_account.find(path))
        if node is None:
            raise KeyError(path)
        for _, inner in node.walk():
            inner.blocked = True
        return node

    def share_by_short(self, short: str) -> Share | None:
        """A share by its ID with or without the leading '1'."""
        return self.shares.get(short) or self.shares.get("1" + short)

    # ---- accounts -----------------------------------------------------------------------
    def add_account(self, name: str = "staff", *, quota: int = 2 * 1024**4, transfer_limit: int = 500,
                    vip_type: int = 0, files: TreeSpec | None = None) -> Account:
        with self.lock:
            account = Account(name, self.ids.text(192), self.ids.hex(64), self.ids.uk(), self.ids.hex(),
                              Node("", 0, children=build_tree(files or {}, self.ids.fs_id)),
                              quota=quota, transfer_limit=transfer_limit, vip_type=vip_type)
            self.accounts.append(account)
            return account

    def account_by_cookies(self, cookies: dict[str, str], need_stoken: bool = True) -> Account | None:
        for account in self.accounts:
            if cookies.get("BDUSS") == account.bduss and (
                    not need_stoken or cookies.get("STOKEN") == account.stoken):
                return account
        return None

    # ---- OpenAPI apps and tokens ----------------------------------------------------------
    def add_app(self, name: str = "intake", *, share_capability: bool = True) -> App:
        with self.lock:
            app = App(self.ids.text(32), self.ids.text(32), str(self.ids.number() * 10 + 3), name,
                      share_capability=share_capability)
            self.apps[app.app_key] = app
            return app

    def new_device_code(self, app: App) -> DeviceCode:
        with self.lock:
            grant = DeviceCode(app, self.ids.hex(32), self.ids.text(8, "abcdefghjkmnpqrstuvwxyz23456789"),
                               self.clock.now() + DEVICE_CODE_LIFETIME)
            self.device_codes[grant.device_code] = grant
            return grant

    def approve_device(self, user_code: str, account: Account) -> None:
        """What the user does at openapi.baidu.com/device: the next token poll succeeds."""
        with self.lock:
            for grant in self.device_codes.values():
                if grant.user_code == user_code:
                    grant.account = account
                    return
        raise KeyError(f"no device code with user code {user_code}")

    def authorization_code(self, app: App, account: Account) -> str:
        """The code a user copies from the oob authorize page (grant_type=authorization_code)."""
        with self.lock:
            code = self.ids.hex(32)
            self.auth_codes[code] = Grant(app, account, self.clock.now() + 600)
            return code

    def issue_tokens(self, app: App, account: Account) -> tuple[str, str]:
        """A new (access, refresh) pair; earlier access tokens of this app and account stop working."""
        with self.lock:
            for grant in self.access_tokens.values():
                if grant.app is app and grant.account is account:
                    grant.valid = False
            access = "121." + self.ids.hex(32) + "." + self.ids.text(40)
            refresh = "122." + self.ids.hex(32) + "." + self.ids.text(40)
            now = self.clock.now()
            self.access_tokens[access] = Grant(app, account, now + ACCESS_LIFETIME)
            self.refresh_tokens[refresh] = Grant(app, account, now + REFRESH_LIFETIME)
            return access, refresh

    def expire_access_token(self, token: str) -> None:
        self.access_tokens[token].expires_at = self.clock.now() - 1

    def token_grant(self, token: str) -> tuple[Grant | None, int]:
        """(grant, 0) for a usable access token, else (None, errno): 111 expired or replaced, -6 unknown."""
        grant = self.access_tokens.get(token)
        if grant is None:
            return None, -6
        if not grant.valid or grant.expires_at < self.clock.now():
            return None, 111
        return grant, 0

    # ---- download links and tasks ---------------------------------------------------------
    def new_link(self, content: Content, name: str, kind: str, account: Account | None = None) -> Link:
        with self.lock:
            link = Link(self.ids.hex(40), content, name, kind, account)
            self.links[link.token] = link
            return link

    def new_task(self, finish: Callable[[], list[dict[str, Any]]] | None = None, *, transfer: bool = True) -> Task:
        """A task polled with taskquery; a transfer task takes the next_task_errno switch."""
        with self.lock:
            task_errno = self.next_task_errno if transfer else 0
            task = Task(self.ids.number(), self.taskquery_running if transfer else 0, task_errno, finish)
            if transfer:
                self.next_task_errno = 0
            self.tasks[task.task_id] = task
            return task

    def advance(self, task: Task) -> Task:
        """One taskquery: running for a while, then success (applying it) or failed."""
        with self.lock:
            if task.status != "running":
                return task
            if task.running > 0:
                task.running -= 1
                return task
            if task.task_errno:
                task.status = "failed"
                return task
            task.result = task.finish() if task.finish else []
            task.status = "success"
            return task

    # ---- 163 and QQ large attachments ------------------------------------------------------
    def add_attachment(self, provider: str, name: str, content: Source, *, state: str = "ok") -> Attachment:
        """provider: 'netease' (mail.163.com), 'dashi' (网易邮箱大师), 'qq' (wx.mail.qq.com)
        or 'qq_old' (mail.qq.com/cgi-bin/ftnExs_download); state: ok | expired | deleted."""
        if provider not in ("netease", "dashi", "qq", "qq_old"):
            raise ValueError(provider)
        with self.lock:
            attachment = Attachment(provider, self.ids.text(40), name, as_content(content), state,
                                    code=self.ids.hex(16))
            self.attachments[attachment.key] = attachment
            return attachment

    def attachment_html(self, attachment: Attachment, expires: str = "2026年8月17日 0:49") -> str:
        """The HTML a 163 / QQ mail carries for the attachment: the link, its size and 到期 text."""
        url = html.escape(self.attachment_url(attachment))
        size = f"{attachment.content.size / 1024 / 1024:.2f}M"
        heading = "从网易163邮箱发来的超大附件" if attachment.provider in ("netease", "dashi") else "从QQ邮箱发来的超大附件"
        return (f"<div><b>{heading}</b><div><a href=\"{url}\">{html.escape(attachment.name)}</a> "
                f"<a href=\"{url}\">下载</a> <span style=\"color:#909090\">({size}, {expires} 到期)</span>"
                "</div></div>")

    def attachment_url(self, attachment: Attachment) -> str:
        """The link as the mail carries it."""
        key, code = attachment.key, attachment.code
        return {
            "netease": f"https://mail.163.com/large-attachment-download/index.html?file={key}",
            "dashi": f"https://dashi.163.com/html/cloud-attachment-download?key={key}",
            "qq": f"https://wx.mail.qq.com/ftn/download?func=3&key={key}&code={code}&k={code[:8]}",
            "qq_old": f"https://mail.qq.com/cgi-bin/ftnExs_download?k={key}&t=exs_ftn_download&code={code}",
        }[attachment.provider]
