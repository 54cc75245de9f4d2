"""Property test: mangled and truncated MIME never breaks the parser or `intake check`."""

from __future__ import annotations

import base64
import io
import re
import tempfile
import time
import zipfile
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.cli import main
from intake.parsers.messages import parse_message


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        bundle.writestr("项目/说明.txt", "导师简介：张三".encode())
    return buffer.getvalue()


def _seeds() -> list[bytes]:
    gbk_subject = "=?gb2312?B?" + base64.b64encode("朱镕基报价单".encode("gbk")).decode() + "?="
    multipart = (
        "From: =?gbk?B?" + base64.b64encode("湖北".encode("gbk")).decode() + "?= <a@163.com>\r\n"
        f"Subject: {gbk_subject}\r\nMIME-Version: 1.0\r\n"
        "Received: from x by mx.163.com; Tue, 30 Jul 2024 02:00:05 +0000\r\n"
        'Content-Type: multipart/mixed; boundary="BOUND"\r\n\r\n'
        "--BOUND\r\nContent-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes("链接: https://pan.baidu.com/s/1AbC 提取码: ab12".encode("gbk")).decode()
        + "\r\n--BOUND\r\nContent-Type: application/zip\r\n"
        "Content-Disposition: attachment;\r\n filename*0*=gbk''%B1%A8%CB%CD; filename*1*=.zip\r\n"
        "Content-Transfer-Encoding: Base64 \r\n\r\n" + base64.encodebytes(_zip()).decode()
        + "\r\n--BOUND\r\nContent-Type: message/rfc822\r\n\r\nFrom: b@qq.com\r\nSubject: inner\r\n\r\nhi\r\n"
        "--BOUND--\r\n"
    ).encode("latin-1", "replace")
    raw_header = "Subject: ".encode() + "关于报送的通知".encode("gbk") + b"\r\nFrom: c@126.com\r\n\r\nbody\r\n"
    html = ("From: d@qq.com\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
            '<p><a href="https://pan.baidu.com/s/1Xyz?pwd=q1w2">下载</a></p>').encode()
    return [multipart, raw_header, html]


@st.composite
def mangled(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(_seeds())))
    for _ in range(draw(st.integers(0, 6))):
        action = draw(st.sampled_from(["cut", "flip", "delete", "insert", "repeat"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if action == "cut":
            del data[at:]
        elif action == "flip":
            data[at] = draw(st.integers(0, 255))
        elif action == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        else:
            data[at:at] = data[at:at + draw(st.integers(1, 200))]
    return bytes(data)


_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+:")  # a header field name and its colon
_PLAIN_SUBJECT = re.compile(rb"subject:([ -~]*)", re.I)  # printable ASCII only


def intact_subject(raw: bytes) -> str | None:
    """The subject a mangled message must still show, or None: when every line of its
    header block up to its first Subject line is a well-formed header line, and that
    Subject is plain ASCII (no encoded word) not continued on the next line."""
    lines = re.split(rb"\r\n|\r|\n", raw)
    for index, line in enumerate(lines):
        if not _FIELD.match(line):
            return None  # the end of the header block, a continuation line or junk
        if not line.lower().startswith(b"subject:"):
            continue
        found = _PLAIN_SUBJECT.fullmatch(line)
        following = lines[index + 1] if index + 1 < len(lines) else b""
        if found is None or b"=?" in found.group(1) or following[:1] in (b" ", b"\t"):
            return None
        return found.group(1).decode("ascii").strip()
    return None


@settings(max_examples=150, deadline=timedelta(seconds=5), suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
def test_parser_never_raises(raw):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "att"
        parsed = parse_message(raw, folder)
        # a header is one line, trimmed, whatever its words decode to
        assert "\n" not in parsed.subject and parsed.subject == parsed.subject.strip()
        expected = intact_subject(raw)
        if expected is not None:
            assert parsed.subject == expected
        # every attachment is a file of its own in the given folder, of the size reported,
        # under a safe name the mail client's list shows
        for attachment in parsed.attachments:
            assert attachment.path.parent == folder and attachment.path.name == attachment.name
            assert attachment.path.is_file() and attachment.path.stat().st_size == attachment.size
            assert attachment.name and not attachment.name.startswith(".")
            assert not re.search(r"[\x00-\x1f\x7f/\\]", attachment.name)
            assert attachment.name in parsed.shown
        assert len({a.name.lower() for a in parsed.attachments}) == len(parsed.attachments)


@settings(max_examples=40, deadline=timedelta(seconds=30), suppress_health_check=[HealthCheck.too_slow])
@given(mangled())
def test_check_never_exits_2_on_bad_mail(raw):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.eml"
        path.write_bytes(raw)
        out, err = io.StringIO(), io.StringIO()
        started = time.monotonic()
        with redirect_stdout(out), redirect_stderr(err):
            status = main(["check", "--json", str(path)])
        assert status in (0, 1), err.getvalue()
        assert time.monotonic() - started < 30
