"""The fake world's state: shares, accounts with their own file trees, OpenAPI apps and
tokens, download links, transfer tasks and 163/QQ large attachments. One lock guards it;
every site reads and changes it under that lock."""

from __future__ import annotations

import base64
import hashlib
import itertools
import random
import string
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union
from urllib.parse import quote

from .content import Content, as_content

# fs_ids start above 2^53: a client that lets one pass through a float loses it
FIRST_FS_ID = 2**53 + 1001
ID_CHARS = string.ascii_letters + string.digits

Source = Union[Content, bytes, str, Path, int]
TreeSpec = Mapping[str, Union[Source, "TreeSpec"]]


class Node:
    """A file or folder, in a share or in an account. Files share Content, never copy it."""

    def __init__(self, name: str, fs_id: int, content: Content | None = None,
                 children: list[Node] | None = None, mtime: int | None = None) -> None:
        self.name = name
        self.fs_id = fs_id
        self.content = content
        self.children: list[Node] = children if children is not None else []
        self.mtime = mtime or int(time.time()) - 86400
        self.blocked = False  # the file host serves the "温馨提示" stand-in instead

    @property
    def isdir(self) -> bool:
        return self.content is None

    @property
    def size(self) -> int:
        return 0 if self.content is None else self.content.size

    def walk(self, prefix: str = "") -> Iterator[tuple[str, Node]]:
        """(path, node) for this node and everything below it, parents first."""
        path = f"{prefix}/{self.name}" if self.name else prefix
        yield path, self
        for child in self.children:
            yield from child.walk(path)

    def file_count(self) -> int:
        return sum(1 for _, node in self.walk() if not node.isdir)

    def total_size(self) -> int:
        return sum(node.size for _, node in self.walk())

    def child(self, name: str) -> Node | None:
        return next((c for c in self.children if c.name == name), None)

    def copy(self, new_id: Callable[[], int], name: str | None = None) -> Node:
        twin = Node(name or self.name, new_id(), self.content,
                    [c.copy(new_id) for c in self.children], self.mtime)
        twin.blocked = self.blocked
        return twin


def category(name: str) -> int:
    """Baidu's category: 1 video, 2 audio, 3 picture, 4 document, 5 application, 6 other, 7 torrent."""
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    for number, extensions in ((1, "mp4 mov avi mkv flv wmv m4v"), (2, "mp3 wav m4a aac flac"),
                               (3, "jpg jpeg png gif bmp webp"),
                               (4, "doc docx xls xlsx ppt pptx pdf txt wps"), (5, "exe apk")):
        if extension in extensions.split():
            return number
    return 6


def entry(node: Node, path: str, fsid_as_string: bool = False) -> dict[str, Any]:
    """A listing row as Baidu's share/list, xpan list and apaas list give it."""
    row: dict[str, Any] = {
        "fs_id": str(node.fs_id) if fsid_as_string else node.fs_id,
        "server_filename": node.name, "isdir": int(node.isdir), "size": node.size, "path": path,
        "category": 6 if node.isdir else category(node.name),
        "server_ctime": node.mtime, "server_mtime": node.mtime,
        "local_ctime": node.mtime, "local_mtime": node.mtime,
    }
    if not node.isdir:
        row["md5"] = node.content.listing_md5 if node.content else ""
    return row


@dataclass
class Share:
    surl: str                  # the /s/ ID: '1' and 22 more characters
    code: str | None           # the 4-character extraction code, or None
    roots: list[Node]
    owner_uk: int
    shareid: int
    state: str = "ok"          # ok | cancelled | expired | blocked (the link is dead unless ok)
    page_form: str = "mset"    # 'mset': locals.mset({...}); 'try': try{ {...}; }catch(ex){}
    file_list_form: str = "array"  # page data file_list: 'array' or 'object' ({"list": [...]})
    captcha: bool = False      # share/verify answers -62 until the captcha is answered
    list_8001: int = 0         # share/list answers errno 8001 ("已触发验证") this many times
    randsks: set[str] = field(default_factory=set)

    @property
    def short(self) -> str:
        """The surl of /share/init?surl=: the ID without its leading '1'."""
        return self.surl[1:]

    @property
    def url(self) -> str:
        return f"https://pan.baidu.com/s/{self.surl}"

    @property
    def link_text(self) -> str:
        """The text a sender pastes, in Baidu's newer form."""
        name = self.roots[0].name if self.roots else ""
        if self.code is None:
            return f"通过网盘分享的文件：{name}\n链接: {self.url}\n--来自百度网盘超级会员v6的分享"
        return (f"通过网盘分享的文件：{name}\n链接: {self.url}?pwd={self.code} 提取码: {self.code}\n"
                "--来自百度网盘超级会员v6的分享")

    def walk(self) -> Iterator[tuple[str, Node]]:
        """(share path, node) for everything shared; a root's path is /sharelink<uk>-<fsid>/<name>."""
        for root in self.roots:
            yield from root.walk(f"/sharelink{self.owner_uk}-{root.fs_id}")

    def find_path(self, path: str) -> Node | None:
        return next((node for p, node in self.walk() if p == path.rstrip("/")), None)

    def find_id(self, fs_id: int) -> tuple[str, Node] | None:
        return next(((p, node) for p, node in self.walk() if node.fs_id == fs_id), None)

    def path_of(self, node: Node) -> str:
        return next(p for p, n in self.walk() if n is node)


@dataclass
class Account:
    name: str
    bduss: str
    stoken: str
    uk: int
    bdstoken: str
    root: Node
    quota: int = 2 * 1024**4
    transfer_limit: int = 500  # files one transfer may copy (reportedly 500 for non-members)
    vip_type: int = 0          # 0 none, 1 VIP, 2 SVIP

    @property
    def cookie(self) -> str:
        """The Cookie header value staff would configure (INTAKE_BAIDU_COOKIE)."""
        return f"BDUSS={self.bduss}; STOKEN={self.stoken}"

    @property
    def used(self) -> int:
        return self.root.total_size()

    def find(self, path: str) -> Node | None:
        node: Node | None = self.root
        for part in [p for p in path.split("/") if p]:
            node = node.child(part) if node is not None else None
        return node

    def files(self) -> dict[str, Node]:
        """Every path in the account (folders too) → its node."""
        return {p: n for p, n in self.root.walk() if p}

    def mkdir(self, path: str, new_id: Callable[[], int]) -> Node:
        node = self.root
        for part in [p for p in path.split("/") if p]:
            found = node.child(part)
            if found is None:
                found = Node(part, new_id(), children=[])
                node.children.append(found)
            node = found
        return node

    def delete(self, path: str) -> bool:
        parent_path, _, name = path.rstrip("/").rpartition("/")
        parent = self.find(parent_path)
        target = parent.child(name) if parent is not None else None
        if parent is None or target is None:
            return False
        parent.children.remove(target)
        return True


@dataclass
class App:
    app_key: str
    secret_key: str
    app_id: str
    name: str
    share_capability: bool = True  # False: every apaas call answers errno 13998


@dataclass
class Grant:
    """An OAuth token (access or refresh) and whose it is."""

    app: App
    account: Account
    expires_at: float
    valid: bool = True


@dataclass
class DeviceCode:
    app: App
    device_code: str
    user_code: str
    expires_at: float
    account: Account | None = None  # set when the test marks it approved


@dataclass
class Link:
    """A download URL the fakes handed out; the file host serves it and counts its use."""

    token: str
    content: Content
    name: str
    kind: str                       # 'pcs' (cookie route), 'dlink' (OpenAPI), 'mail' (163/QQ)
    account: Account | None = None
    requests: int = 0
    bytes_sent: int = 0
    expired: bool = False


@dataclass
class Task:
    task_id: int
    running: int                    # taskquery answers 'running' this many more times
    task_errno: int = 0             # non-zero: the task ends 'failed' with this task_errno
    finish: Callable[[], list[dict[str, Any]]] | None = None  # applied when it succeeds
    result: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"


@dataclass
class Attachment:
    """A 163 / 网易邮箱大师 / QQ large attachment behind its link."""

    provider: str                   # 'netease' | 'dashi' | 'qq' | 'qq_old'
    key: str
    name: str
    content: Content
    state: str = "ok"               # ok | expired | deleted
    code: str = ""                  # QQ's code parameter


class Ids:
    """Ids and secrets the fakes make up: random, from a seeded generator."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed)
        self._fs_ids = itertools.count(FIRST_FS_ID + self.rng.randrange(10**6), 7919)
        self._small = itertools.count(self.rng.randrange(10**5, 10**6))

    def fs_id(self) -> int:
        return next(self._fs_ids)

    def number(self) -> int:
        return next(self._small)

    def text(self, length: int, alphabet: str = ID_CHARS) -> str:
        return "".join(self.rng.choice(alphabet) for _ in range(length))

    def hex(self, length: int = 32) -> str:
        return self.text(length, "0123456789abcdef")

    def share_id(self) -> str:
        """'1' + 22 characters; with '_' and '-' in it, as newer IDs have."""
        return "1" + self.text(10) + "_" + self.text(5) + "-" + self.text(5)

    def randsk(self) -> str:
        """URL-encoded, as Baidu sends it (its base64 has '+', '/' and '=' in it)."""
        raw = base64.b64encode(b"\xfb\xff" + self.rng.randbytes(40)).decode()
        return quote(raw, safe="")

    def uk(self) -> int:
        return self.rng.randrange(10**9, 4 * 10**9)


def build_tree(spec: TreeSpec, new_id: Callable[[], int]) -> list[Node]:
    """Nodes from {'作品/视频.mp4': b'…', 'big.mp4': 2 * 2**30, '说明': {'a.txt': 'text'}}.
    A key with '/' makes the folders on its way; a Mapping value is a folder."""
    top = Node("", 0, children=[])
    for key, value in spec.items():
        parts = [p for p in key.split("/") if p]
        parent = top
        for part in parts[:-1]:
            found = parent.child(part)
            if found is None:
                found = Node(part, new_id(), children=[])
                parent.children.append(found)
            parent = found
        if isinstance(value, Mapping):
            folder = parent.child(parts[-1]) or Node(parts[-1], new_id(), children=[])
            if folder not in parent.children:
                parent.children.append(folder)
            folder.children.extend(build_tree(value, new_id))
        else:
            parent.children.append(Node(parts[-1], new_id(), as_content(value)))
    return top.children


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class Clock:
    """Wall time, which a test may move forward (token and device-code expiry)."""

    def __init__(self) -> None:
        self.offset = 0.0
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.time() + self.offset
