"""intake.parsers.messages on mail as 163/126/QQ/Foxmail/Outlook/Coremail write it.

Messages are built here as raw bytes (or with the standard library's email package
where it can write the case), then parsed and compared with what a person reads.
"""

from __future__ import annotations

import base64
import email
import email.header
import email.policy
import os
import re
import struct
from email.message import EmailMessage
from pathlib import Path

import pytest

from intake.parsers.mail_depth import MAX_MIME_DEPTH
from intake.parsers.mail_large import MAX_NESTING
from intake.parsers.messages import TooDeep, decode_header, parse_message, safe_name
from tests.conftest import SHARED

BOUNDARY = "----=_Part_1_163"


def b64(data: bytes) -> str:
    return base64.encodebytes(data).decode("ascii")


def word(text: str, charset: str, encoding: str | None = None) -> str:
    """One RFC 2047 encoded word (base64)."""
    data = text.encode(encoding or charset)
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def mail(headers: list[str], parts: list[str] | None = None, body: str = "你好") -> bytes:
    """A raw message: given header lines, then a multipart body of raw parts."""
    lines = ["From: =?utf-8?B?5byg5LiJ?= <zhangsan@163.com>", "To: collect@163.com",
             "Message-ID: <abc@163.com>", "MIME-Version: 1.0"] + headers
    if parts is None:
        lines += ["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "", b64(body.encode())]
    else:
        lines += [f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"', ""]
        text_part = "\r\n".join(["Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: base64", "",
                                 b64(body.encode())])
        for part in [text_part] + parts:
            lines += [f"--{BOUNDARY}", part]
        lines.append(f"--{BOUNDARY}--")
    return "\r\n".join(lines).encode("utf-8", "surrogateescape") + b"\r\n"


def part(headers: list[str], payload: bytes, encoding: str = "base64") -> str:
    body = b64(payload) if encoding.strip().lower() in ("base64", "b") else payload.decode("latin-1")
    return "\r\n".join(headers + [f"Content-Transfer-Encoding: {encoding}", "", body])


def raw_header(text: str, codec: str = "gbk") -> str:
    """Raw 8-bit bytes in a header, as the parser sees them (surrogate-escaped)."""
    return text.encode(codec).decode("ascii", "surrogateescape")


def parse(raw: bytes, tmp_path: Path):
    return parse_message(raw, tmp_path / "att")


# ------------------------------------------------------------------ headers

def test_gb2312_label_on_gbk_only_characters(tmp_path):
    subject = "朱镕基同志的报价单（喆）"
    with pytest.raises(UnicodeEncodeError):
        subject.encode("gb2312")
    parsed = parse(mail([f"Subject: {word(subject, 'gb2312', 'gbk')}"]), tmp_path)
    assert parsed.subject == subject


@pytest.mark.parametrize("label", ["gbk", "cp936", "x-gbk", "GB2312"])
def test_gb_labels_decode_as_gb18030(tmp_path, label):
    parsed = parse(mail([f"Subject: {word('湖北省总工会报送', label, 'gbk')}"]), tmp_path)
    assert parsed.subject == "湖北省总工会报送"


def test_big5_label_on_hkscs_characters(tmp_path):
    text = "香港𨋢升降機"
    parsed = parse(mail([f"Subject: {word(text, 'big5', 'big5hkscs')}"]), tmp_path)
    assert parsed.subject == text


@pytest.mark.parametrize("codec", ["gbk", "utf-8"])
def test_raw_8bit_subject_is_recovered(tmp_path, codec):
    parsed = parse(mail([f"Subject: {raw_header('关于报送五小成果的通知', codec)}"]), tmp_path)
    assert parsed.subject == "关于报送五小成果的通知"


def test_encoded_words_split_inside_a_character(tmp_path):
    data = "五小成果路演".encode("utf-8")
    first, second = base64.b64encode(data[:4]).decode(), base64.b64encode(data[4:]).decode()
    parsed = parse(mail([f"Subject: =?utf-8?B?{first}?=\r\n =?utf-8?B?{second}?="]), tmp_path)
    assert parsed.subject == "五小成果路演"


def test_sender_address_and_name(tmp_path):
    raw = mail(["Subject: x"]).replace(b"From: =?utf-8?B?5byg5LiJ?= <zhangsan@163.com>",
                                         f"From: {word('湖北省总工会', 'gb2312', 'gbk')} <HBZGH@126.com>".encode())
    parsed = parse(raw, tmp_path)
    assert parsed.from_address == "hbzgh@126.com" and parsed.from_name == "湖北省总工会"


def test_decode_header_never_raises_on_junk():
    assert decode_header("=?unknown-charset?B?5L2g5aW9?=") == "你好"
    assert decode_header("=?gbk?Q?=C4=E3=BA=C3?= world") == "你好 world"
    # an undecodable word is not dropped: something stays visible, the text around it intact
    assert decode_header("=?utf-8?B?!!!notbase64?=")
    junk = decode_header("a =?utf-8?B?!!!notbase64?= b")
    assert junk.startswith("a ") and junk.endswith(" b") and junk[2:-2].strip()


# ------------------------------------------------------------------ attachment names

ZIP_BYTES = b"PK\x05\x06" + bytes(18)  # an empty zip


def attachment_names(raw: bytes, tmp_path: Path) -> list[str]:
    return [a.name for a in parse(raw, tmp_path).attachments]


def test_rfc2047_inside_quoted_filename(tmp_path):
    encoded = word("报送材料.zip", "gb18030")
    raw = mail(["Subject: x"], [part([
        f'Content-Type: application/octet-stream; name="{encoded}"',
        f'Content-Disposition: attachment; filename="{encoded}"'], ZIP_BYTES)])
    assert attachment_names(raw, tmp_path) == ["报送材料.zip"]


def test_rfc2231_continuations_with_gbk(tmp_path):
    raw = mail(["Subject: x"], [part([
        "Content-Type: application/zip",
        "Content-Disposition: attachment;\r\n filename*0*=gbk''%B1%A8%CB%CD;\r\n filename*1*=%B2%C4%C1%CF.zip"],
        ZIP_BYTES)])
    assert attachment_names(raw, tmp_path) == ["报送材料.zip"]


def test_name_on_content_type_only(tmp_path):
    raw = mail(["Subject: x"], [part([f'Content-Type: application/zip; name="{word("项目一.zip", "utf-8")}"'],
                                     ZIP_BYTES)])
    assert attachment_names(raw, tmp_path) == ["项目一.zip"]


def test_raw_8bit_gbk_filename(tmp_path):
    raw = mail(["Subject: x"], [part([
        "Content-Type: application/zip",
        f'Content-Disposition: attachment; filename="{raw_header("作品说明.docx")}"'], b"PK\x03\x04")])
    assert attachment_names(raw, tmp_path) == ["作品说明.docx"]


@pytest.mark.parametrize("encoding", ["Base64 ", "BASE64", " base64", "B"])
def test_transfer_encoding_spelled_oddly_still_decodes(tmp_path, encoding):
    payload = os.urandom(3000)
    raw = mail(["Subject: x"], [part(["Content-Type: application/octet-stream",
                                      'Content-Disposition: attachment; filename="a.bin"'], payload, encoding)])
    parsed = parse(raw, tmp_path)
    assert parsed.attachments[0].path.read_bytes() == payload


def test_large_attachment_is_streamed_byte_exact(tmp_path):
    payload = os.urandom(5 << 20)
    raw = mail(["Subject: x"], [part(["Content-Type: video/mp4", 'Content-Disposition: attachment; filename="v.mp4"'],
                                     payload)])
    attachment = parse(raw, tmp_path).attachments[0]
    assert attachment.size == len(payload) and attachment.path.read_bytes() == payload


def test_names_are_made_safe_for_the_file_system(tmp_path):
    raw = mail(["Subject: x"], [part(["Content-Type: application/zip",
                                      'Content-Disposition: attachment; filename="../../etc/passwd\x07.zip"'],
                                     ZIP_BYTES)])
    parsed = parse(raw, tmp_path)
    assert parsed.attachments[0].path.parent == tmp_path / "att"
    assert "/" not in parsed.attachments[0].name and "\x07" not in parsed.attachments[0].name
    assert safe_name("") == "附件" and len(safe_name("长" * 300 + ".docx").encode()) <= 205


def test_same_name_twice_is_kept_twice(tmp_path):
    parts = [part(["Content-Type: application/zip", 'Content-Disposition: attachment; filename="a.zip"'], ZIP_BYTES)] * 2
    assert attachment_names(mail(["Subject: x"], parts), tmp_path) == ["a.zip", "a (2).zip"]


# ------------------------------------------------------------------ structure

def test_forwarded_message_contributes_its_attachments(tmp_path):
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "unit@qq.com", "原始报送"
    inner.set_content("见附件")
    inner.add_attachment(ZIP_BYTES, maintype="application", subtype="zip", filename="项目材料.zip")
    outer = EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "fwd@163.com", "collect@163.com", "转发：原始报送"
    outer.set_content("转发")
    outer.add_attachment(inner)
    parsed = parse(outer.as_bytes(), tmp_path)
    assert [a.name for a in parsed.attachments] == ["项目材料.zip"]


def tnef(files: list[tuple[bytes, bytes]]) -> bytes:
    """winmail.dat per the TNEF format: signature, key, then level/id/type/length/data/checksum."""
    def attribute(level: int, attribute_id: int, kind: int, data: bytes) -> bytes:
        return struct.pack("<BHHI", level, attribute_id, kind, len(data)) + data + struct.pack("<H", sum(data) & 0xFFFF)

    out = struct.pack("<IH", 0x223E9F78, 0x0001) + attribute(1, 0x9006, 0x0008, struct.pack("<I", 0x00010000))
    for title, data in files:
        out += attribute(2, 0x9002, 0x0006, bytes(14))  # attachment rendering: starts one
        out += attribute(2, 0x8010, 0x0001, title + b"\x00")
        out += attribute(2, 0x800F, 0x0006, data)
    return out


def test_winmail_dat_is_unpacked(tmp_path):
    container = tnef([("报送表.docx".encode("gbk"), b"DOCX"), (b"video.mp4", b"MP4DATA")])
    raw = mail(["Subject: x"], [part(["Content-Type: application/ms-tnef; name=winmail.dat",
                                      'Content-Disposition: attachment; filename="winmail.dat"'], container)])
    parsed = parse(raw, tmp_path)
    assert [(a.name, a.path.read_bytes()) for a in parsed.attachments] == [("报送表.docx", b"DOCX"), ("video.mp4", b"MP4DATA")]


def test_small_inline_signature_image_is_not_material(tmp_path):
    raw = mail(["Subject: x"], [
        part(["Content-Type: image/png; name=logo.png", "Content-ID: <logo@163.com>", "Content-Disposition: inline"],
             b"\x89PNG" + os.urandom(2000)),
        part(["Content-Type: application/zip", 'Content-Disposition: attachment; filename="a.zip"'], ZIP_BYTES),
    ])
    assert attachment_names(raw, tmp_path) == ["a.zip"]


def test_photo_attached_as_attachment_is_kept(tmp_path):
    raw = mail(["Subject: x"], [part(["Content-Type: image/jpeg; name=scan.jpg",
                                      'Content-Disposition: attachment; filename="scan.jpg"'], os.urandom(2000))])
    assert attachment_names(raw, tmp_path) == ["scan.jpg"]


def test_html_body_and_text_body_are_both_read(tmp_path):
    message = EmailMessage()
    message["From"], message["Subject"] = "a@163.com", "x"
    message.set_content("纯文本")
    message.add_alternative("<p>超文本</p>", subtype="html")
    parsed = parse(message.as_bytes(), tmp_path)
    assert parsed.texts[0].strip() == "纯文本" and "超文本" in parsed.htmls[0]


# ------------------------------------------------------------------ kinds

@pytest.mark.parametrize("headers,sender", [
    (["Auto-Submitted: auto-replied"], None),
    (["Auto-Submitted: auto-generated"], None),
    (["X-Autoreply: yes"], None),
    (["X-Autorespond: on"], None),
    (["Precedence: bulk"], None),
    (["Precedence: junk"], None),
    (["Precedence: list"], None),
    (["Precedence: auto_reply"], None),
    (["List-Id: <union.lists.example>"], None),
    (["List-Unsubscribe: <mailto:leave@example.cn>"], None),
    (["Return-Path: <>"], None),
    (["X-Failed-Recipients: a@example.cn"], None),
    ([], "MAILER-DAEMON@163.com"),
    ([], "postmaster@qq.com"),
])
def test_automatic_mail_is_ignored(tmp_path, headers, sender):
    raw = mail(["Subject: 自动回复：已收到"] + headers)
    if sender:
        raw = raw.replace(b"zhangsan@163.com", sender.encode())
    assert parse(raw, tmp_path).ignored_reason


def test_delivery_and_read_reports_are_ignored(tmp_path):
    for report in ("delivery-status", "disposition-notification"):
        raw = (f"From: a@163.com\r\nSubject: 已读: 报送\r\nMIME-Version: 1.0\r\n"
               f'Content-Type: multipart/report; report-type={report}; boundary="b"\r\n\r\n'
               f"--b\r\nContent-Type: text/plain\r\n\r\nread\r\n--b--\r\n").encode()
        assert "multipart/report" in parse(raw, tmp_path).ignored_reason


@pytest.mark.parametrize("headers", [
    ["X-Auto-Response-Suppress: All"], ["Auto-Submitted: no"], ["Precedence: normal"], [],
])
def test_ordinary_mail_is_not_ignored(tmp_path, headers):
    assert parse(mail(["Subject: 报送"] + headers), tmp_path).ignored_reason is None


# ------------------------------------------------------------------ dates

def test_newest_received_wins_over_date(tmp_path):
    raw = mail(["Subject: x",
                "Received: from smtp.qq.com by mx.163.com; Wed, 31 Jul 2024 16:30:00 +0000",
                "Received: from [10.0.0.1] by smtp.qq.com; Wed, 31 Jul 2024 15:59:00 +0000",
                "Date: Wed, 31 Jul 2024 10:00:00 +0800"])
    parsed = parse(raw, tmp_path)
    assert parsed.received.isoformat() == "2024-07-31T16:30:00+00:00"
    assert parsed.date.isoformat() == "2024-07-31T10:00:00+08:00"


def test_unreadable_received_falls_through(tmp_path):
    raw = mail(["Subject: x", "Received: from x by y; not a date",
                "Received: from a by b; Tue, 30 Jul 2024 08:00:00 +0800"])
    assert parse(raw, tmp_path).received.isoformat() == "2024-07-30T08:00:00+08:00"


# ------------------------------------------------------------------ real-world mail

def stdlib_subject(raw: bytes) -> str | None:
    """The Subject as the standard library decodes it, white space runs made one space;
    None where it cannot decode it (it raises, or shows replacement characters)."""
    try:
        value = email.message_from_bytes(raw, policy=email.policy.default)["subject"]
        text = "" if value is None else str(value)
    except Exception:
        try:
            value = email.message_from_bytes(raw)["subject"]
            text = "" if value is None else str(email.header.make_header(email.header.decode_header(value)))
        except Exception:
            return None
    return None if "\ufffd" in text else " ".join(text.split())


def stdlib_leaves(raw: bytes) -> list[bytes]:
    """The decoded bodies of every leaf part, as either standard-library policy splits the
    message (compat32 reads some unquoted boundaries that the default policy does not)."""
    leaves = []
    for policy in (email.policy.default, email.policy.compat32):
        for leaf in email.message_from_bytes(raw, policy=policy).walk():
            if not leaf.is_multipart():
                try:
                    data = leaf.get_payload(decode=True)
                except Exception:
                    continue
                if isinstance(data, bytes):
                    leaves.append(data)
    return leaves


def stdlib_sender(raw: bytes) -> str | None:
    """The From address when the standard library reads exactly one plain one."""
    try:
        value = email.message_from_bytes(raw, policy=email.policy.default)["from"]
        addresses = [a.addr_spec for a in value.addresses] if value is not None else []
    except Exception:
        return None
    if len(addresses) == 1 and re.fullmatch(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+", addresses[0]):
        return addresses[0].lower()
    return None


def test_every_imap_tools_message_parses(tmp_path):
    folder = SHARED / "fixtures" / "imap_tools"
    if not folder.is_dir():
        pytest.skip(f"shared fixtures absent: {folder}")
    files = sorted(folder.rglob("*.eml"))
    assert len(files) > 100
    subjects = senders = attachments = 0
    for number, path in enumerate(files):
        raw = path.read_bytes()
        where = tmp_path / str(number)
        parsed = parse_message(raw, where)
        expected = stdlib_subject(raw)
        if expected is not None:  # the header unfolded: compared with white space runs as one space
            assert " ".join(parsed.subject.split()) == expected, path.name
            subjects += 1
        if parsed.from_address is not None:
            assert parsed.from_address.count("@") == 1, path.name
            assert not re.search(r"\s", parsed.from_address), path.name
            assert parsed.from_address == parsed.from_address.lower(), path.name
        address = stdlib_sender(raw)
        if address is not None:
            assert parsed.from_address == address, path.name
            senders += 1
        leaves = stdlib_leaves(raw) if parsed.attachments else []
        for attachment in parsed.attachments:
            assert attachment.path.parent == where and attachment.path.name == attachment.name, path.name
            data = attachment.path.read_bytes()
            assert len(data) == attachment.size, (path.name, attachment.name)
            assert data in leaves, (path.name, attachment.name)  # byte for byte, the part's decoded body
            assert attachment.name in parsed.shown, (path.name, attachment.name)
            attachments += 1
        assert len({a.name.lower() for a in parsed.attachments}) == len(parsed.attachments), path.name
    # the comparisons above ran on most of the corpus, not on a handful of messages
    assert subjects > 100 and senders > 90 and attachments > 20, (subjects, senders, attachments)


# ------------------------------------------------------------------ found in review

@pytest.mark.parametrize("charset", ["gbk", "gb2312", None])
def test_8bit_gb_body_is_decoded_once(tmp_path, charset):
    label = f"; charset={charset}" if charset else ""
    raw = (f"From: a@163.com\r\nSubject: x\r\nContent-Type: text/plain{label}\r\n"
           "Content-Transfer-Encoding: 8bit\r\n\r\n").encode() + "材料已发送请查收，提取码：ab12".encode("gbk")
    assert parse(raw, tmp_path).texts == ["材料已发送请查收，提取码：ab12"]


def test_binary_attachment_is_byte_exact(tmp_path):
    payload = bytes(range(256)) * 10
    raw = (b"From: a@163.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
           b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n--B\r\n'
           b'Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="a.bin"\r\n'
           b"Content-Transfer-Encoding: binary\r\n\r\n" + payload.replace(b"\r", b"").replace(b"\n", b"")
           + b"\r\n--B--\r\n")
    attachment = parse(raw, tmp_path).attachments[0]
    assert attachment.path.read_bytes() == payload.replace(b"\r", b"").replace(b"\n", b"")


@pytest.mark.parametrize("label", ["base64", "hex", "zlib", "rot13", "punycode", "idna"])
def test_codec_labels_that_are_not_text_encodings(tmp_path, label):
    raw = (f"From: a@163.com\r\nSubject: =?{label}?B?5byg5LiJ?=\r\n"
           f"Content-Type: text/plain; charset={label}\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode("张三".encode()).decode()).encode()
    parsed = parse(raw, tmp_path)
    assert parsed.subject == "张三" and parsed.texts == ["张三"]


def test_encoded_display_name_with_a_comma(tmp_path):
    raw = mail(["Subject: x"]).replace(
        b"From: =?utf-8?B?5byg5LiJ?= <zhangsan@163.com>",
        f"From: {word('湖北省总工会,劳动经济部', 'utf-8')} <hb@126.com>".encode())
    parsed = parse(raw, tmp_path)
    assert (parsed.from_address, parsed.from_name) == ("hb@126.com", "湖北省总工会,劳动经济部")


def test_base64_encoded_forwarded_message(tmp_path):
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "unit@qq.com", "原始"
    inner.set_content("见附件")
    inner.add_attachment(ZIP_BYTES, maintype="application", subtype="zip", filename="项目.zip")
    raw = mail(["Subject: 转发"], [part(["Content-Type: message/rfc822", 'Content-Disposition: attachment; filename="fw.eml"'],
                                       inner.as_bytes())])
    parsed = parse(raw, tmp_path)
    assert [a.name for a in parsed.attachments] == ["项目.zip"]
    assert parsed.shown == ["fw.eml", "项目.zip"]


def test_apple_mail_inline_image_with_a_name_is_kept(tmp_path):
    raw = mail(["Subject: x"], [part(["Content-Type: image/jpeg; name=scan.jpg",
                                      'Content-Disposition: inline; filename="scan.jpg"'], os.urandom(5000))])
    assert attachment_names(raw, tmp_path) == ["scan.jpg"]


def test_x_autoreply_no_is_not_an_auto_reply(tmp_path):
    assert parse(mail(["Subject: 报送", "X-Autoreply: no"]), tmp_path).ignored_reason is None


# ------------------------------------------------------------------ large messages

def test_large_attachment_inside_a_forwarded_message(tmp_path):
    payload = os.urandom(3 << 20)
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "unit@qq.com", "原始"
    inner.set_content("见附件")
    inner.add_attachment(payload, maintype="application", subtype="zip", filename="大文件.zip")
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "fwd@163.com", "转发"
    outer.set_content("转发")
    outer.add_attachment(inner)
    parsed = parse(outer.as_bytes(), tmp_path)
    assert [a.name for a in parsed.attachments] == ["大文件.zip"]
    assert parsed.attachments[0].path.read_bytes() == payload


def test_large_text_body_is_still_read(tmp_path):
    body = "链接: https://pan.baidu.com/s/1Big 提取码: ab12\n" + "填充文字。" * 200_000
    parsed = parse(mail(["Subject: x"], body=body), tmp_path)
    assert parsed.texts[0].startswith("链接: https://pan.baidu.com/s/1Big")


def test_large_message_truncated_mid_attachment(tmp_path):
    payload = os.urandom(3 << 20)
    raw = mail(["Subject: x"], [part(["Content-Type: application/zip", 'Content-Disposition: attachment; filename="a.zip"'],
                                     payload)])
    parsed = parse(raw[: len(raw) // 2], tmp_path)  # no closing boundary, half the data
    assert [a.name for a in parsed.attachments] == ["a.zip"]
    assert 0 < parsed.attachments[0].size < len(payload)


def test_a_forged_body_marker_is_ignored(tmp_path):
    raw = mail(["Subject: x", "X-Intake-Body-000000000000: 0"], [
        part(["Content-Type: application/zip", 'Content-Disposition: attachment; filename="big.zip"'],
             os.urandom(2 << 20)),
        part(["Content-Type: application/zip", "X-Intake-Body-000000000000: 0",
              'Content-Disposition: attachment; filename="small.zip"'], ZIP_BYTES),
    ])
    parsed = parse(raw, tmp_path)
    sizes = {a.name: a.size for a in parsed.attachments}
    assert sizes == {"big.zip": 2 << 20, "small.zip": len(ZIP_BYTES)}


def test_a_nul_in_a_charset_label_is_not_a_crash(tmp_path):
    raw = (b"From: a@163.com\r\nSubject: =?\x00tf-8?B?5Lit?=\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=\"\x00tf-8\"\r\n\r\n\xe4\xb8\xad\xe6\x96\x87\r\n")
    parsed = parse(raw, tmp_path)
    assert "中文" in "".join(parsed.texts) and parsed.subject == "中"


def test_unstorable_characters_in_headers_become_replacement_characters():
    # UTF-7 can decode to a lone surrogate; a NUL cannot go into PostgreSQL or a reply
    assert decode_header("=?utf-7?Q?+2D0-?= 报送") == "\ufffd 报送"
    assert decode_header("=?utf-8?B?YQBi?=") == "a\ufffdb"


@pytest.mark.parametrize("froms, expected", [
    ([b"Team: a@163.com;"], None),  # a group is not the one who sent it
    ([b"a@163.com", b"b@126.com"], None),  # two From fields: RFC 5322 allows exactly one
    ([b"=?utf-8?b?aGJ6Z2hAMTI2LmNvbQ==?= <attacker@evil.example>"], "attacker@evil.example"),
    ([b'"x@y.cn" <Real@163.com>'], "real@163.com"),
])
def test_the_sender_is_the_one_mailbox_of_the_one_from_field(tmp_path, froms, expected):
    raw = mail(["Subject: x"])
    start = raw.index(b"From: ")
    end = raw.index(b"\n", start) + 1
    raw = raw[:start] + b"".join(b"From: " + value + b"\r\n" for value in froms) + raw[end:]
    assert parse(raw, tmp_path).from_address == expected


def test_control_characters_in_headers_cannot_reach_a_terminal_or_a_reply():
    assert decode_header("报送材料\rBcc: x@evil.example") == "报送材料\ufffdBcc: x@evil.example"
    assert decode_header("a, =?utf-8?q?=0D=1B[2KWX2024-000009?=") == "a, \ufffd\ufffd[2KWX2024-000009"
    assert decode_header("folded\r\n  line\tkept") == "folded line\tkept"


# ------------------------------------------------------------------ hostile structure: bounded depth

def nested(depth: int, leaf: str, kind: str = "multipart") -> str:
    """Parts nested ``depth`` containers deep around ``leaf``, as raw text (the standard
    library's generator recurses once per level too, so it cannot write 3,000 of them)."""
    opening, closing = [], []
    for level in range(depth):
        if kind == "multipart":
            opening.append(f'Content-Type: multipart/mixed; boundary="level{level}"\r\n\r\n--level{level}\r\n')
            closing.insert(0, f"\r\n--level{level}--\r\n")
        else:
            opening.append("Content-Type: message/rfc822\r\n\r\nFrom: fwd@163.com\r\nSubject: fwd\r\n")
    return "".join(opening) + leaf + "".join(closing)


DEEP_ZIP = part(['Content-Type: application/zip; name="深处.zip"',
                 'Content-Disposition: attachment; filename="深处.zip"'], ZIP_BYTES)


def deep_mail(depth: int, kind: str = "multipart") -> bytes:
    """A message whose top level carries a text and 项目材料.zip, beside a branch ``depth`` deep."""
    top = part(['Content-Type: application/zip; name="项目材料.zip"',
                'Content-Disposition: attachment; filename="项目材料.zip"'], ZIP_BYTES)
    return mail(["Subject: deep"], [top, nested(depth, DEEP_ZIP, kind)])


def test_mime_nested_to_the_bound_is_read_whole(tmp_path):
    parsed = parse(deep_mail(MAX_MIME_DEPTH - 1), tmp_path)  # the message's own multipart is one level
    assert [a.name for a in parsed.attachments] == ["项目材料.zip", "深处.zip"] and parsed.too_deep == []


@pytest.mark.parametrize("kind", ["multipart", "message"])
def test_mime_nested_3000_deep_is_cut_at_the_bound_and_named(tmp_path, kind):
    # the standard library's parser raised RecursionError here (and mail-parser before it)
    parsed = parse(deep_mail(3000, kind), tmp_path)
    assert [a.name for a in parsed.attachments] == ["项目材料.zip"]  # what is shallow is still read
    assert parsed.texts == ["你好"]
    assert (parsed.too_deep[0].what, parsed.too_deep[0].depth) == ("mime", 3001)


def test_mime_one_level_past_the_bound_loses_only_the_deepest_part(tmp_path):
    parsed = parse(deep_mail(MAX_MIME_DEPTH), tmp_path)
    assert [a.name for a in parsed.attachments] == ["项目材料.zip"]
    assert (parsed.too_deep[0].depth, parsed.too_deep[0].limit) == (MAX_MIME_DEPTH + 1, MAX_MIME_DEPTH)


def forwarded_chain(levels: int) -> bytes:
    """项目材料.zip forwarded ``levels`` times, each time as an attached message (the stdlib writes it)."""
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "unit@qq.com", "原始报送"
    inner.set_content("见附件")
    inner.add_attachment(ZIP_BYTES, maintype="application", subtype="zip", filename="项目材料.zip")
    for level in range(levels):
        outer = EmailMessage()
        outer["From"], outer["To"], outer["Subject"] = "fwd@163.com", "collect@163.com", f"转发 {level}"
        outer.set_content("转发")
        outer.add_attachment(inner)
        inner = outer
    return inner.as_bytes()


def test_attachments_forwarded_past_the_bound_are_named_not_dropped(tmp_path):
    assert [a.name for a in parse(forwarded_chain(MAX_NESTING), tmp_path / "a").attachments] == ["项目材料.zip"]
    parsed = parse(forwarded_chain(MAX_NESTING + 1), tmp_path / "b")
    assert parsed.attachments == []
    assert parsed.too_deep == [TooDeep("forwarded", MAX_NESTING + 1, MAX_NESTING, ("项目材料.zip",))]


# ------------------------------------------------------------------ hostile headers

@pytest.mark.parametrize("date", ["Fri, 31 Dec 9999 23:59:59 -1200", "Fri, 31 Dec 9999 20:00:00 +0000",
                                  "Sat, 1 Jan 2000 00:00:00 +9959"])
def test_dates_datetime_cannot_hold_are_missing(tmp_path, date):
    # 9999-12-31 23:59:59 -12:00 is past year 9999 in UTC: converting it overflowed in is_late
    parsed = parse(mail(["Subject: x", f"Received: from a by b; {date}", f"Date: {date}"]), tmp_path)
    assert parsed.date is None and parsed.received is None


def test_line_breaks_python_knows_are_replaced_in_headers():
    # NEL, LS and PS end a line for str.splitlines(): the email package refuses a header holding one
    assert decode_header("=?utf-8?b?" + base64.b64encode("<a\u2028b\x85c\u2029@x>".encode()).decode() + "?=") == \
        "<a\ufffdb\ufffdc\ufffd@x>"


@pytest.mark.parametrize("charset", ["\x00tf-8", "utf-8\x00", "idna"])
@pytest.mark.parametrize("large", [False, True])
def test_rfc2231_charsets_the_stdlib_cannot_use_do_not_stop_the_parse(tmp_path, charset, large):
    # boundary*= with such a charset raised from inside feedparser (ValueError, UnicodeError);
    # as for an unknown label, the value is taken as written
    attachment = part(['Content-Type: application/octet-stream; name="材料.bin"'], bytes(2 << 20 if large else 100))
    text = "\r\n".join([f"Content-Type: text/plain; charset*={charset}''utf-8", "", "你好"])
    raw = mail(["Subject: x"], [text, attachment]).replace(
        f'boundary="{BOUNDARY}"'.encode(), f"boundary*={charset}''{BOUNDARY}".encode(), 1)
    parsed = parse(raw, tmp_path)
    assert parsed.texts[1:] == ["你好"] and [a.name for a in parsed.attachments] == ["材料.bin"]


def test_hostile_headers_cost_the_ledger_linear_time():
    # the ledger reads headers in the daemon itself, outside the judging budget: a From of
    # a million "<" and a Subject of 320,000 encoded words were quadratic (minutes)
    import subprocess
    import sys

    probe = ("from intake.daemon.ledger import _headers; "
             "_headers(b'From: ' + b'<' * 1_000_000 + b'\\r\\n\\r\\nx'); "
             "_headers(b'Subject: ' + b'=?utf-8?b?QUFB?= ' * 320_000 + b'\\r\\n\\r\\nx'); "
             "from intake.parsers.mail_headers import decode_words; "
             "assert decode_words('=?utf-8?b?QUFB?= ' * 200_000).strip() == 'AAA' * 200_000")
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=60)
