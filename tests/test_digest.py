"""The daily digest: what it counts, the HTML tables, the chart's font, the workbook
and the mail it makes, on a collection in a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import io
import os
import subprocess
from datetime import datetime, timezone
from email import message_from_bytes, policy as email_policy

import pytest
from bs4 import BeautifulSoup
from matplotlib.ft2font import FT2Font
from openpyxl import load_workbook
from PIL import Image
from sqlalchemy import select

from intake.daemon.claims import worker_id
from intake.daemon.delivery import unsent
from intake.daemon.digest import gather
from intake.daemon.digest_items import failures
from intake.notifier.digest_chart import SAMPLE, find_cjk_font, quota_chart
from intake.notifier.digest_render import compose_digest, render_html
from intake.notifier.digest_workbook import digest_workbook
from intake.service import open_service
from intake.store import FindingRow, Message, Outbox, Project, utcnow
from tests.conftest import daemon_settings
from tests.digest_seed import seed

NOW = datetime(2024, 7, 30, 2, 0, tzinfo=timezone.utc)  # 10:00 Beijing time, a day before the deadline
OVERALL = {"received": 11, "accepted": 3, "partial": 1, "rejected": 2, "late": 1, "needs_review": 1,
           "ignored": 1, "in_progress": 2}
LAST_DAY = {"received": 9, "accepted": 3, "partial": 0, "rejected": 1, "late": 1, "needs_review": 1,
            "ignored": 1, "in_progress": 2}
# unit: (quota, accepted, current, messages, status)
UNITS = {
    "湖北省总工会": (3, 3, 4, 2, "已满额"),
    "北京市总工会": (2, 2, 2, 2, "已满额"),
    "中国海员建设工会全国委员会": (2, 0, 0, 1, "尚差 2 个"),
    "西藏自治区总工会": (2, 0, 0, 0, "尚未报送"),
    "四川省总工会": (3, 1, 1, 2, "尚差 2 个"),
    "单位未识别": (None, 0, 1, 1, "未设名额"),
}


@pytest.fixture
def collection(tmp_path, database_url):
    service = open_service(daemon_settings(tmp_path, database_url, staff_emails=["staff@acftu.org"]))
    seed(service.Session, NOW)
    with service.Session() as session:
        digest = gather(session, service.settings, service.policy, NOW)
    return service, digest


def test_totals_for_the_last_day_and_overall(collection):
    _, digest = collection
    assert {"received": digest.overall.received, **digest.overall.counts} == OVERALL
    assert {"received": digest.last_day.received, **digest.last_day.counts} == LAST_DAY
    assert sum(digest.overall.counts.values()) == digest.overall.received  # one total per message
    assert digest.days_left == 1 and str(digest.day) == "2024-07-30"


def test_units_against_quotas_and_the_silent_ones(collection):
    _, digest = collection
    found = {u.name: (u.quota, u.accepted, u.current, u.messages, u.status) for u in digest.units}
    assert found == UNITS
    assert [u.name for u in digest.silent_units] == ["西藏自治区总工会"]


def test_items_for_staff_each_with_its_reason_and_command(collection):
    _, digest = collection
    items = {(i.kind, i.receipt): i for i in digest.attention}
    assert list(items) == [("已隔离", "WX2024-000008"), ("待人工核对", "WX2024-000006"), ("未回复", "WX2024-000009")]
    assert "7zz exited with 2" in items["已隔离", "WX2024-000008"].reason
    assert items["已隔离", "WX2024-000008"].commands == ["intake show WX2024-000008", "intake reprocess WX2024-000008"]
    review = items["待人工核对", "WX2024-000006"]
    assert "百度网盘" in review.reason and "intake override WX2024-000006 --accept --note …" in review.commands
    assert "发件地址无法识别" in items["未回复", "WX2024-000009"].reason


def test_reply_failures_held_replies_and_health(collection):
    _, digest = collection
    failures = {(f.kind, f.state): f for f in digest.failures}
    assert set(failures) == {("reply", "failed"), ("digest", "sending")}  # the fresh `sending` is in hand
    refused = failures["reply", "failed"]
    assert refused.receipt == "WX2024-000010" and "554 DT:SPM" in refused.detail
    assert refused.command == "intake resend WX2024-000010"
    uncertain = failures["digest", "sending"]  # left by a sender that is gone: staff decide
    assert "可能已经送达" in uncertain.detail and uncertain.command.startswith("intake resend ")
    assert digest.held == {"bjzgh@163.com": 1}
    assert [(h.name, h.ok) for h in digest.health] == [("mailbox", False), ("smtp", True)]
    assert digest.disk.total_bytes > digest.disk.free_bytes > 0


def test_disk_use_counts_the_data_folder(tmp_path, database_url):
    service = open_service(daemon_settings(tmp_path, database_url))
    (service.settings.data_dir / "raw" / "ab").mkdir(parents=True)
    (service.settings.data_dir / "raw" / "ab" / "x.eml").write_bytes(b"x" * 1_000_000)
    (service.settings.data_dir / "note.txt").write_bytes(b"y" * 10)
    (service.settings.data_dir / "link").symlink_to("/usr")  # never followed
    with service.Session() as session:
        disk = gather(session, service.settings, service.policy, NOW).disk
    assert disk.data_bytes == 1_000_010 and disk.data_dir == str(service.settings.data_dir)


def test_the_html_tables_hold_the_numbers(collection):
    _, digest = collection
    page = BeautifulSoup(render_html(digest, "chart.png"), "html.parser")
    totals = {row[0]: row[1:] for row in _rows(page, "totals")}
    assert totals["收到邮件"] == [str(LAST_DAY["received"]), str(OVERALL["received"])]
    assert totals["通过"] == [str(LAST_DAY["accepted"]), str(OVERALL["accepted"])]
    assert totals["逾期（无效）"] == ["1", "1"] and totals["尚无结论"] == ["2", "2"]
    units = {row[0]: row[1:] for row in _rows(page, "units")}
    assert units["湖北省总工会"] == ["3", "3", "4", "2", "已满额"]
    assert units["西藏自治区总工会"] == ["2", "0", "0", "0", "尚未报送"]
    assert "西藏自治区总工会" in page.find(id="silent").get_text()
    attention = _rows(page, "attention")
    assert [row[1] for row in attention] == ["WX2024-000008", "WX2024-000006", "WX2024-000009"]
    assert "intake reprocess WX2024-000008" in attention[0][6]
    failures = _rows(page, "failures")
    assert any(row[0] == "WX2024-000010" and "554 DT:SPM" in row[5] for row in failures)
    assert _rows(page, "health")[0][:2] == ["收件邮箱（IMAP）", "异常"]
    assert "距截止还有 1 天" in page.find(id="deadline").get_text()
    assert page.find("img")["src"] == "chart.png"


def _rows(page: BeautifulSoup, table: str) -> list[list[str]]:
    found = page.find("table", id=table)
    assert found is not None, table
    return [[cell.get_text(" ", strip=True) for cell in row.find_all("td")] for row in found.find_all("tr")[1:]]


def test_the_workbook_holds_every_project_and_finding(collection):
    service, digest = collection
    book = load_workbook(io.BytesIO(digest_workbook(digest)))
    assert book.sheetnames == ["项目", "问题", "单位"]
    with service.Session() as session:
        projects = session.execute(select(Message.receipt, Project.name).join(Project.message)).all()
        findings = session.execute(select(Message.receipt, FindingRow.code, FindingRow.text)
                                   .join(FindingRow.message)).all()
    sheet = list(book["项目"].iter_rows(values_only=True))
    assert sheet[0][:5] == ("单位", "课程名称", "审核结论", "状态", "回执号")
    assert sorted((row[4], row[1]) for row in sheet[1:]) == sorted(tuple(p) for p in projects)
    assert ("WX2024-000004", "地铁检修工具改进") in {(r[4], r[1]) for r in sheet[1:] if r[3] == "已被替换"}
    first = next(row for row in sheet[1:] if row[4] == "WX2024-000001")
    assert first[5] == datetime(2024, 7, 30, 8, 0)  # received two hours before NOW, in Beijing time
    issues = book["问题"]
    assert issues.auto_filter.ref == f"A1:G{len(findings) + 1}"
    assert sorted((r[0], r[3], r[5]) for r in issues.iter_rows(min_row=2, values_only=True)) == \
        sorted(tuple(f) for f in findings)
    units = {r[0]: r[1:3] for r in book["单位"].iter_rows(min_row=2, values_only=True)}
    assert units["湖北省总工会"] == (3, 3) and units["西藏自治区总工会"] == (2, 0)


def test_a_course_name_like_a_formula_stays_text(collection):
    _, digest = collection
    book = load_workbook(io.BytesIO(digest_workbook(digest)))
    cell = next(row[1] for row in book["项目"].iter_rows(min_row=2) if str(row[1].value).startswith("="))
    assert cell.value == "=SUM(A1) 班组创新" and cell.data_type == "s"


def test_a_cjk_font_is_found_and_draws_unit_names():
    path = find_cjk_font()
    assert path is not None, "no CJK font: deploy/bootstrap.sh installs fonts-wqy-microhei"
    font = FT2Font(str(path))
    assert all(font.get_char_index(ord(character)) for character in SAMPLE + "中国海员建设工会全国委员会")


def test_the_chart_grows_with_the_units(collection):
    _, digest = collection
    many, one = (Image.open(io.BytesIO(quota_chart(units))) for units in (digest.units, digest.units[:1]))
    assert many.format == one.format == "PNG"
    assert many.height > one.height and many.width == one.width


def test_the_mail_shows_the_chart_inline_and_attaches_the_workbook(collection):
    service, digest = collection
    mail = compose_digest(digest, service.settings, ["staff@acftu.org", "lead@acftu.org"])
    parsed = message_from_bytes(mail.as_bytes(), policy=email_policy.default)
    assert parsed["To"] == "staff@acftu.org, lead@acftu.org" and parsed["Auto-Submitted"] == "auto-generated"
    assert "累计收到 11 封" in parsed["Subject"]
    assert [p.get_content_type() for p in parsed.walk()] == [
        "multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]
    parts = list(parsed.walk())
    html, png, workbook = parts[4], parts[5], parts[6]
    assert f'src="cid:{png["Content-ID"].strip("<>")}"' in html.get_content()
    assert png.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    assert workbook.get_filename() == "digest-2024-07-30.xlsx"
    assert load_workbook(io.BytesIO(workbook.get_content())).sheetnames == ["项目", "问题", "单位"]
    assert "湖北省总工会：3 / 3" in parts[2].get_content()  # the text part says it too


def test_the_digest_and_intake_outbox_call_the_same_rows_uncertain(tmp_path, database_url):
    """One notion of an uncertain send: a row whose sender on this host is dead is listed
    at once; one that a live process is sending is not (whatever their age)."""
    service = open_service(daemon_settings(tmp_path, database_url))
    gone = subprocess.Popen(["sleep", "60"])
    dead_sender = worker_id(gone.pid)
    gone.kill()
    gone.wait()
    live_sender = worker_id(os.getppid())  # the process that started this test: alive
    now = utcnow()
    with service.Session.begin() as session:
        rows = [Outbox(kind="alert", recipient="staff@acftu.org", subject=f"告警 {holder}", raw="", state="sending",
                       sending_by=holder, created_at=now, updated_at=now) for holder in (dead_sender, live_sender)]
        session.add_all(rows)
        session.flush()
        dead_row = rows[0].id
    with service.Session() as session:
        listed = failures(session, now)
    assert [(f.state, f.command) for f in listed] == [("sending", f"intake resend {dead_row}")]
    assert [row["id"] for row in unsent(service.Session, worker_id()) if row["uncertain"]] == [dead_row]
