"""`intake export DIR` over submissions the daemon judged from real mail (real zips,
videos made by ffmpeg, Word and Excel files), on SQLite and PostgreSQL."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import os
import shutil
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select, update

from intake.export import export
from intake.export.names import MAX_NAME_BYTES, allocate, safe_name
from intake.export.tree import MANIFEST
from intake.samples import QB_HEADER, good_questions, make_document, make_form, make_question_bank, make_scan, \
    make_video, zip_folder
from intake.service import open_service, poll_and_process
from intake.sources import deliver_to_maildir
from intake.store import Project
from intake.units import import_units
from tests.conftest import daemon_settings, simple_mail
from tests.fakes import fake_netdisk  # noqa: F401  (the fixture)
from tests.fetching_support import COURSE, Daemon, build_package, share_files
from tests.fetching_support import mail as fetch_mail

ON_TIME = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return make_video(tmp_path_factory.mktemp("video") / "v.mp4", seconds=3)


def package(tmp_path: Path, video: Path, unit: str, courses: dict[str, int], tag: str) -> bytes:
    """A unit's zip: the form, its scan, and per course a folder with the video, the
    document and a bank of that many questions."""
    root = tmp_path / f"pkg-{tag}"
    make_form(root / "报送表.docx", unit=unit, courses=list(courses))
    make_scan(root / "报送表.pdf")
    for course, count in courses.items():
        folder = root / course
        folder.mkdir(parents=True)
        shutil.copyfile(video, folder / f"{course}.mp4")
        make_document(folder / f"{course}-说明.docx")
        rows = good_questions(count)
        rows[0][1] = f"{tag}:{course}:首题"  # tells the merged bank's rows apart
        make_question_bank(folder / f"{course}-题库.xlsx", rows=rows)
    return zip_folder(root, tmp_path / f"{tag}.zip", zipfile.ZIP_STORED).read_bytes()


def mail(n: int, sender: str, attachment: bytes) -> bytes:
    return simple_mail(n, attachments={f"报送{n}.zip": attachment}).replace(f"unit{n}@163.com".encode(), sender.encode())


def service_with(tmp_path: Path, database_url: str, messages: list[bytes]):
    folder = tmp_path / "Maildir"
    for index, raw in enumerate(messages):
        deliver_to_maildir(folder, raw, ON_TIME + timedelta(minutes=index))
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    units = tmp_path / "units.csv"
    units.write_text("单位,名额,邮箱\n湖北省总工会,3,hb@126.com\n湖南省总工会,1,hn@126.com\n北京市总工会,2,\n",
                     encoding="utf-8")
    import_units(service.Session, units)
    return service, folder


def run_export(service, target: Path):
    return export(service.Session, service.settings.data_dir, service.policy, target)


def rows_of(path: Path, sheet: str) -> list[tuple]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        return [tuple(row) for row in book[sheet].iter_rows(values_only=True)]
    finally:
        book.close()


def snapshot(target: Path) -> dict[str, tuple[int, int]]:
    """Every project file's inode and modification time."""
    return {str(p.relative_to(target)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(target.glob("*/*/*")) if p.is_file()}


def test_export_lays_out_indexes_and_updates(tmp_path, database_url, video):
    hubei = package(tmp_path, video, "湖北省总工会", {"课程甲": 20, "课程乙": 21}, "hb")
    # 湖南: one good project, one without a question bank (rejected: partial, not exported)
    hunan_root = tmp_path / "pkg-hn"
    make_form(hunan_root / "报送表.docx", unit="湖南省总工会", courses=["课程丙", "课程丁"])
    make_scan(hunan_root / "报送表.pdf")
    for course in ("课程丙", "课程丁"):
        (hunan_root / course).mkdir(parents=True)
        shutil.copyfile(video, hunan_root / course / f"{course}.mp4")
        make_document(hunan_root / course / "说明.docx")
    make_question_bank(hunan_root / "课程丙" / "题库.xlsx")
    hunan = zip_folder(hunan_root, tmp_path / "hn.zip", zipfile.ZIP_STORED).read_bytes()
    service, maildir = service_with(tmp_path, database_url, [mail(1, "hb@126.com", hubei), mail(2, "hn@126.com", hunan)])
    poll_and_process(service)
    target = tmp_path / "export"

    first = run_export(service, target)
    assert (first.projects, first.copied, first.problems) == (3, 9, [])
    course = target / "湖北省总工会" / "课程甲"
    assert sorted(p.name for p in course.iterdir()) == ["文档.docx", "视频.mp4", "题库.xlsx"]
    assert (course / "视频.mp4").read_bytes() == video.read_bytes()
    assert (course / "视频.mp4").stat().st_nlink == 1  # linked from the scratch copy, which is gone
    assert sorted(p.name for p in (target / "湖南省总工会").iterdir()) == ["课程丙"]  # 课程丁 was rejected

    bank = rows_of(target / "题库汇总.xlsx", "题库汇总")
    assert bank[0] == ("单位", "课程名称", *QB_HEADER)
    assert len(bank) == 1 + 20 + 21 + 20
    firsts = [row for row in bank if row[3] and row[3].endswith(":首题")]
    assert [(r[0], r[1], r[3]) for r in firsts] == [("湖北省总工会", "课程甲", "hb:课程甲:首题"),
                                                    ("湖北省总工会", "课程乙", "hb:课程乙:首题")]
    multiple = next(row for row in bank if row[2] == "多选")
    assert multiple[4:8] == ("安全帽", "手套", "雨伞", "护目镜") and multiple[10] == "ABD" and multiple[12] == "中级"

    index = rows_of(target / "项目索引.xlsx", "项目")
    assert index[0][:7] == ("单位", "课程名称", "完成人", "文件夹", "文件", "回执号", "收到时间（北京时间）")
    by_course = {row[1]: row for row in index[1:]}
    assert set(by_course) == {"课程甲", "课程乙", "课程丙"}
    jia = by_course["课程甲"]
    assert jia[0] == "湖北省总工会" and jia[2] == "李四" and jia[3] == "湖北省总工会/课程甲"
    assert jia[4] == "文档.docx、视频.mp4、题库.xlsx" and jia[5] == "WX2024-000001"
    assert jia[6] == datetime(2024, 7, 30, 12, 0)  # 04:00 UTC in Beijing time
    assert jia[7] == video.stat().st_size and jia[9] == (course / "题库.xlsx").stat().st_size
    assert 2.5 < jia[10] < 3.5  # the 3-second video

    summary = {row[0]: row[1:] for row in rows_of(target / "项目索引.xlsx", "单位汇总")[1:]}
    assert summary == {"湖北省总工会": (3, 2, "尚缺 1 个"), "湖南省总工会": (1, 1, "已报满"),
                       "北京市总工会": (2, 0, "尚缺 2 个")}

    # again, nothing changed: no file copied, same inodes and times (a killed export's scratch swept)
    (target / ".intake-export-work-1-dead" / "unpacked").mkdir(parents=True)
    before = snapshot(target)
    again = run_export(service, target)
    assert (again.projects, again.copied, again.unchanged, again.removed) == (3, 0, 9, 0)
    assert snapshot(target) == before and not (target / ".intake-export-work-1-dead").exists()

    # a file an expert overwrote is put back; the others stay as they were
    (course / "文档.docx").write_bytes(b"changed")
    mended = run_export(service, target)
    assert (mended.copied, mended.unchanged) == (1, 8)
    assert (course / "文档.docx").read_bytes() != b"changed"
    assert snapshot(target)["湖北省总工会/课程乙/视频.mp4"] == before["湖北省总工会/课程乙/视频.mp4"]

    # a folder where a file goes: that project is said, the others stay
    (course / "文档.docx").unlink()
    (course / "文档.docx").mkdir()
    blocked = run_export(service, target)
    assert len(blocked.problems) == 1 and "课程甲" in blocked.problems[0] and "写入失败" in blocked.problems[0]
    assert blocked.projects == 2 and blocked.removed == 0 and (course / "视频.mp4").is_file()  # its files stay
    assert "课程甲" not in {row[1] for row in rows_of(target / "项目索引.xlsx", "项目")}
    (course / "文档.docx").rmdir()
    assert run_export(service, target).problems == [] and (course / "文档.docx").is_file()

    # 湖北 sends 课程乙 again: the earlier one is superseded and leaves the tree
    deliver_to_maildir(maildir, mail(3, "hb@126.com", package(tmp_path, video, "湖北省总工会", {"课程乙": 25}, "hb2")),
                       ON_TIME + timedelta(hours=1))
    poll_and_process(service)
    later = run_export(service, target)
    assert later.projects == 3 and later.problems == []
    assert sorted(p.name for p in (target / "湖北省总工会").iterdir()) == ["课程乙", "课程甲"]
    index = {row[1]: row for row in rows_of(target / "项目索引.xlsx", "项目")[1:]}
    assert index["课程乙"][5] == "WX2024-000003" and index["课程甲"][5] == "WX2024-000001"
    bank = rows_of(target / "题库汇总.xlsx", "题库汇总")
    assert len(bank) == 1 + 20 + 25 + 20 and not any(r[3] == "hb:课程乙:首题" for r in bank)
    assert any(r[3] == "hb2:课程乙:首题" for r in bank)
    assert snapshot(target)["湖北省总工会/课程甲/视频.mp4"] == before["湖北省总工会/课程甲/视频.mp4"]

    from intake.daemon.staff import override

    # staff accept 湖南's whole message: its project without a question bank is exported too
    override(service.Session, "WX2024-000002", "accepted", "题库另行提交")
    accepted = run_export(service, target)
    assert accepted.projects == 4 and accepted.copied == 2
    assert sorted(p.name for p in (target / "湖南省总工会" / "课程丁").iterdir()) == ["文档.docx", "视频.mp4"]

    # and then reject it: its folders go, and so does the unit's
    override(service.Session, "WX2024-000002", "rejected", "材料不实")
    last = run_export(service, target)
    assert last.projects == 2 and last.removed == 5
    assert not (target / "湖南省总工会").exists()
    assert sorted(p.name for p in target.iterdir()) == sorted([MANIFEST, "湖北省总工会", "题库汇总.xlsx", "项目索引.xlsx"])


def test_hostile_course_names_and_planted_symlinks_stay_inside(tmp_path, database_url, video):
    courses = {"课程一": 20, "课程二": 20, "课程三": 20, "课程四": 20}
    service, _ = service_with(tmp_path, database_url, [mail(1, "hb@126.com", package(tmp_path, video, "湖北省总工会", courses, "x"))])
    poll_and_process(service)
    control = "\x00" if database_url.startswith("sqlite") else "\x07"  # PostgreSQL text holds no NUL
    hostile = {"课程一": "../../逃逸", "课程二": "甲/乙", "课程三": "甲_乙", "课程四": "长" * 300 + control + "尾"}
    with service.Session.begin() as session:
        for old, new in hostile.items():
            session.execute(update(Project).where(Project.name == old).values(name=new))
        session.execute(update(Project).values(unit_name="../湖北/省总工会"))  # the form's 上报单位 is the sender's too
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    target = tmp_path / "deep" / "export"
    target.parent.mkdir()

    done = run_export(service, target)
    assert done.projects == 4 and done.problems == []
    made = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_dir())
    unit = "湖北_省总工会"
    assert [p.name for p in target.iterdir() if p.is_dir()] == [unit]
    longest = next(m for m in made if m.startswith(f"{unit}/长"))
    assert len(longest.split("/")[1].encode()) <= MAX_NAME_BYTES and control not in longest
    assert f"{unit}/逃逸" in made and f"{unit}/甲_乙" in made
    with service.Session() as session:
        number = session.scalar(select(Project.id).where(Project.name == "甲_乙"))
    assert f"{unit}/甲_乙 (项目{number})" in made  # "甲/乙" came first and keeps the plain name
    assert not (tmp_path / "逃逸").exists() and not (tmp_path / "deep" / "逃逸").exists()

    # the same names on a second run (stable), whatever else is there
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_dir()) == made
    run_export(service, target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_dir()) == made

    # symlinks planted in DIR are never followed, written through or removed
    escape = target / unit / "逃逸"
    shutil.rmtree(escape)
    escape.symlink_to(outside, target_is_directory=True)
    current_link = target / unit / "甲_乙" / "视频.mp4"  # "甲/乙": still current
    current_link.unlink()
    current_link.symlink_to(outside / "keep.txt")
    stale_folder = target / unit / f"甲_乙 (项目{number})"
    stale_link = stale_folder / "文档.docx"
    stale_link.unlink()
    stale_link.symlink_to(outside / "keep.txt")
    with service.Session.begin() as session:  # "甲_乙" no longer stands: its files go
        session.execute(update(Project).where(Project.name == "甲_乙").values(verdict="rejected"))
    done = run_export(service, target)
    assert len(done.problems) == 1 and "逃逸" in done.problems[0]
    assert sorted(p.name for p in outside.iterdir()) == ["keep.txt"] and (outside / "keep.txt").read_text() == "mine"
    assert escape.is_symlink()  # not ours: left as it is, the project reported
    assert not current_link.is_symlink() and current_link.read_bytes() == video.read_bytes()  # the link replaced
    assert [p.name for p in stale_folder.iterdir()] == ["文档.docx"] and stale_link.is_symlink()  # the rest removed
    assert done.removed == 2


def test_safe_name_and_allocation():
    assert safe_name("../../x") == "x"
    assert safe_name("..") == "未命名" and safe_name("") == "未命名" and safe_name(None) == "未命名"
    assert safe_name("a\x00b/c\\d") == "ab_c_d"
    assert safe_name(" .隐藏 ") == "隐藏"
    assert safe_name("CON") == "未命名_CON"
    assert len(safe_name("长" * 400).encode()) <= MAX_NAME_BYTES
    ordinal = {"a": 1, "b": 2, "c": 3}
    names = allocate({"a": "X", "b": "X", "c": "x"}, {}, ordinal)
    assert names == {"a": "X", "b": "X (项目2)", "c": "x (项目3)"}  # case folds alike (a USB stick)
    # a name kept from last time stays while it is still wanted, whoever comes first now
    assert allocate({"b": "X", "c": "Y"}, {"b": "X (项目2)"}, ordinal) == {"b": "X (项目2)", "c": "Y"}
    assert allocate({"a": "X", "b": "X"}, {"a": "X", "b": "X (项目2)"}, ordinal) == {"a": "X", "b": "X (项目2)"}
    # the export's own workbooks beside the unit folders are never a unit's name
    assert allocate({"a": "项目索引.XLSX"}, {}, ordinal, ("题库汇总.xlsx", "项目索引.xlsx")) == {"a": "项目索引.XLSX (项目1)"}


def test_intake_export_over_a_fetched_baidu_share(fake_netdisk, tmp_path, database_url):
    """The command line, on a package the daemon fetched from a share (its files are
    kept in the work folder, the mail itself has no attachment)."""
    package_root = build_package(tmp_path / "package")
    share = fake_netdisk.add_share(share_files(package_root), "ab12")
    account = fake_netdisk.add_account()
    daemon = Daemon(tmp_path, database_url, fake_netdisk, INTAKE_NETDISK_ROUTE="cookie",
                    INTAKE_BAIDU_COOKIE=account.cookie)
    daemon.deliver(fetch_mail(1, f"链接: {share.url} 提取码: ab12"))
    daemon.poll()
    assert daemon.messages()[0].verdict == "accepted"
    target = tmp_path / "给专家"
    done = daemon.intake("export", str(target))
    assert done.returncode == 0, done.stderr
    assert "项目 1 个；复制文件 3 个，未变化 0 个，移除 0 个。" in done.stdout
    course = target / "湖北省总工会" / COURSE
    assert (course / "视频.mp4").read_bytes() == (package_root / f"01-{COURSE}" / f"{COURSE}.mp4").read_bytes()
    assert len(rows_of(target / "题库汇总.xlsx", "题库汇总")) == 1 + 20
    kept = next((tmp_path / "data" / "work").rglob(f"{COURSE}.mp4"))  # the daemon's fetched copy
    assert (course / "视频.mp4").stat().st_ino != kept.stat().st_ino and kept.stat().st_nlink == 1  # copied, not linked
    again = daemon.intake("export", str(target))
    assert again.returncode == 0 and "复制文件 0 个，未变化 3 个" in again.stdout
    # one export into a folder at a time
    held = os.open(target, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        busy = daemon.intake("export", str(target))
    finally:
        os.close(held)
    assert busy.returncode == 2 and "another export" in busy.stderr
    # the fetched video gone from the work folder: said, on every run, and exit 1
    receipt = daemon.messages()[0].receipt
    next((tmp_path / "data" / "work" / receipt / "fetched").rglob("*.mp4")).unlink()
    for _ in range(2):
        partly = daemon.intake("export", str(tmp_path / "另一份"))
        assert partly.returncode == 1 and f"未导出：湖北省总工会“{COURSE}”（回执号 {receipt}）：重新解包后未找到文件" in partly.stdout
    assert sorted(p.name for p in (tmp_path / "另一份" / "湖北省总工会" / COURSE).iterdir()) == ["文档.docx", "题库.xlsx"]
    (tmp_path / "a-file").write_text("x")
    refused = daemon.intake("export", str(tmp_path / "a-file"))
    assert refused.returncode == 2 and refused.stderr.strip().startswith("intake: export:")
    assert "Traceback" not in refused.stderr


def test_a_problem_is_one_plain_line_whatever_the_sender_named(tmp_path, database_url, video):
    service, _ = service_with(tmp_path, database_url, [mail(1, "hb@126.com", package(tmp_path, video, "湖北省总工会",
                                                                                     {"课程一": 20}, "p"))])
    poll_and_process(service)
    with service.Session.begin() as session:  # the form's course name is the sender's
        session.execute(update(Project).values(name="课程\x1b[2J\n伪造的一行"))
    next((tmp_path / "data" / "raw").rglob("*.eml")).unlink()  # the raw mail gone: the project cannot be exported
    done = run_export(service, tmp_path / "export")
    [problem] = done.problems
    assert "\n" not in problem and "\x1b" not in problem
    assert problem.startswith("湖北省总工会“课程\ufffd[2J 伪造的一行”（回执号 WX2024-000001）：原始邮件文件不存在")


@pytest.fixture
def read_only_folder(tmp_path):
    """A folder this user cannot write in: a read-only tmpfs for root (whom permissions do
    not stop), else a folder without write permission."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        yield folder
        folder.chmod(0o755)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("root here cannot mount a read-only tmpfs")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_a_folder_it_cannot_write_in_is_one_line_and_exit_2(tmp_path, video, read_only_folder):
    raw = mail(1, "hb@126.com", package(tmp_path, video, "湖北省总工会", {"课程一": 20}, "ro"))
    service, _ = service_with(tmp_path, f"sqlite:///{tmp_path / 'intake.sqlite3'}", [raw])
    poll_and_process(service)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")},
           "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "INTAKE_DATA_DIR": str(tmp_path / "data"),
           "INTAKE_DATABASE_URL": str(service.settings.database_url)}
    for target in (read_only_folder, read_only_folder / "new"):  # DIR there already, or to be made
        done = subprocess.run([sys.executable, "-m", "intake.cli", "export", str(target)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.startswith("intake: export: cannot ") and str(target) in done.stderr
        assert "internal error" not in done.stderr and len(done.stderr.splitlines()) == 1


def test_an_edited_manifest_never_leads_outside_dir(tmp_path, video):
    raw = mail(1, "hb@126.com", package(tmp_path, video, "湖北省总工会", {"课程一": 20}, "m"))
    service, _ = service_with(tmp_path, f"sqlite:///{tmp_path / 'intake.sqlite3'}", [raw])
    poll_and_process(service)
    target = tmp_path / "deep" / "export"
    target.parent.mkdir()
    assert run_export(service, target).problems == []
    outside = tmp_path / "keep.txt"
    outside.write_text("mine")
    manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    [entry] = manifest["projects"].values()
    meta = next(iter(entry["files"].values()))
    # entries of projects that no longer stand: the export would remove their files
    manifest["projects"]["gone/1"] = {**entry, "folder": ["..", ".."], "files": {"keep.txt": meta}}
    manifest["projects"]["gone/2"] = {**entry, "folder": ["湖北省总工会", "课程一"], "files": {"../../../keep.txt": meta}}
    manifest["projects"]["gone/3"] = {"folder": "not a list"}
    (target / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False), encoding="utf-8")
    done = run_export(service, target)
    assert done.problems == [] and done.projects == 1 and done.removed == 0
    assert outside.read_text() == "mine"
