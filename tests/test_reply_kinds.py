"""The replies a sender receives, kind by kind (accepted, partial, rejected, late, late
then overridden, needs review, resubmitted): each is composed in-process from a
Message row built here (or judged by the daemon's stages on a real database), then
decoded as a mail client would (email.message_from_bytes + get_content) and read
part by part: the subject's verdict is the body's, every finding is in its project's
group with how to fix it, the deadline and the contact are there, and the HTML
alternative says the same with every sender-controlled string escaped."""

from __future__ import annotations

import email
import email.policy
import fnmatch
import re
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select

from intake.kernel.errors import ConfigError
from intake.kernel.findings import SEVERITY
from intake.kernel.policy import load_policy
from intake.notifier.fix_hints import FIX_HINTS, NO_HINT, fix_hint
from intake.notifier.reply_view import MESSAGE_GROUP
from intake.notifier.replies import compose_reply
from intake.settings import Settings, load_settings
from intake.store import Message, Outbox

ROOT = Path(__file__).resolve().parents[1]
RECEIVED = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)  # 12:00 in Beijing
RECEIVED_TEXT = "2024年07月30日 12:00:00"
DEADLINE_TEXT = "2024年07月31日 23:59:59"  # roadshow.toml, Asia/Shanghai
CONTACT = "全国总工会劳动和经济工作部，电话 010-68591862"
SETTINGS = Settings(smtp_from="collect@163.com")
RESEND = "在截止时间前重新发送全部材料"

# findings as the checks word them: some carry their own fix (请……), some do not
TOO_LONG = "视频“课程乙/视频.mp4”时长为 06:10，超过 05:00 的上限。请剪辑到 05:00 以内后重新提交。"
NO_BANK = "项目“课程乙”中没有题库。请按附件6模板提交不少于 20 道题的题库（Excel）。"
CORRUPT = "无法读取文件夹“材料/请看这里”：权限不足。"  # no fix of its own (the 请 is the sender's name)
NOT_LISTED = "材料中的“课程甲”（文件夹“课程甲”）没有列在报送表中。如属报送课程，请在报送表中补充并重新盖章。"
QUOTA = "湖北省总工会的报送名额为 1 个，目前已报送 2 个，超出名额。请确认需要保留的项目，工作人员将与贵单位联系。"
FORM_MISSING = "材料中没有找到报送表（附件5：上报单位、联系人及课程名称等）。请按附件5填写报送表，加盖单位公章后一并发送。"
LATE_TEXT = (f"本次报送于北京时间 2024年08月02日 09:00:00 收到，晚于截止时间 {DEADLINE_TEXT}。"
             "按通知要求，逾期上报无效，本次材料不予受理。")
FETCH_FAILED = ("邮件中的百度网盘链接 https://pan.baidu.com/s/1AbC 暂未能自动下载（系统尚未接入该下载方式），"
                "已转工作人员人工核对，您无需重新发送。")


def finding(code: str, message: str, project: str | None = None, **extra) -> dict:
    return {"code": code, "severity": SEVERITY[code], "message": message, "project": project, "path": None, **extra}


def project(name: str, verdict: str) -> dict:
    return {"name": name, "verdict": verdict, "files": {}}


def row(verdict: str, projects: list[dict], findings: list[dict], **values) -> Message:
    fields = dict(message_id="<m1@test.example.cn>", from_address="unit1@163.com", receipt="WX2024-000002",
                  subject="关于报送“五小”路演项目的函", received_at=RECEIVED, verdict=verdict,
                  report={"verdict": verdict, "unit": "湖北省总工会", "projects": projects, "findings": findings})
    fields.update(values)
    return Message(**fields)


class Reply:
    """A reply as the recipient's client reads it: from its bytes."""

    def __init__(self, message: Message, settings: Settings = SETTINGS, policy=None):
        raw = compose_reply(message, settings, policy or load_policy()).as_bytes()
        self.mail = email.message_from_bytes(raw, policy=email.policy.default)
        self.text = self.mail.get_body(("plain",)).get_content()
        self.html = self.mail.get_body(("html",)).get_content()
        self.soup = BeautifulSoup(self.html, "html.parser")
        self.page = self.soup.get_text()

    @property
    def verdict(self) -> str:
        """The subject's verdict, which the body's 审核结论 must repeat."""
        match = re.fullmatch(r"【回执 (WX\d{4}-\d{6})】(.+)", self.mail["Subject"])
        assert match, self.mail["Subject"]
        return match.group(2)

    def text_groups(self) -> dict[str, list[str]]:
        """Plain text: 【title】 then the group's lines, up to a blank line."""
        groups = {}
        for block in self.text.split("\n\n"):
            lines = block.strip("\n").split("\n")
            title = re.fullmatch(r"【(.+)】", lines[0])
            if title:
                groups[title.group(1)] = lines[1:]
        return groups

    def html_groups(self) -> dict[str, list[tuple[str, str | None]]]:
        """HTML: each group's findings as (text, fix or None)."""
        groups = {}
        for group in self.soup.select(".group"):
            title = group.select_one(".group-title").get_text().removeprefix("项目：")
            items = []
            for item in group.select(".finding"):
                fix = item.select_one(".fix")  # read, not taken out: the soup is read again
                text = item.get_text().replace(fix.get_text(), "") if fix else item.get_text()
                items.append((text.strip(), fix.get_text().removeprefix("改正方法：") if fix else None))
            groups[title] = items
        return groups

    def says_everywhere(self, words: str) -> bool:
        return words in self.text and words in self.page


def assert_in_group(reply: Reply, title: str, message: str, fix: str | None) -> None:
    """The finding is listed in its group only, in both parts, with its fix right under
    it where its message has none (and no repeated fix where it has one)."""
    lines = reply.text_groups()[title]
    (at,) = [i for i, line in enumerate(lines) if line.endswith(message)]
    hint = lines[at + 1].strip() if at + 1 < len(lines) and lines[at + 1].strip().startswith("改正方法") else None
    assert hint == (f"改正方法：{fix}" if fix else None)
    assert (message, fix) in [(text[-len(message):], hint) for text, hint in reply.html_groups()[title]]
    elsewhere = [t for t, lines in reply.text_groups().items() if t != title and any(message in x for x in lines)]
    assert elsewhere == []


def assert_common(reply: Reply, verdict: str, contact: str = CONTACT) -> None:
    assert reply.verdict == verdict
    assert f"审核结论：{verdict}" in reply.text and verdict in reply.soup.find("h1").get_text()
    assert reply.says_everywhere("WX2024-000002") and reply.says_everywhere(RECEIVED_TEXT)
    assert reply.says_everywhere(f"如有疑问，请联系{contact}。")
    assert "请与工作人员联系" not in reply.text


# ------------------------------------------------------------------ the kinds of reply

def test_an_acknowledgement_lists_each_accepted_project_and_the_warnings():
    message = row("accepted", [project("课程甲", "accepted"), project("课程丙", "accepted")],
                  [finding("form.course_not_listed", NOT_LISTED, "课程甲"), finding("quota.exceeded", QUOTA)])
    reply = Reply(message)
    assert_common(reply, "已受理，材料审核通过")
    assert "已受理的项目（共 2 个）：\n  · 课程甲\n  · 课程丙\n" in reply.text
    assert [li.get_text() for li in reply.soup.find("h2").find_next("ul").find_all("li")] == ["课程甲", "课程丙"]
    assert "需要注意的问题（不影响受理）：" in reply.text
    assert_in_group(reply, "课程甲", "（提醒）" + NOT_LISTED, None)
    assert_in_group(reply, MESSAGE_GROUP, "（提醒）" + QUOTA, None)
    assert "未通过" not in reply.text and RESEND not in reply.text and "截止时间" not in reply.text


def test_a_partial_reply_groups_every_finding_by_project_with_its_fix_and_the_deadline():
    message = row("partial", [project("课程甲", "accepted"), project("课程乙", "rejected")],
                  [finding("archive.corrupt", CORRUPT), finding("video.too_long", TOO_LONG, "课程乙"),
                   finding("question_bank.missing", NO_BANK, "课程乙"),
                   finding("form.course_not_listed", NOT_LISTED, "课程甲")])
    reply = Reply(message)
    assert_common(reply, "部分通过，部分项目需要修改后重新报送")
    assert "  · 课程甲：通过\n  · 课程乙：未通过\n" in reply.text
    assert list(reply.text_groups()) == ["课程甲", "课程乙", MESSAGE_GROUP]  # the report's order, the message last
    assert list(reply.html_groups()) == ["课程甲", "课程乙", MESSAGE_GROUP]
    assert_in_group(reply, "课程乙", TOO_LONG, None)  # says its own fix: said once
    assert_in_group(reply, "课程乙", NO_BANK, None)
    assert_in_group(reply, "课程甲", "（提醒）" + NOT_LISTED, None)
    assert_in_group(reply, MESSAGE_GROUP, CORRUPT, FIX_HINTS["archive.corrupt"])  # says none: the table's
    assert reply.says_everywhere(RESEND) and reply.says_everywhere(f"北京时间 {DEADLINE_TEXT}")
    assert f"截止时间：北京时间 {DEADLINE_TEXT}" in reply.text


def test_a_rejection_puts_message_level_findings_in_their_own_group():
    message = row("rejected", [project("课程乙", "rejected")],
                  [finding("form.missing", FORM_MISSING), finding("video.too_long", TOO_LONG, "课程乙")])
    reply = Reply(message)
    assert_common(reply, "未通过，需要修改后重新报送")
    assert "  · 课程乙：未通过\n" in reply.text and "：通过" not in reply.text
    assert_in_group(reply, MESSAGE_GROUP, FORM_MISSING, None)
    assert_in_group(reply, "课程乙", TOO_LONG, None)
    assert reply.says_everywhere(RESEND) and reply.says_everywhere(DEADLINE_TEXT)


def test_a_rejection_with_no_project_still_lists_every_finding():
    empty = "邮件中没有附件，也没有百度网盘链接"  # package.empty worded without a fix: the hint gives it
    reply = Reply(row("rejected", [], [finding("package.empty", empty)]))
    assert_in_group(reply, MESSAGE_GROUP, empty, FIX_HINTS["package.empty"])
    assert "各项目审核结果" not in reply.text and reply.says_everywhere(RESEND)


def test_a_late_reply_says_void_with_both_times_and_invites_nothing():
    message = row("rejected", [project("课程乙", "rejected")],
                  [finding("deadline.late", LATE_TEXT), finding("video.too_long", TOO_LONG, "课程乙"),
                   finding("archive.corrupt", CORRUPT)],
                  received_at=datetime(2024, 8, 2, 1, 0, tzinfo=timezone.utc))
    reply = Reply(message)
    assert reply.verdict == "逾期报送，不予受理"
    assert "审核结论：逾期报送，不予受理" in reply.text
    for part in (reply.text, reply.page):
        assert "逾期上报无效" in part and "2024年08月02日 09:00:00" in part and DEADLINE_TEXT in part
        for invitation in ("重新发送", "重新报送", "重新提交", "修改", "请将", "改正方法", "补充"):
            assert invitation not in part, invitation
        assert "课程乙" not in part and TOO_LONG not in part  # a void report judges no project
    assert reply.text_groups() == {} and reply.html_groups() == {}
    assert reply.says_everywhere(f"如有疑问，请联系{CONTACT}。")


@pytest.mark.parametrize("decision", ["accepted", "partial", "rejected"])
def test_a_late_report_overridden_by_staff_says_the_staff_verdict(decision):
    findings = [finding("deadline.late", LATE_TEXT), finding("archive.corrupt", CORRUPT),
                finding("form.course_not_listed", NOT_LISTED, "课程甲")]
    message = row(decision, [project("课程甲", "accepted"), project("课程乙", "rejected")], findings,
                  override=decision, override_note="经研究同意受理")
    reply = Reply(message)
    words = {"accepted": "已受理，材料审核通过", "partial": "部分通过（经工作人员复核）",
             "rejected": "未通过（经工作人员复核）"}[decision]  # no 修改后重新报送: the deadline is past
    assert_common(reply, words)
    assert reply.says_everywhere("以上结论为工作人员复核后作出的决定。")
    assert "经研究" not in reply.text  # the staff's note is for staff
    for part in (reply.text, reply.page):
        assert "逾期" not in part and "不予受理" not in part and "重新报送" not in part
        assert RESEND not in part and "截止时间" not in part and "改正方法" not in part  # the deadline is past
    if decision == "accepted":  # the staff decision covers every project
        assert "已受理的项目（共 2 个）：\n  · 课程甲\n  · 课程乙\n" in reply.text
        assert CORRUPT not in reply.text  # an error staff accepted over is not a problem to fix
    elif decision == "rejected":
        assert "  · 课程甲：未通过\n  · 课程乙：未通过\n" in reply.text
    else:
        assert "  · 课程甲：通过\n  · 课程乙：未通过\n" in reply.text
    if decision != "accepted":
        assert "审核中发现的问题（供参考）：" in reply.text
        assert_in_group(reply, MESSAGE_GROUP, CORRUPT, None)  # listed, but no fix: nothing can be resent


def test_a_needs_review_reply_says_received_and_nothing_to_do_and_blames_nobody():
    message = row("needs_review", [], [finding("link.fetch_failed", FETCH_FAILED)])
    reply = Reply(message)
    assert_common(reply, "已收到，正在由工作人员人工核对")
    for part in (reply.text, reply.page):
        assert "已转工作人员人工核对" in part and "并非您的材料有误" in part
        assert "目前您无需任何操作，也无需重新发送" in part and FETCH_FAILED in part
        for blame in ("未通过", "需要修改", "改正方法", "错误", "提醒", RESEND):
            assert blame not in part, blame
    assert reply.text_groups() == {} and reply.html_groups() == {}  # a reason, not a problem of a project
    assert "原因：\n  · " + FETCH_FAILED in reply.text


def test_a_resubmission_names_the_earlier_receipt():
    replaces = finding("duplicate.resubmission", "本项目替换此前报送的同名项目（回执号 WX2024-000001），以本次为准。",
                       "课程甲", replaces="WX2024-000001")
    reply = Reply(row("accepted", [project("课程甲", "accepted")], [replaces]))
    assert reply.verdict == "已受理，材料审核通过"
    assert "本次报送替换此前报送的同名项目，以本次为准：\n  · 课程甲：替换回执号 WX2024-000001 中的同名项目" in reply.text
    assert "课程甲：替换回执号 WX2024-000001 中的同名项目" in reply.page
    assert reply.soup.find("strong", string="WX2024-000001") is not None
    assert reply.text_groups() == {}  # information, not a problem
    # a report stored before the receipt was kept as data: the finding's own words name it
    del replaces["replaces"]
    older = Reply(row("accepted", [project("课程甲", "accepted")], [replaces]))
    assert "  · 课程甲：本项目替换此前报送的同名项目（回执号 WX2024-000001），以本次为准。" in older.text


# ------------------------------------------------------------------ headers, escaping, contact, deadline

def test_headers_and_parts_of_a_reply():
    reply = Reply(row("accepted", [project("课程甲", "accepted")], []))
    mail = reply.mail
    assert mail["From"] == "collect@163.com" and mail["To"] == "unit1@163.com" and mail["Date"]
    assert mail["Auto-Submitted"] == "auto-replied" and mail["X-Auto-Response-Suppress"] == "All"
    assert mail["In-Reply-To"] == "<m1@test.example.cn>" and mail["References"] == "<m1@test.example.cn>"
    assert re.fullmatch(r"<WX2024-000002\.[0-9a-f]{16}@intake\.local>", mail["Message-ID"])  # unfolded
    assert mail.get_content_type() == "multipart/alternative"
    parts = list(mail.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]  # plain text first
    assert [p.get_content_charset() for p in parts] == ["utf-8", "utf-8"]
    assert all(p["Content-Transfer-Encoding"] == "base64" for p in parts)
    assert reply.soup.html["lang"] == "zh-CN"


def test_every_string_a_sender_controls_is_escaped_in_the_html():
    attack = "<script>alert(1)</script>"
    path = f"材料/{attack}.mp4"
    message = row("partial", [project(f"课程{attack}", "rejected"), project("课程甲", "accepted")],
                  [finding("video.too_long", f"视频“{path}”时长为 06:10，超过 05:00 的上限。请剪辑后重新提交。",
                           f"课程{attack}")],
                  subject=f"报送{attack}<img src=x onerror=alert(2)>")
    message.report["unit"] = f"湖北省总工会{attack}"
    reply = Reply(message)
    assert reply.soup.find("script") is None and reply.soup.find("img") is None
    assert "<script" not in reply.html.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in reply.html
    assert "&lt;img src=x onerror=alert(2)&gt;" in reply.html
    for shown in (f"主题：报送{attack}<img src=x onerror=alert(2)>", f"湖北省总工会{attack}", path, f"课程{attack}"):
        assert shown in reply.page and shown in reply.text  # shown as written, never run
    assert f"课程{attack}" in reply.html_groups()


def test_the_contact_is_the_policys_and_intake_contact_overrides_it(tmp_path):
    message = row("rejected", [], [finding("form.missing", FORM_MISSING)])
    assert load_policy("roadshow").contact == CONTACT and load_policy("innovation").contact == CONTACT
    assert_common(Reply(message, load_settings(environ={})), "未通过，需要修改后重新报送")
    ours = "湖北省总工会经济技术部 张老师，电话 027-12345678"
    settings = load_settings(environ={"INTAKE_CONTACT": f"  {ours} "})
    assert settings.contact == ours
    reply = Reply(message, settings)
    assert reply.says_everywhere(f"如有疑问，请联系{ours}。") and "010-68591862" not in reply.text + reply.page
    assert load_settings(environ={"INTAKE_CONTACT": " "}).contact is None  # empty: the policy's
    config = tmp_path / "intake.toml"
    config.write_text('contact = "由配置文件指定的联系人"\n[policy]\ncontact = "由政策覆盖的联系人"\n', encoding="utf-8")
    from_file = load_settings(str(config), environ={})
    policy = load_policy("roadshow", from_file.policy_overrides)
    assert from_file.contact == "由配置文件指定的联系人" and policy.contact == "由政策覆盖的联系人"
    assert Reply(message, Settings(), policy).says_everywhere("如有疑问，请联系由政策覆盖的联系人。")
    with pytest.raises(ConfigError, match="policy.contact"):
        load_policy("roadshow", {"contact": ""})


def test_the_deadline_is_the_policys_in_beijing_time():
    policy = load_policy("roadshow", {"deadline": {"at": "2024-08-15T10:00:00+00:00"}})
    reply = Reply(row("rejected", [], [finding("form.missing", FORM_MISSING)]), policy=policy)
    assert f"截止时间：北京时间 2024年08月15日 18:00:00" in reply.text and DEADLINE_TEXT not in reply.text
    assert "2024年08月15日 18:00:00" in reply.page


def test_every_fixable_code_has_a_hint_and_a_hint_never_repeats_a_fix():
    fixable = {code for code, severity in SEVERITY.items() if severity in ("error", "warning")} - NO_HINT
    assert set(FIX_HINTS) == fixable
    assert all(hint.startswith("请") and hint.endswith("。") for hint in FIX_HINTS.values())
    assert fix_hint("video.too_long", TOO_LONG) is None
    assert fix_hint("archive.corrupt", CORRUPT) == FIX_HINTS["archive.corrupt"]  # 请 only inside “…”
    assert fix_hint("link.fetch_failed", "暂未能自动下载") is None


def test_the_templates_ship_with_the_package():
    templates = sorted((ROOT / "intake" / "notifier" / "templates").glob("*"))
    # the reply's two parts are there; every template (the digest's too) must ship
    assert {"reply.html.j2", "reply.txt.j2"} <= {t.name for t in templates}
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["intake"]
    assert all(any(fnmatch.fnmatch(f"notifier/templates/{t.name}", p) for p in patterns) for t in templates)
    assert any(d.lower().startswith("jinja2") for d in data["project"]["dependencies"])


# ------------------------------------------------------------------ through the daemon's stages

def test_a_resubmission_judged_by_the_daemon_names_the_earlier_receipt(tmp_path, database_url):
    import zipfile

    from intake.samples import make_document, make_form, make_question_bank, make_scan, zip_folder
    from intake.service import open_service, poll_and_process
    from intake.sources import deliver_to_maildir
    from tests.conftest import daemon_settings, simple_mail

    def package(tag: str) -> bytes:  # no video: judged quickly (video.missing), the project recorded
        root = tmp_path / f"pkg-{tag}"
        make_form(root / "报送表.docx", unit="湖北省总工会", courses=["课程甲"])
        make_scan(root / "报送表.pdf")
        make_document(root / "课程甲" / "说明.docx")
        make_question_bank(root / "课程甲" / "题库.xlsx")
        return zip_folder(root, tmp_path / f"{tag}.zip", zipfile.ZIP_STORED).read_bytes()

    folder = tmp_path / "Maildir"
    for n in (1, 2):
        deliver_to_maildir(folder, simple_mail(n, attachments={f"{n}.zip": package(str(n))}),
                           RECEIVED + timedelta(minutes=n))
    service = open_service(daemon_settings(tmp_path, database_url, maildir=folder))
    assert poll_and_process(service) == (2, 2)
    with service.Session() as session:
        first, second = session.scalars(select(Message).order_by(Message.received_at)).all()
        rows = {r.message_id: r for r in session.scalars(select(Outbox)).all()}
    (replaced,) = [f for f in second.report["findings"] if f["code"] == "duplicate.resubmission"]
    assert replaced["replaces"] == first.receipt  # kept as data where the finding is made
    earlier = email.message_from_string(rows[first.id].raw, policy=email.policy.default)
    later = email.message_from_string(rows[second.id].raw, policy=email.policy.default)
    text, html = (later.get_body((kind,)).get_content() for kind in ("plain", "html"))
    assert f"课程甲：替换回执号 {first.receipt} 中的同名项目" in text and first.receipt in html
    assert "替换" not in earlier.get_body(("plain",)).get_content()
    assert later["Subject"] == f"【回执 {second.receipt}】未通过，需要修改后重新报送"  # video.missing
    assert "video.missing" in {f["code"] for f in second.report["findings"]}
    assert "【课程甲】" in text and RESEND in text and DEADLINE_TEXT in text
