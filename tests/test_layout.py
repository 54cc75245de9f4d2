"""Finding projects in messy packages (parsers.layout through the core)."""

from __future__ import annotations

import subprocess
import zipfile

from intake.samples import make_document, make_form, make_project, make_question_bank, make_scan, make_video, zip_folder
from tests.conftest import codes, judge


def names(report):
    return sorted(p["name"] for p in report["projects"])


def test_one_folder_per_project_at_any_depth(tmp_path):
    root = tmp_path / "pkg"
    make_form(root / "报送表.docx", courses=["课程甲", "课程乙"])
    make_scan(root / "报送表盖章.pdf")
    make_project(root / "湖北" / "第一批" / "01-课程甲", "甲")
    make_project(root / "湖北" / "第二批" / "02-课程乙", "乙")
    report = judge(root)
    assert names(report) == ["课程乙", "课程甲"]
    assert report["verdict"] == "accepted", report["findings"]


def test_single_project_at_the_root(tmp_path):
    root = tmp_path / "班组安全隐患排查"
    make_project(root, "视频")
    make_form(root / "附件5.docx", courses=["班组安全隐患排查"])
    make_scan(root / "附件5.pdf")
    report = judge(root)
    assert names(report) == ["班组安全隐患排查"]
    assert report["verdict"] == "accepted", report["findings"]
    assert report["projects"][0]["files"]["video"] == "视频.mp4"


def test_materials_split_into_kind_folders_are_one_project(tmp_path):
    root = tmp_path / "pkg"
    project = root / "课程甲"
    make_video(project / "视频" / "a.mp4")
    make_document(project / "文档" / "说明.docx")
    make_question_bank(project / "题库" / "题库.xlsx")
    make_form(root / "报送表.docx", courses=["课程甲"])
    make_scan(root / "报送表.pdf")
    report = judge(root)
    assert names(report) == ["课程甲"] and report["verdict"] == "accepted", report["findings"]


def test_numbering_prefixes_are_not_part_of_the_name(tmp_path):
    root = tmp_path / "pkg"
    folders = {"1.课程甲": "课程甲", "项目二：课程乙": "课程乙", "（三）课程丙": "课程丙"}
    for folder in folders:
        make_project(root / folder, "x")
    make_form(root / "报送汇总.docx", courses=list(folders.values()))
    make_scan(root / "报送汇总.pdf")
    report = judge(root)
    assert names(report) == sorted(folders.values())
    assert "form.course_not_listed" not in codes(report)


def test_projects_packed_as_archives_inside_the_package(tmp_path):
    staging = tmp_path / "staging"
    make_project(staging / "课程甲", "甲")
    make_project(staging / "课程乙", "乙")
    root = tmp_path / "pkg"
    root.mkdir()
    zip_folder(staging / "课程甲", root / "课程甲.zip", zipfile.ZIP_STORED, keep_name=True)
    subprocess.run(["7zz", "a", "-bd", str(root / "课程乙.7z"), str(staging / "课程乙")], check=True, capture_output=True)
    make_form(root / "报送表.docx", courses=["课程甲", "课程乙"])
    make_scan(root / "报送表.pdf")
    report = judge(root)
    assert names(report) == ["课程乙", "课程甲"]
    assert report["verdict"] == "accepted", report["findings"]


def test_form_found_by_content_is_not_a_project_document(tmp_path):
    root = tmp_path / "pkg"
    make_project(root / "课程甲", "甲")
    make_project(root / "课程乙", "乙")
    make_form(root / "湖北.docx", courses=["课程甲", "课程乙"])  # no form word in the name
    make_scan(root / "湖北.pdf")
    report = judge(root)
    assert "form.missing" not in codes(report)
    assert report["unit"] == "湖北省总工会"
    assert names(report) == ["课程乙", "课程甲"]


def test_stray_single_file_beside_projects_is_not_a_project(tmp_path):
    root = tmp_path / "pkg"
    make_project(root / "课程甲", "甲")
    make_project(root / "课程乙", "乙")
    make_document(root / "填报说明.docx")
    make_form(root / "报送表.docx", courses=["课程甲", "课程乙"])
    make_scan(root / "报送表.pdf")
    report = judge(root)
    assert names(report) == ["课程乙", "课程甲"] and report["verdict"] == "accepted"


def test_incomplete_project_beside_a_complete_one_is_its_own_project(tmp_path):
    root = tmp_path / "pkg"
    make_form(root / "报送表.docx", courses=["安全课", "对刀法"])
    make_scan(root / "报送表.pdf")
    make_project(root / "安全课", "安全课")
    make_video(root / "对刀法" / "对刀法.mp4", 1280, 720)
    report = judge(root)
    assert report["verdict"] == "partial"
    assert {p["name"]: p["verdict"] for p in report["projects"]} == {"安全课": "accepted", "对刀法": "rejected"}
    assert sorted((f["code"], f["project"]) for f in report["findings"]) == [
        ("document.missing", "对刀法"), ("question_bank.missing", "对刀法"), ("video.resolution", "对刀法")]


def test_project_document_named_like_a_form_is_a_document(tmp_path):
    root = tmp_path / "pkg"
    make_form(root / "附件5-报送表.docx", courses=["安全课"])
    make_scan(root / "附件5-报送表.pdf")
    make_video(root / "安全课" / "安全课.mp4")
    make_question_bank(root / "安全课" / "题库.xlsx")
    make_document(root / "安全课" / "安全课-报送材料.docx")
    report = judge(root)
    assert report["verdict"] == "accepted", report["findings"]


def test_craftsman_subfolder_belongs_to_its_project(tmp_path):
    root = tmp_path / "pkg"
    make_form(root / "报送表.docx", courses=["工匠精神传承课"])
    make_scan(root / "报送表.pdf")
    make_project(root / "工匠精神传承课", "课程")
    make_video(root / "工匠精神传承课" / "工匠" / "工匠风采.mp4", 1280, 720)
    make_document(root / "工匠精神传承课" / "工匠" / "工匠简介.docx", mentor=False, video=False)
    report = judge(root)
    assert [p["name"] for p in report["projects"]] == ["工匠精神传承课"]
    assert report["verdict"] == "accepted", report["findings"]
    assert report["projects"][0]["files"]["video"] == "工匠精神传承课/课程.mp4"


def test_course_named_like_craftsman_beside_other_projects_is_kept(tmp_path):
    root = tmp_path / "pkg"
    make_form(root / "报送表.docx", courses=["安全课", "工匠精神传承课"])
    make_scan(root / "报送表.pdf")
    make_project(root / "01-安全课", "安全课")
    make_video(root / "02-工匠精神传承课" / "课.mp4")
    make_document(root / "02-工匠精神传承课" / "说明.docx")
    report = judge(root)
    assert {p["name"]: p["verdict"] for p in report["projects"]} == {"安全课": "accepted", "工匠精神传承课": "rejected"}
    assert [(f["code"], f["project"]) for f in report["findings"]] == [("question_bank.missing", "工匠精神传承课")]
