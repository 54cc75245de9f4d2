"""The embedded demo: a Maildir of sample submissions the project builds with real tools.

good (a zip with a complete package, on time), late (another unit's complete package,
received after the deadline), broken (a third unit's zip, cut short), a Baidu link with its code, and an auto-reply.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path

from intake.sources import deliver_to_maildir
from intake.samples import make_form, make_project, make_scan, zip_folder


def _package_zip(folder: Path, unit: str, course: str) -> bytes:
    """A complete package of ``unit``: its own form (上报单位 is the unit) and one project.
    Each message carries its own unit's package, so what the demo shows (the unit a
    message is recorded under, a reply's wording) is what that sender would get."""
    staging = folder / unit
    make_form(staging / "附件5-报送表.docx", unit=unit, courses=[course])
    make_scan(staging / "附件5-报送表（盖章）.pdf")
    make_project(staging / f"01-{course}", course)
    archive = zip_folder(staging, folder / f"{unit}.zip", keep_name=True)
    shutil.rmtree(staging)
    return archive.read_bytes()


def _mail(sender: str, subject: str, body: str, attachment: tuple[str, bytes] | None = None,
          headers: dict | None = None) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "collect@163.com", subject
    message["Message-ID"] = f"<{abs(hash((sender, subject)))}@demo.example.cn>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if attachment:
        message.add_attachment(attachment[1], maintype="application", subtype="zip", filename=attachment[0])
    return message.as_bytes()


def build_demo_maildir(folder: Path) -> Path:
    folder = Path(folder)
    if (folder / "cur").is_dir():
        return folder
    work = folder.parent / "demo-build"
    work.mkdir(parents=True, exist_ok=True)
    hubei = _package_zip(work, "湖北省总工会", "班组安全隐患排查")
    hunan = _package_zip(work, "湖南省总工会", "设备点检小妙招")
    sichuan = _package_zip(work, "四川省总工会", "焊接工艺五小创新")
    shanghai_noon = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
    late = datetime(2024, 8, 1, 2, 0, tzinfo=timezone.utc)
    messages = [
        (_mail("湖北省总工会 <hbzgh@126.com>", "湖北省总工会“五小”路演项目报送", "请查收附件。",
               ("湖北省总工会报送材料.zip", hubei)), shanghai_noon),
        (_mail("湖南省总工会 <hnzgh@163.com>", "湖南省总工会路演项目（补报）", "请查收附件。",
               ("湖南省总工会报送材料.zip", hunan)), late),
        (_mail("四川省总工会 <sczgh@qq.com>", "四川省总工会路演项目", "附件为报送材料。",
               ("四川省总工会.zip", sichuan[: len(sichuan) // 3])), shanghai_noon),
        (_mail("广东省总工会 <gdzgh@163.com>", "广东省总工会路演项目网盘链接",
               "链接: https://pan.baidu.com/s/1DemoLinkAbCdEf 提取码: x7k2 复制这段内容后打开百度网盘手机App，操作更方便哦"),
         shanghai_noon),
        (_mail("江苏省总工会 <jszgh@163.com>", "自动回复：休假中", "我正在休假，8月5日返回。",
               headers={"Auto-Submitted": "auto-replied"}), shanghai_noon),
    ]
    for raw, received in messages:
        deliver_to_maildir(folder, raw, received)
    shutil.rmtree(work, ignore_errors=True)
    return folder
