"""The report form (附件5): found, read, and matched to the projects."""

from __future__ import annotations

import openpyxl

from intake.samples import make_form, make_project, make_scan
from tests.conftest import codes, judge, soffice_convert


def package(tmp_path, folders, courses, form=True, scan=True):
    root = tmp_path / "pkg"
    for folder in folders:
        make_project(root / folder, "材料")
    if form:
        make_form(root / "附件5-报送表.docx", courses=courses)
    if scan:
        make_scan(root / "附件5-报送表（盖章）.pdf")
    return root


def test_form_missing(tmp_path):
    report = judge(package(tmp_path, ["课程甲"], [], form=False, scan=False))
    assert "form.missing" in codes(report) and report["verdict"] == "rejected"
    finding = next(f for f in report["findings"] if f["code"] == "form.missing")
    assert finding["project"] is None and "附件5" in finding["message"]


def test_form_present_is_the_near_miss(tmp_path):
    report = judge(package(tmp_path, ["课程甲"], ["课程甲"]))
    assert codes(report) == [] and report["verdict"] == "accepted"


def test_stamped_scan_alone_counts_as_the_form(tmp_path):
    report = judge(package(tmp_path, ["课程甲"], [], form=False, scan=True))
    assert "form.missing" not in codes(report)


def test_scan_missing_is_a_warning(tmp_path):
    report = judge(package(tmp_path, ["课程甲"], ["课程甲"], scan=False))
    assert codes(report) == ["form.scan_missing"]
    assert report["verdict"] == "accepted"  # warnings do not fail


def test_course_listed_but_not_in_package(tmp_path):
    report = judge(package(tmp_path, ["课程甲"], ["课程甲", "课程乙"]))
    assert codes(report) == ["form.course_not_in_package"]
    finding = report["findings"][0]
    assert finding["project"] == "课程乙" and "课程乙" in finding["message"]
    assert {p["name"]: p["verdict"] for p in report["projects"]} == {"课程甲": "accepted", "课程乙": "rejected"}
    assert report["verdict"] == "partial"


def test_course_in_package_but_not_listed(tmp_path):
    report = judge(package(tmp_path, ["课程甲", "课程丙"], ["课程甲"]))
    assert codes(report) == ["form.course_not_listed"]
    assert report["findings"][0]["severity"] == "warning"
    assert report["verdict"] == "accepted"


def test_matching_tolerates_space_width_and_punctuation(tmp_path):
    folders = ["01-《数控 机床》快速对刀法", "02-ＡＩ 巡检机器人", "03-班组安全（隐患）排查"]
    courses = ["数控机床快速对刀法", "AI巡检机器人", "班组安全(隐患)排查"]
    report = judge(package(tmp_path, folders, courses))
    assert codes(report) == []
    assert sorted(p["name"] for p in report["projects"]) == sorted(courses)


def test_unit_is_read_from_the_form(tmp_path):
    root = package(tmp_path, ["课程甲"], ["课程甲"])
    make_form(root / "附件5-报送表.docx", unit="中国海员建设工会", courses=["课程甲"])
    assert judge(root)["unit"] == "中国海员建设工会"


def test_form_as_a_spreadsheet(tmp_path):
    root = package(tmp_path, ["课程甲", "课程乙"], [], form=False)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["“五小”成果路演项目报送表"])
    sheet.append(["上报单位（盖章）", "四川省总工会", "联系人", "王五"])
    sheet.append(["序号", "课程名称", "提交单位", "完成人", "联系电话"])
    sheet.append([1, "课程甲", "成都市总工会", "赵六", "13900000000"])
    sheet.append([2, "课程乙", "绵阳市总工会", "钱七", "13900000001"])
    workbook.save(root / "汇总表.xlsx")
    report = judge(root)
    assert report["unit"] == "四川省总工会"
    assert "form.missing" not in codes(report) and "form.course_not_listed" not in codes(report)
    assert report["verdict"] == "accepted", report["findings"]


def test_legacy_doc_form(tmp_path):
    root = package(tmp_path, ["课程甲"], [], form=False)
    source = make_form(tmp_path / "报送表.docx", unit="湖南省总工会", courses=["课程甲", "课程乙"])
    legacy = soffice_convert(source, "doc", root)
    assert legacy.exists()
    report = judge(root)
    assert report["unit"] == "湖南省总工会"
    assert codes(report) == ["form.course_not_in_package"]


def test_note_rows_under_the_course_table_are_not_courses(tmp_path):
    root = package(tmp_path, ["课程甲"], [], form=False)
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["上报单位", "四川省总工会"])
    sheet.append(["序号", "课程名称", "提交单位", "完成人", "联系电话"])
    sheet.append([1, "课程甲", "成都市总工会", "赵六", "13900000000"])
    sheet.append(["注：课程名称须与视频文件名一致。"])
    sheet.merge_cells("A4:E4")
    sheet.append(["", "备注：以上材料均已审核", "", "", ""])
    workbook.save(root / "汇总表.xlsx")
    report = judge(root)
    assert [p["name"] for p in report["projects"]] == ["课程甲"]
    assert report["verdict"] == "accepted", report["findings"]


def test_a_form_padded_past_the_bounds_is_read_partly_and_still_matched(tmp_path):
    import zipfile

    root = package(tmp_path, ["课程甲"], ["课程甲"])
    form = root / "附件5-报送表.docx"
    with zipfile.ZipFile(form) as source:
        items = {name: source.read(name) for name in source.namelist()}
    items["word/document.xml"] = items["word/document.xml"].replace(b"<w:sectPr", b"<w:p/>" * 30_000 + b"<w:sectPr", 1)
    with zipfile.ZipFile(form, "w", zipfile.ZIP_DEFLATED) as target:
        for name, data in items.items():
            target.writestr(name, data)
    report = judge(root)
    # the unit and the course list come before the padding: read, matched, accepted
    assert codes(report) == ["document.read_partly"] and report["verdict"] == "accepted"
    assert report["unit"] == "湖北省总工会"
    assert report["findings"][0]["path"] == "附件5-报送表.docx"
