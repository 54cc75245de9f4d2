"""Loopback servers that answer as Baidu Netdisk, 163 and QQ Mail do (notes: baidu-netdisk.md
§6, mail-163.md §3). Use the `fake_netdisk` fixture: import it into a test module (or a
conftest) with `from tests.fakes import fake_netdisk  # noqa: F401`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .content import STANDIN_MD5, STANDIN_SIZE, BytesContent, Content, FileContent, GeneratedContent
from .netdisk import BROWSER_UA, NETDISK_UA, FakeNetdisk
from .state import Account, App, Attachment, Node, Share

__all__ = ["FakeNetdisk", "fake_netdisk", "NETDISK_UA", "BROWSER_UA", "STANDIN_SIZE", "STANDIN_MD5",
           "Content", "BytesContent", "FileContent", "GeneratedContent", "Share", "Account", "App",
           "Attachment", "Node"]


@pytest.fixture
def fake_netdisk() -> Iterator[FakeNetdisk]:
    """A FakeNetdisk for one test; closed however the test ends."""
    fake = FakeNetdisk()
    try:
        yield fake
    finally:
        fake.close()
