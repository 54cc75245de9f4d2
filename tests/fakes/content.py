"""What a fake file holds: real bytes, a file on disk, or content generated from the offset.

Generated content lets a test serve a 2 GiB file without holding it: every 64 KiB block is
a fixed pseudo-random block with the file's seed and the block's number stamped in its
first 16 bytes, so any byte can be produced from its offset (Range works) and a chunk put at
the wrong offset by a resuming client changes the md5.
"""

from __future__ import annotations

import hashlib
import random
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

CHUNK = 256 * 1024
BLOCK = 64 * 1024

# The "温馨提示" stand-in Baidu serves instead of blocked content ([Go] IsSkipMd5Checksum).
STANDIN_SIZE = 1749504
STANDIN_MD5 = "48bb9b0361dc9c672f3dc7b3ffcfde97"


class Content:
    """Bytes addressable by offset, with a lazily computed (and cached) md5."""

    size: int

    def __init__(self) -> None:
        self._md5: str | None = None
        self._md5_lock = threading.Lock()

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes [start, end) in chunks of at most CHUNK bytes."""
        raise NotImplementedError

    def read(self, start: int = 0, end: int | None = None) -> bytes:
        return b"".join(self.chunks(start, end))

    @property
    def md5(self) -> str:
        """The md5 of the bytes served (a file host's Content-MD5/ETag)."""
        with self._md5_lock:
            if self._md5 is None:
                digest = hashlib.md5()
                for chunk in self.chunks():
                    digest.update(chunk)
                self._md5 = digest.hexdigest()
            return self._md5

    @property
    def listing_md5(self) -> str:
        """What a share or xpan listing shows as 'md5': 32 hex digits, deliberately not the
        md5 of the data (Baidu's metadata md5 has been its own value since about 2023)."""
        return hashlib.md5(("listing:" + self.md5).encode()).hexdigest()

    def _bounds(self, start: int, end: int | None) -> tuple[int, int]:
        end = self.size if end is None else min(end, self.size)
        return max(0, start), end


class BytesContent(Content):
    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data = bytes(data)
        self.size = len(self.data)

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        start, end = self._bounds(start, end)
        view = memoryview(self.data)
        for offset in range(start, end, CHUNK):
            yield bytes(view[offset:min(offset + CHUNK, end)])


class FileContent(Content):
    """A file on disk, read as it is served (the benchmark's real 2 GiB package)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)
        self.size = self.path.stat().st_size

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        start, end = self._bounds(start, end)
        with self.path.open("rb") as handle:
            handle.seek(start)
            left = end - start
            while left > 0:
                chunk = handle.read(min(CHUNK, left))
                if not chunk:
                    raise OSError(f"{self.path} shrank while being served")
                left -= len(chunk)
                yield chunk


class GeneratedContent(Content):
    """`size` bytes derived from (seed, offset); nothing of it is held but one 64 KiB block."""

    def __init__(self, size: int, seed: int = 0) -> None:
        super().__init__()
        self.size = size
        self.seed = seed
        self._tail = random.Random(seed).randbytes(BLOCK)[16:]

    def block(self, number: int) -> bytes:
        return struct.pack(">QQ", self.seed & (2**64 - 1), number) + self._tail

    def chunks(self, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        start, end = self._bounds(start, end)
        offset = start
        pending: list[bytes] = []
        pending_size = 0
        while offset < end:
            number, inside = divmod(offset, BLOCK)
            piece = self.block(number)[inside:min(BLOCK, inside + end - offset)]
            offset += len(piece)
            pending.append(piece)
            pending_size += len(piece)
            if pending_size >= CHUNK:
                yield b"".join(pending)
                pending, pending_size = [], 0
        if pending:
            yield b"".join(pending)


class StandInContent(GeneratedContent):
    """What Baidu serves for blocked content: the "温馨提示" video of 1749504 bytes.

    No bytes can be made to have the real stand-in's md5, so this one has the right size and
    *claims* the stand-in md5: the file host sends STANDIN_MD5 as Content-MD5/ETag. A client
    must recognise the stand-in from the size plus the md5 the listing or the headers give
    (as [Go] IsSkipMd5Checksum does), not by hashing what it received.
    """

    def __init__(self) -> None:
        super().__init__(STANDIN_SIZE, seed=0x5747)

    @property
    def md5(self) -> str:
        return STANDIN_MD5

    @property
    def listing_md5(self) -> str:
        return STANDIN_MD5


STANDIN = StandInContent()


def as_content(source: Content | bytes | str | Path | int) -> Content:
    """bytes → those bytes; a Path → that file; an int → generated content of that size."""
    if isinstance(source, Content):
        return source
    if isinstance(source, (bytes, bytearray)):
        return BytesContent(bytes(source))
    if isinstance(source, str):
        return BytesContent(source.encode("utf-8"))
    if isinstance(source, Path):
        return FileContent(source)
    if isinstance(source, int):
        return GeneratedContent(source, seed=random.randrange(2**63))
    raise TypeError(f"cannot make file content from {type(source).__name__}")
