"""intake.core: whole packages judged end to end, verdicts decided once."""

from __future__ import annotations

import os
import subprocess
import zipfile

import pytest

from intake.samples import build_sample_package, make_document, make_form, make_project, make_question_bank, make_scan, make_video, zip_folder
from tests.conftest import codes, judge


def complete(tmp_path, courses=("课程甲",)):
    root = tmp_path / "pkg"
    for course in courses:
        make_project(root / course, "材料")
    make_form(root / "报送表.docx", courses=list(courses))
    make_scan(root / "报送表.pdf")
    return root


def test_complete_package_is_accepted(tmp_path):
    report = judge(complete(tmp_path, ("课程甲", "课程乙")))
    assert report["verdict"] == "accepted" and report["findings"] == []
    assert [p["verdict"] for p in report["projects"]] == ["accepted", "accepted"]
    files = report["projects"][0]["files"]
    assert files == {"video": "课程甲/材料.mp4", "document": "课程甲/材料-说明.docx", "question_bank": "课程甲/材料-题库.xlsx"}


def test_one_bad_project_makes_partial(tmp_path):
    root = complete(tmp_path, ("课程甲", "课程乙"))
    make_video(root / "课程乙" / "材料.mp4", 1280, 720)
    report = judge(root)
    assert report["verdict"] == "partial"
    assert {p["name"]: p["verdict"] for p in report["projects"]} == {"课程甲": "accepted", "课程乙": "rejected"}
    assert [(f["code"], f["project"], f["path"]) for f in report["findings"]] == [
        ("video.resolution", "课程乙", "课程乙/材料.mp4")]


def test_every_reason_is_reported_at_once(tmp_path):
    root = complete(tmp_path)
    make_video(root / "课程甲" / "材料.mp4", 1080, 1920, seconds=301)
    make_document(root / "课程甲" / "材料-说明.docx", mentor=False)
    make_question_bank(root / "课程甲" / "材料-题库.xlsx", rows=[])
    report = judge(root)
    assert report["verdict"] == "rejected"
    assert sorted(codes(report)) == [
        "document.mentor_intro_missing", "question_bank.too_few", "video.resolution", "video.too_long"]


@pytest.mark.parametrize("missing,code", [
    ("材料.mp4", "video.missing"), ("材料-说明.docx", "document.missing"), ("材料-题库.xlsx", "question_bank.missing"),
])
def test_missing_materials(tmp_path, missing, code):
    root = complete(tmp_path)
    (root / "课程甲" / missing).unlink()
    report = judge(root)
    assert codes(report) == [code] and report["verdict"] == "rejected"
    assert report["findings"][0]["project"] == "课程甲"


@pytest.mark.parametrize("received_at,late", [
    ("2024-07-31T15:59:59Z", False),          # 23:59:59 in Beijing: on time
    ("2024-07-31T23:59:59+08:00", False),
    ("2024-07-31T16:00:00Z", True),
    ("2024-07-31T16:30:00Z", True),           # the example
    ("2024-08-01T00:00:00+08:00", True),
])
def test_deadline_compares_instants(tmp_path, received_at, late):
    report = judge(complete(tmp_path), received_at=received_at)
    assert ("deadline.late" in codes(report)) is late
    assert report["verdict"] == ("rejected" if late else "accepted")
    if late:
        assert all(p["verdict"] == "rejected" for p in report["projects"])


def test_received_at_is_reported_in_beijing_time(tmp_path):
    report = judge(complete(tmp_path), received_at="2024-07-30T04:00:00Z")
    assert report["received_at"] == "2024-07-30T12:00:00+08:00"


def test_empty_folder_is_package_empty(tmp_path):
    (tmp_path / "pkg").mkdir()
    report = judge(tmp_path / "pkg")
    assert codes(report) == ["package.empty"] and report["verdict"] == "rejected"


def test_files_but_no_project(tmp_path):
    root = tmp_path / "pkg"
    make_form(root / "报送表.docx")
    make_scan(root / "报送表.pdf")
    report = judge(root)
    assert "package.no_projects" in codes(report) and report["verdict"] == "rejected"


def test_encrypted_package_is_rejected_without_judging_absent_contents(tmp_path):
    root = complete(tmp_path)
    archive = tmp_path / "包.zip"
    subprocess.run(["7zz", "a", "-bd", "-tzip", "-psecret", str(archive), str(root)], check=True, capture_output=True)
    report = judge(archive)
    assert codes(report) == ["archive.encrypted"] and report["verdict"] == "rejected"
    assert report["projects"] == []


def test_unsafe_entry_rejects_the_whole_message(tmp_path):
    root = complete(tmp_path)
    archive = zip_folder(root, tmp_path / "包.zip", zipfile.ZIP_STORED, keep_name=True)
    with zipfile.ZipFile(archive, "a") as bundle:
        bundle.writestr(zipfile.ZipInfo("../evil.sh"), b"rm -rf /")
    report = judge(archive)
    assert "archive.unsafe_path" in codes(report) and report["verdict"] == "rejected"


def test_sample_package_is_partial_with_one_resolution_finding(tmp_path):
    report = judge(build_sample_package(tmp_path))
    assert report["verdict"] == "partial"
    assert codes(report) == ["video.resolution"]
    assert report["unit"] == "湖北省总工会"


def test_gbk_named_package_reports_chinese_paths(tmp_path):
    from tests.test_archives import gbk_zip

    root = complete(tmp_path)
    contents = {file.relative_to(tmp_path).as_posix(): file.read_bytes() for file in root.rglob("*") if file.is_file()}
    report = judge(gbk_zip(tmp_path / "包.zip", contents))
    assert report["verdict"] == "accepted", report["findings"]
    assert report["projects"][0]["files"]["video"] == "pkg/课程甲/材料.mp4"


# ------------------------------------------------------------------ email messages

def message_with(tmp_path, files: dict[str, bytes] | None = None, body: str = "请查收", headers=None, html=None) -> bytes:
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"] = "湖北省总工会 <hbzgh@126.com>"
    message["To"] = "collect@163.com"
    message["Subject"] = "湖北省总工会五小成果路演项目报送"
    message["Date"] = "Tue, 30 Jul 2024 10:00:00 +0800"
    message["Received"] = "from smtp.126.com by mx.163.com; Tue, 30 Jul 2024 02:00:05 +0000"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    for name, data in (files or {}).items():
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes()


def judge_mail(raw: bytes, received_at=None):
    from intake.core import check_message
    from intake.kernel.policy import load_policy, parse_instant

    moment = parse_instant(received_at, "received_at") if received_at else None
    return check_message(raw, load_policy(), moment).to_json()


def zipped(root, tmp_path) -> bytes:
    return zip_folder(root, tmp_path / "包.zip", zipfile.ZIP_STORED).read_bytes()


def test_mail_with_a_zip_is_judged_with_its_received_time(tmp_path):
    raw = message_with(tmp_path, {"湖北省总工会报送材料.zip": zipped(complete(tmp_path), tmp_path)})
    report = judge_mail(raw)
    assert report["verdict"] == "accepted", report["findings"]
    assert list(report) == ["verdict", "policy", "received_at", "message", "unit", "projects", "findings"]
    assert report["received_at"] == "2024-07-30T10:00:05+08:00"  # the Received: header, not Date:
    assert report["message"] == {
        "from": "hbzgh@126.com", "subject": "湖北省总工会五小成果路演项目报送", "auto_submitted": False,
        "attachments": ["湖北省总工会报送材料.zip"], "links": []}
    assert report["unit"] == "湖北省总工会"


def test_received_header_decides_lateness_not_date(tmp_path):
    raw = message_with(tmp_path, {"包.zip": zipped(complete(tmp_path), tmp_path)})
    late = raw.replace(b"Tue, 30 Jul 2024 02:00:05 +0000", b"Wed, 31 Jul 2024 16:30:00 +0000")
    report = judge_mail(late)  # Date: still says 30 July
    assert report["verdict"] == "rejected" and codes(report) == ["deadline.late"]


def test_received_at_option_wins(tmp_path):
    raw = message_with(tmp_path, {"包.zip": zipped(complete(tmp_path), tmp_path)})
    report = judge_mail(raw, received_at="2024-08-01T09:00:00+08:00")
    assert codes(report) == ["deadline.late"]


def test_bare_materials_attached_directly_form_a_project(tmp_path):
    root = complete(tmp_path)
    files = {path.name: path.read_bytes() for path in root.rglob("*") if path.is_file()}
    report = judge_mail(message_with(tmp_path, files))
    assert report["verdict"] == "accepted", report["findings"]
    assert [p["name"] for p in report["projects"]] == ["课程甲"]


def test_split_set_sent_as_several_attachments_is_reassembled(tmp_path):
    root = complete(tmp_path)
    (root / "课程甲" / "padding.bin").write_bytes(os.urandom(300_000))
    out = tmp_path / "vols"
    out.mkdir()
    subprocess.run(["7zz", "a", "-bd", "-v100k", str(out / "材料.7z"), str(root)], check=True, capture_output=True)
    files = {path.name: path.read_bytes() for path in sorted(out.iterdir())}
    assert len(files) >= 3
    report = judge_mail(message_with(tmp_path, files))
    assert report["verdict"] == "accepted", report["findings"]
    del files["材料.7z.002"]
    report = judge_mail(message_with(tmp_path, files))
    assert codes(report) == ["archive.corrupt"] and "材料.7z.002" in report["findings"][0]["message"]


def test_no_attachment_and_no_link_is_empty(tmp_path):
    report = judge_mail(message_with(tmp_path))
    assert report["verdict"] == "rejected" and codes(report) == ["package.empty"]


def test_only_other_hosts_is_unsupported(tmp_path):
    report = judge_mail(message_with(tmp_path, body="材料在阿里云盘 https://www.alipan.com/s/AbCdEf 提取码 1234"))
    assert report["verdict"] == "rejected" and codes(report) == ["link.unsupported"]
    assert report["message"]["links"] == [{"provider": "other", "url": "https://www.alipan.com/s/AbCdEf", "code": None}]


def test_baidu_link_needs_review_and_nothing_else_is_judged(tmp_path):
    body = "链接: https://pan.baidu.com/s/1AbCdEfG 提取码: x7k2 复制这段内容后打开百度网盘手机App，操作更方便哦"
    report = judge_mail(message_with(tmp_path, body=body))
    assert report["verdict"] == "needs_review"
    assert codes(report) == ["link.fetch_failed"]  # no form.missing, no package.empty
    assert report["message"]["links"] == [{"provider": "baidu", "url": "https://pan.baidu.com/s/1AbCdEfG", "code": "x7k2"}]


def test_late_message_with_a_link_is_rejected(tmp_path):
    body = "https://pan.baidu.com/s/1AbCdEfG?pwd=x7k2"
    report = judge_mail(message_with(tmp_path, body=body), received_at="2024-08-02T08:00:00+08:00")
    assert report["verdict"] == "rejected" and codes(report) == ["deadline.late", "link.fetch_failed"]


def test_auto_reply_is_ignored_and_not_judged(tmp_path):
    raw = message_with(tmp_path, headers={"Auto-Submitted": "auto-replied"}, body="我休假了")
    report = judge_mail(raw)
    assert report["verdict"] == "ignored" and report["findings"] == [] and report["projects"] == []
    assert report["message"]["auto_submitted"] is True


# ------------------------------------------------------------------ the innovation policy

def innovation(tmp_path, names=("快速对刀装置",)):
    from intake.samples import make_innovation_result

    root = tmp_path / "创新成果"
    for name in names:
        make_innovation_result(root / name, name)
    return root


def judge_innovation(root):
    from intake.kernel.policy import load_policy

    return judge(root, policy=load_policy("innovation"))


def test_complete_innovation_package_is_accepted(tmp_path):
    report = judge_innovation(innovation(tmp_path, ("快速对刀装置", "防坠安全钩")))
    assert report["verdict"] == "accepted", report["findings"]
    assert report["policy"] == "innovation"
    files = report["projects"][0]["files"]
    assert set(files) == {"photos", "video", "question_bank", "audio", "declaration", "letters"}
    assert len(files["photos"]) == 3 and files["audio"].endswith(".mp3")


def test_innovation_problems_are_all_reported(tmp_path):
    from intake.samples import make_audio, make_declaration, make_photo

    root = innovation(tmp_path)
    result = root / "快速对刀装置"
    (result / "照片3.jpg").unlink()
    make_photo(result / "照片2.jpg", dpi=(72, 72))
    make_audio(result / "快速对刀装置-解说.mp3", container="wav")
    make_declaration(result / "快速对刀装置-申报表.docx", category="大发明")
    (result / "授权书.pdf").unlink()
    report = judge_innovation(root)
    assert report["verdict"] == "rejected"
    assert sorted(codes(report)) == ["audio.not_mp3", "authorization.missing", "declaration.bad_category",
                                     "photo.low_dpi", "photo.too_few"]


def test_innovation_missing_audio_and_pledge(tmp_path):
    root = innovation(tmp_path)
    (root / "快速对刀装置" / "快速对刀装置-解说.mp3").unlink()
    (root / "快速对刀装置" / "真实性承诺书.pdf").unlink()
    assert sorted(codes(judge_innovation(root))) == ["audio.missing", "pledge.missing"]


def test_roadshow_rules_do_not_apply_to_innovation_and_back(tmp_path):
    report = judge_innovation(innovation(tmp_path))
    assert not any(code.startswith(("document.", "form.")) for code in codes(report))
    roadshow = judge(innovation(tmp_path / "again"))  # the same package as a roadshow project
    assert "document.mentor_intro_missing" in codes(roadshow) and "form.missing" in codes(roadshow)


def test_declaration_as_a_sheet_is_not_taken_for_the_question_bank(tmp_path):
    import openpyxl

    root = innovation(tmp_path)
    result = root / "快速对刀装置"
    (result / "快速对刀装置-申报表.docx").unlink()
    workbook = openpyxl.Workbook()
    for row in (["成果名称", "快速对刀装置"], ["成果类别", "小发明"], ["主要完成人", "张三"],
                ["成果简介", "一种对刀装置。"], ["是否为新质生产力", "是"]):
        workbook.active.append(row)
    workbook.save(result / "0-申报表.xlsx")  # sorts before the question bank
    report = judge_innovation(root)
    assert report["verdict"] == "accepted", report["findings"]
    assert report["projects"][0]["files"]["declaration"].endswith("0-申报表.xlsx")
    assert report["projects"][0]["files"]["question_bank"].endswith("题库.xlsx")


def test_one_result_split_into_typed_subfolders_is_one_result(tmp_path):
    from intake.samples import make_audio, make_declaration, make_photo, make_question_bank, make_scan, make_video

    result = tmp_path / "包" / "快速对刀装置"
    make_declaration(result / "申报材料" / "申报表.docx")
    make_scan(result / "申报材料" / "授权书.pdf")
    make_scan(result / "申报材料" / "承诺书.pdf")
    make_video(result / "音视频" / "演示.mp4")
    make_audio(result / "音视频" / "解说.mp3")
    for n in range(3):
        make_photo(result / "照片" / f"{n}.jpg")
    make_question_bank(result / "题库.xlsx")
    report = judge_innovation(tmp_path / "包")
    assert [p["name"] for p in report["projects"]] == ["快速对刀装置"]
    assert report["verdict"] == "accepted", report["findings"]


def test_unit_paperwork_is_neither_a_result_nor_a_photo(tmp_path):
    import openpyxl

    from intake.samples import make_photo

    root = innovation(tmp_path, ("快速对刀装置", "防坠安全钩"))
    summary = openpyxl.Workbook()
    summary.active.append(["序号", "成果名称", "完成人"])
    summary.active.append([1, "快速对刀装置", "张三"])
    (root / "00-推荐汇总表").mkdir()
    summary.save(root / "00-推荐汇总表" / "推荐汇总表.xlsx")
    make_photo(root / "推荐汇总表（盖章）.jpg", size=300, dpi=(72, 72))
    make_photo(root / "快速对刀装置" / "申报表（盖章）.jpg", size=300, dpi=(72, 72))
    make_photo(root / "快速对刀装置" / "承诺函.jpg", size=300, dpi=(72, 72))
    (root / "快速对刀装置" / "真实性承诺书.pdf").unlink()  # the 承诺函 scan stands for it
    report = judge_innovation(root)
    assert sorted(p["name"] for p in report["projects"]) == ["快速对刀装置", "防坠安全钩"]
    assert report["verdict"] == "accepted", report["findings"]
