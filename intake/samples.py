"""Real sample materials, made with real tools (ffmpeg, python-docx, openpyxl).

Used by ``intake sample`` (the README's first command) and by the tests, which
build every case from these instead of committing binaries.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import docx
import openpyxl
from PIL import Image
from PIL.TiffImagePlugin import IFDRational

QB_HEADER = ["题型", "题目内容", "答案A", "答案B", "答案C", "答案D", "答案E", "答案F",
             "正确答案", "解析", "试题难度", "来源"]


def make_video(path: Path, width: int = 1920, height: int = 1080, seconds: float = 2,
               rotate: int | None = None, audio: bool = False, rate: int = 1) -> Path:
    """A real H.264 video made by ffmpeg; the container follows the suffix (.mp4, .mov)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-y", "-v", "error", "-f", "lavfi",
           "-i", f"color=c=black:size={width}x{height}:rate={rate}:duration={seconds}"]
    if audio:
        cmd += ["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-c:a", "aac", "-b:a", "8k", "-shortest"]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "51", "-pix_fmt", "yuv420p"]
    target = path if rotate is None else path.with_name(f"unrotated-{path.name}")
    subprocess.run(cmd + [str(target)], check=True, stdin=subprocess.DEVNULL)
    if rotate is not None:
        subprocess.run(["ffmpeg", "-y", "-v", "error", "-i", str(target), "-c", "copy",
                        "-metadata:s:v:0", f"rotate={rotate}", str(path)],
                       check=True, stdin=subprocess.DEVNULL)
        target.unlink()
    return path


def intro_text(zi: int) -> str:
    """Exactly ``zi`` 字 of Chinese prose (CJK characters and full-width commas)."""
    unit = "本课程讲解班组安全生产中的隐患排查方法，"  # 20 字 with the comma
    text = (unit * (zi // len(unit) + 1))[:zi]
    return text


def make_document(path: Path, mentor: str | None = None, video: str | None = None,
                  layout: str = "heading") -> Path:
    """A .docx holding 导师简介 and 视频简介 in one of three layouts: heading, inline, table."""
    mentor = intro_text(120) if mentor is None else mentor
    video = intro_text(200) if video is None else video
    document = docx.Document()
    document.add_heading("“五小”成果路演项目说明", level=1)
    if layout == "heading":
        for label, text in (("导师简介", mentor), ("视频简介", video)):
            if text is not False:
                document.add_heading(label, level=2)
                document.add_paragraph(text)
    elif layout == "inline":
        for label, text in (("导师简介", mentor), ("视频简介", video)):
            if text is not False:
                document.add_paragraph(f"{label}：{text}")
    elif layout == "table":
        table = document.add_table(rows=0, cols=2)
        for label, text in (("课程名称", "班组安全"), ("导师简介", mentor), ("视频简介", video)):
            if text is not False:
                cells = table.add_row().cells
                cells[0].text, cells[1].text = label, text
    else:
        raise ValueError(layout)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def good_questions(count: int = 20) -> list[list[str]]:
    rows = []
    kinds = [
        ["单选", "题目{n}：安全帽应在何时佩戴？", "进入现场时", "下班后", "", "", "", "", "A", "", "初级", "原创"],
        ["多选", "题目{n}：哪些属于个人防护用品？", "安全帽", "手套", "雨伞", "护目镜", "", "", "ABD", "", "中级", "原创"],
        ["判断", "题目{n}：高处作业必须系安全带。", "", "", "", "", "", "", "对", "", "高级", "原创"],
    ]
    for n in range(1, count + 1):
        row = list(kinds[(n - 1) % 3])
        row[1] = row[1].format(n=n)
        rows.append(row)
    return rows


def make_question_bank(path: Path, rows: list[list[str]] | None = None,
                       header: list[str] | None = None, title: bool = True) -> Path:
    """An .xlsx in the 附件6 layout (a merged title row, then the header)."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "题库"
    header = QB_HEADER if header is None else header
    if title:
        sheet.append(["附件6：“五小”成果路演项目题库模板"])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(header))
    sheet.append(header)
    for row in good_questions() if rows is None else rows:
        sheet.append(row)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(str(path))
    return path


def make_form(path: Path, unit: str = "湖北省总工会", courses: list[str] | None = None) -> Path:
    """The report form (附件5) as .docx: 上报单位 line and a course table."""
    courses = ["班组安全隐患排查"] if courses is None else courses
    document = docx.Document()
    document.add_paragraph("附件5")
    document.add_heading("“五小”成果路演项目报送表", level=1)
    document.add_paragraph(f"上报单位（盖章）：{unit}    联系人：张三    联系电话：027-12345678")
    table = document.add_table(rows=1, cols=5)
    for cell, text in zip(table.rows[0].cells, ["序号", "课程名称", "提交单位", "完成人", "联系电话"]):
        cell.text = text
    for n, course in enumerate(courses, start=1):
        for cell, text in zip(table.add_row().cells, [str(n), course, unit, "李四", "13800000000"]):
            cell.text = text
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def make_scan(path: Path) -> Path:
    """A minimal valid one-page PDF standing in for the stamped scan."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def make_project(folder: Path, name: str, **video_options: Any) -> Path:
    """A complete, valid project folder: video, document, question bank."""
    folder = Path(folder)
    make_video(folder / f"{name}.mp4", **video_options)
    make_document(folder / f"{name}-说明.docx")
    make_question_bank(folder / f"{name}-题库.xlsx")
    return folder


Target = TypeVar("Target", Path, BinaryIO)


def zip_folder(folder: Path, target: Target, compression: int = zipfile.ZIP_DEFLATED,
               *, keep_name: bool = False) -> Target:
    """Zip every file under ``folder`` into ``target`` (a path, or a binary file such as
    ``io.BytesIO``, left open) and return ``target``.

    Files go in sorted path order, named relative to ``folder`` in POSIX form (with
    ``keep_name``, relative to its parent: every name starts with the folder's own name,
    as when a sender zips the folder itself). Only files: no directory entries.
    """
    folder = Path(folder)
    base = folder.parent if keep_name else folder
    with zipfile.ZipFile(target, "w", compression) as bundle:
        for file in sorted(folder.rglob("*")):
            if file.is_file():
                bundle.write(file, file.relative_to(base).as_posix())
    return target


def build_sample_package(directory: Path) -> Path:
    """A unit's package as senders make it: a zip with a form, its scan and two projects.

    The second project's video is 1280×720, so the sample shows a partial verdict.
    """
    directory = Path(directory)
    staging = directory / "湖北省总工会"
    if staging.exists():
        shutil.rmtree(staging)
    courses = ["班组安全隐患排查", "数控机床快速对刀法"]
    make_form(staging / "附件5-报送表.docx", courses=courses)
    make_scan(staging / "附件5-报送表（盖章）.pdf")
    make_project(staging / f"01-{courses[0]}", courses[0])
    make_project(staging / f"02-{courses[1]}", courses[1], width=1280, height=720)
    archive = zip_folder(staging, directory / "湖北省总工会.zip", keep_name=True)
    shutil.rmtree(staging)
    return archive


# ---------------------------------------------------------------- innovation results

def make_photo(path: Path, size: int = 1200, dpi: tuple[int, int] | None = (300, 300),
               exif_dpi: int | None = None, fmt: str = "JPEG") -> Path:
    """A photo of random noise (it does not compress: size in pixels sets size in bytes).

    1200 px is about 1.3 MB at quality 90, 800 px about 0.6 MB, 3800 px about 13 MB.
    ``dpi`` goes in the JFIF header; ``exif_dpi`` in EXIF only.
    """
    image = Image.frombytes("RGB", (size, size), os.urandom(size * size * 3))
    options: dict[str, object] = {}
    if dpi is not None:
        options["dpi"] = dpi
    if exif_dpi is not None:
        exif = Image.Exif()
        exif[0x011A] = exif[0x011B] = IFDRational(exif_dpi, 1)  # XResolution, YResolution
        exif[0x0128] = 2  # inches
        options["exif"] = exif
    if fmt == "JPEG":
        options["quality"] = 90
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, fmt, **options)
    return path


def make_audio(path: Path, container: str = "mp3", seconds: int = 3) -> Path:
    """A sine tone by ffmpeg; ``container`` decides the content, whatever the name says."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"] if container == "mp3" else ["-f", container]
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                    *codec, str(path)], check=True, stdin=subprocess.DEVNULL)
    return path


def make_declaration(path: Path, name: str = "数控机床快速对刀装置", summary: str | None = None,
                     background: str | None = None, completers: str = "张三、李四、王五",
                     category: str = "小革新", new_productivity: str | None = "是") -> Path:
    """The innovation declaration (附件3) as a Word table: label | value."""
    rows = [("成果名称", name), ("成果类别", category), ("主要完成人", completers),
            ("成果背景", background if background is not None else intro_text(90)),
            ("成果简介", summary if summary is not None else intro_text(400))]
    if new_productivity is not None:
        rows.append(("是否为新质生产力", new_productivity))
    document = docx.Document()
    document.add_heading("“五小”创新成果申报表", level=1)
    table = document.add_table(rows=0, cols=2)
    for label, value in rows:
        cells = table.add_row().cells
        cells[0].text, cells[1].text = label, value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    document.save(str(path))
    return path


def make_innovation_result(folder: Path, name: str = "成果") -> Path:
    """A complete, valid innovation result: 3 photos, video, question bank, MP3,
    declaration, authorisation letter and authenticity pledge (scans as PDF)."""
    folder = Path(folder)
    for n in range(1, 4):
        make_photo(folder / f"照片{n}.jpg")
    make_video(folder / f"{name}.mp4")
    make_question_bank(folder / f"{name}-题库.xlsx")
    make_audio(folder / f"{name}-解说.mp3")
    make_declaration(folder / f"{name}-申报表.docx")
    make_scan(folder / "授权书.pdf")
    make_scan(folder / "真实性承诺书.pdf")
    return folder
