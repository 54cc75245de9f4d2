"""The hostile inputs of the bounded-input issue at full size: for each, the time,
the peak RSS (the largest of `intake check` and every process under it) and the exit
status of `intake check --json`, and the finding codes it gave.

    .venv/bin/python bench/hostile_bench.py [--only NAME]

Everything is built with real tools into a temporary folder (about 30 MB on disk).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
import zlib
from email.message import EmailMessage
from pathlib import Path

import openpyxl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intake.samples import make_document, make_question_bank  # noqa: E402


def in_project(folder: Path, name: str) -> Path:
    """A one-project package whose other files are fine: the hostile file is judged."""
    project = folder / "项目一"
    make_document(project / "说明.docx")
    return project / name


def sheet_far_corners(folder: Path) -> Path:
    path = in_project(folder, "题库.xlsx")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet["A1"], sheet["XFD1"], sheet["A1048576"] = "题型", "x", "y"
    book.save(path)
    return folder


def rewrite_member(source: Path, target: Path, member: str, data_chunks, extra: dict | None = None) -> None:
    """Copy an OOXML zip, writing one member from a (streamed, deflated) body and
    patching others by plain replacement (``extra``: member -> (old, new))."""
    extra = extra or {}
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            if info.filename == member:
                continue
            data = old.read(info.filename)
            if info.filename in extra:
                data = data.replace(*extra[info.filename])
            new.writestr(info, data)
        with new.open(zipfile.ZipInfo(member), "w", force_zip64=True) as out:
            for chunk in data_chunks():
                out.write(chunk)


def sheet_declared_rows(folder: Path) -> Path:
    template = folder / "template.xlsx"
    make_question_bank(template)
    target = in_project(folder, "题库.xlsx")

    def rows():
        yield b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
        for start in range(1, 1_048_577, 4096):
            yield b"".join(b'<row r="%d"/>' % n for n in range(start, min(start + 4096, 1_048_577)))
        yield b"</sheetData></worksheet>"

    rewrite_member(template, target, "xl/worksheets/sheet1.xml", rows)
    template.unlink()
    return folder


def sheet_shared_strings(folder: Path) -> Path:
    template = folder / "template.xlsx"
    make_question_bank(template)
    target = in_project(folder, "题库.xlsx")
    text = "报送" * 250  # 500 字 a string

    def strings():
        count = 330_000  # about 495 MB of XML
        yield b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="%d" uniqueCount="%d">' % (count, count)
        item = f"<si><t>{text}</t></si>".encode()
        for _ in range(count // 1000):
            yield item * 1000
        yield b"</sst>"

    relation = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"
    content = "application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"
    rewrite_member(template, target, "xl/sharedStrings.xml", strings, {
        "[Content_Types].xml": (b"</Types>", f'<Override PartName="/xl/sharedStrings.xml" '
                                              f'ContentType="{content}"/></Types>'.encode()),
        "xl/_rels/workbook.xml.rels": (b"</Relationships>", f'<Relationship Id="rIdS" Type="{relation}" '
                                                            f'Target="sharedStrings.xml"/></Relationships>'.encode()),
    })
    template.unlink()
    return folder


def docx_empty_paragraphs(folder: Path) -> Path:
    template = folder / "template.docx"
    make_document(template)
    target = folder / "项目一" / "说明.docx"
    target.parent.mkdir(parents=True, exist_ok=True)

    def body():
        yield (b'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
               b'wordprocessingml/2006/main"><w:body>')
        for _ in range(120 * 1024 // 6):  # 120 MiB of <w:p/>
            yield b"<w:p/>" * 1024
        yield b"</w:body></w:document>"

    rewrite_member(template, target, "word/document.xml", body)
    template.unlink()
    return folder


def mail(folder: Path, name: str, raw: bytes) -> Path:
    path = folder / f"{name}.eml"
    path.write_bytes(raw)
    return path


def simple(body: str, subject: str = "报送材料") -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "unit@163.com", "collect@163.com", subject
    message.set_content(body)
    return message


def links_repeated(folder: Path) -> Path:
    return mail(folder, "links", simple("http://a.cn/" * 90_000).as_bytes())


def baidu_links(folder: Path) -> Path:
    body = "\n".join(f"链接：https://pan.baidu.com/s/1Link{n:06d}x 提取码：ab{n % 100:02d}" for n in range(30_000))
    return mail(folder, "baidu", simple(body).as_bytes())


def mime_deep(folder: Path) -> Path:
    head = b"From: unit@163.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    parts = [b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (n, n) for n in range(3000)]
    tail = b"".join(b"\r\n--b%d--\r\n" % n for n in reversed(range(3000)))
    return mail(folder, "deep", head + b"".join(parts) + b"Content-Type: text/plain\r\n\r\nhi" + tail)


def forwarded_deep(folder: Path) -> Path:
    inner = simple("材料见附件")
    inner.add_attachment(b"PK\x05\x06" + bytes(18), maintype="application", subtype="zip", filename="项目材料.zip")
    for level in range(7):
        outer = simple(f"转发 {level}")
        outer.add_attachment(inner)
        inner = outer
    return mail(folder, "forwarded", inner.as_bytes())


def header_oddities(folder: Path) -> Path:
    raw = (b"From: unit@163.com\r\nSubject: =?utf-8\x00?B?5Lit?= \xe6\x8a\xa5\xe9\x80\x81\r\n"
           b"Message-ID: <a\rb@x>\r\nDate: Fri, 31 Dec 9999 23:59:59 -1200\r\n"
           b"Received: from a by b; Fri, 31 Dec 9999 23:59:59 -1200\r\n\r\nhello\r\n")
    return mail(folder, "headers", raw)


CASES = {
    "xlsx: cells A1, XFD1, A1048576": sheet_far_corners,
    "xlsx: 1,048,576 declared rows": sheet_declared_rows,
    "xlsx: 495 MB of shared strings": sheet_shared_strings,
    "docx: 120 MiB of empty paragraphs": docx_empty_paragraphs,
    "mail: http://a.cn/ x 90,000": links_repeated,
    "mail: 30,000 Baidu links": baidu_links,
    "mail: multipart 3,000 deep": mime_deep,
    "mail: forwarded 7 deep": forwarded_deep,
    "mail: NUL charset, year 9999, lone CR": header_oddities,
}


def measure(target: Path) -> tuple[float, int, int, list[str]]:
    """Wall time, peak RSS in MiB (of the whole process tree), exit status, codes."""
    probe = ("import resource, subprocess, sys, time; started = time.monotonic(); "
             "p = subprocess.run(sys.argv[1:], capture_output=True); "
             "print(time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
             "p.returncode); sys.stdout.flush(); sys.stdout.buffer.write(p.stdout)")
    proc = subprocess.run([sys.executable, "-c", probe, sys.executable, "-m", "intake.cli", "check", "--json",
                           str(target)], capture_output=True, cwd=ROOT, timeout=1800)
    first, _, rest = proc.stdout.partition(b"\n")
    seconds, rss_kib, status = first.split()
    try:
        codes = [f["code"] for f in json.loads(rest)["findings"]]
    except (ValueError, KeyError):
        codes = ["(no report)"]
    return float(seconds), int(rss_kib) // 1024, int(status), codes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="run the cases whose name contains this")
    args = parser.parse_args()
    print(f"{'input':40} {'seconds':>8} {'peak MiB':>9} {'exit':>5}  findings")
    with tempfile.TemporaryDirectory(prefix="intake-hostile-") as tmp:
        for index, (name, build) in enumerate(CASES.items()):
            if args.only and args.only not in name:
                continue
            folder = Path(tmp) / f"case{index}"
            folder.mkdir()
            target = build(folder)
            seconds, peak, status, codes = measure(target)
            print(f"{name:40} {seconds:8.1f} {peak:9d} {status:5d}  {', '.join(dict.fromkeys(codes))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
