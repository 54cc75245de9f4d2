"""MediaInfo on a file a sender controls, within bounds.

MediaInfo is a C++ library; in our process nothing can stop it: a 6 MB MP4 declaring
10,000 tracks kept it busy for two minutes and 1.7 GiB. What it costs grows with the
tracks a file declares, so:

- an MP4 or MOV (ISO base media file, what the rules ask for) has its tracks counted from
  its box headers first (a few reads and seeks, no parsing): more than MAX_TRACKS and it
  is refused at once; otherwise MediaInfo reads it in our process (3 ms; the judgement's
  own budget, intake.kernel.budget, still bounds it);
- every other file (Matroska, AVI, MPEG-TS, MP3 …), whose structure is not counted here,
  is read by MediaInfo in a child Python that limits itself (RLIMIT_AS, RLIMIT_CPU; set by
  the child, never by a preexec_fn, which is unsafe in the daemon's threads) and is
  killed at a timeout. That bounds any container whatever the trick, for about 0.1 s a
  file: not paid for the videos that pass.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from pymediainfo import MediaInfo

MAX_TRACKS = 100  # a real video has a few (video, audio, subtitles, timecode)
MEDIAINFO_SECONDS = 60  # a legitimate file takes well under a second
MEDIAINFO_MEMORY = 512 << 20  # address space of the child; a legitimate file needs ~50 MiB
MAX_BOXES = 100_000  # box headers read at one level before giving up the count
MAX_MOVIE_BOX = 64 << 20  # a two-hour video's sample tables are a few MiB; beyond, the child reads it

_CHILD = """\
import resource, sys
for which, wanted in ((resource.RLIMIT_AS, int(sys.argv[2])), (resource.RLIMIT_CPU, int(sys.argv[3]))):
    hard = resource.getrlimit(which)[1]  # never above a limit this process inherited
    limit = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    resource.setrlimit(which, (limit, limit))
from pymediainfo import MediaInfo
xml = MediaInfo.parse(sys.argv[1], output="OLDXML")
sys.stdout.buffer.write(xml.encode("utf-8", "replace"))
"""


class MediaError(Exception):
    """The file cannot be read as media; the message (Chinese) says why, for the sender."""


def media_info(path: Path) -> MediaInfo:
    """MediaInfo's report on ``path``; MediaError when it cannot be had within the limits."""
    movie = _iso_movie(path)
    if movie is not None:
        tracks, size = movie
        if tracks > MAX_TRACKS:
            raise MediaError(f"文件声明的音视频轨道超过 {MAX_TRACKS} 条，远超正常视频")
        if size <= MAX_MOVIE_BOX:
            return MediaInfo.parse(str(path))
    return _in_child(path)


def _in_child(path: Path) -> MediaInfo:
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD, os.fspath(path), str(MEDIAINFO_MEMORY), str(MEDIAINFO_SECONDS)],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=MEDIAINFO_SECONDS,
        )
    except subprocess.TimeoutExpired:
        raise MediaError(f"分析超过 {MEDIAINFO_SECONDS} 秒仍未完成") from None
    if proc.returncode < 0 or b"MemoryError" in proc.stderr:
        raise MediaError("分析时超出内存或时间限制")
    if proc.returncode != 0:
        raise MediaError("MediaInfo 无法解析该文件")
    if not proc.stdout.strip():
        raise MediaError("分析时超出内存限制")  # MediaInfo gives up silently when an allocation fails
    try:
        return MediaInfo(proc.stdout.decode("utf-8", "replace"))
    except Exception:  # ElementTree raises ParseError on output it cannot read
        raise MediaError("MediaInfo 的分析结果无法读取") from None


def iso_track_count(path: Path) -> int | None:
    """The number of tracks an MP4/MOV (ISO base media file) declares, counted up to
    MAX_TRACKS + 1; None when the file is not one or has no movie box."""
    movie = _iso_movie(path)
    return None if movie is None else movie[0]


def _iso_movie(path: Path) -> tuple[int, int] | None:
    """(tracks, size of the movie box) of an ISO base media file, else None."""
    try:
        with open(path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            for kind, start, end in _boxes(stream, 0, size):
                if kind not in _TOP_LEVEL:
                    return None  # not an ISO base media file: MediaInfo alone decides
                if kind == b"moov":
                    count = 0
                    for child, _start, _end in _boxes(stream, start, end):
                        count += child == b"trak"
                        if count > MAX_TRACKS:
                            break
                    return count, end - start
    except OSError:
        return None
    return None


_TOP_LEVEL = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid", b"meta",
              b"moof", b"mfra", b"sidx", b"styp", b"pdin", b"prft", b"emsg", b"junk", b"PICT"}


def _boxes(stream: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of the boxes between ``start`` and ``end``, headers only."""
    position = start
    for _ in range(MAX_BOXES):
        if position + 8 > end:
            return
        stream.seek(position)
        header = stream.read(8)
        if len(header) < 8:
            return
        size, kind = struct.unpack(">I4s", header)
        payload = position + 8
        if size == 1:
            large = stream.read(8)
            if len(large) < 8:
                return
            size = struct.unpack(">Q", large)[0]
            payload += 8
        elif size == 0:
            size = end - position  # to the end of the enclosing box
        if size < payload - position:
            return  # a broken header: MediaInfo says what it makes of the file
        yield kind, payload, min(position + size, end)
        position += size
