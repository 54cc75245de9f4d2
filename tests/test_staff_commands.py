"""What staff read (issue #14 §3): the tables of `intake submissions`, `show`,
`quarantine`, `status` and `outbox` (Chinese, Beijing time, plain when piped, CJK
columns aligned), their --json for scripts, a help line for every command and option,
failures said in Chinese (never a class name) in the tables and the digest, and the
demo's late message carrying its own unit's package."""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import zipfile
from datetime import datetime, timezone
from email import message_from_bytes, policy as email_policy
from pathlib import Path

import docx
import pytest
from rich.cells import cell_len

from intake.cli import build_parser, main
from intake.daemon.digest import gather
from intake.demo import build_demo_maildir
from intake.notifier.digest_render import compose_digest
from intake.service import open_service
from intake.staff_words import staff_reason
from intake.store import Outbox
from tests.conftest import daemon_settings
from tests.digest_seed import seed

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2024, 7, 30, 2, 0, tzinfo=timezone.utc)
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(?:Error|Exception|Rejected|Lost|Uncertain)\b")
ANSI = "\x1b"


# ------------------------------------------------------------------ help and README

def _walk(parser: argparse.ArgumentParser, path: str = "intake"):
    """Every (command path, action) of the parser tree, sub-commands included."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", helps.get(name)
                yield from _walk(sub, f"{path} {name}")
        else:
            yield path, action


def test_every_command_and_option_has_a_help_line():
    missing = []
    for where, item in _walk(build_parser()):
        if isinstance(item, argparse.Action):
            # --debug is repeated after each command name, hidden there on purpose
            if item.help == argparse.SUPPRESS and item.dest == "debug" and where != "intake":
                continue
            if not (item.help or "").strip() or item.help == argparse.SUPPRESS:
                missing.append(f"{where} {'/'.join(item.option_strings) or item.dest}")
        elif not (item or "").strip():
            missing.append(where)
    assert missing == []


def test_the_readme_mentions_every_command():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert len(commands) >= 18
    assert [name for name in commands if f"intake {name}" not in readme] == []


# ------------------------------------------------------------------ failures in Chinese

@pytest.mark.parametrize("recorded, said, kept", [
    ("PermanentError: archive.corrupt 之外的未知错误：7zz exited with 2", "无法自动恢复的错误：", "7zz exited with 2"),
    ("TransientError: imap.163.com: connection timed out", "暂时性故障：", "imap.163.com: connection timed out"),
    ("LoginRejected: INTAKE_IMAP_PASSWORD: rejected", "登录被拒绝：", "INTAKE_IMAP_PASSWORD"),
    ("fetching, attempt 2 of 10: NetworkError: pan.baidu.com: ConnectionResetError: reset",
     "第 2 次下载（共 10 次）失败：网络故障：pan.baidu.com: 连接被重置：", "reset"),
    ("NetworkError: pan.baidu.com: answer cut (IncompleteReadError)", "网络故障：", "answer cut（程序内部错误）"),
    ("gave up after 5 attempts: 451 MI:DMC 当前连接发送的邮件数量超出限制", "已尝试 5 次，不再自动重试：", "451 MI:DMC"),
    ("uncertain: RuntimeError: boom", "发送结果不明：程序内部错误：", "boom"),
    ("3 sent, 0 refused, 1 to retry, 0 uncertain", "已发送 3 封，被拒收 0 封，待重试 1 封，结果不明 0 封", ""),
    ("535 Error: authentication failed", "535 Error: authentication failed", ""),  # the server's own words
])
def test_a_recorded_failure_is_told_without_class_names(recorded, said, kept):
    text = staff_reason(recorded)
    assert said in text and kept in text
    assert not CLASS_NAME.search(text.replace("535 Error:", ""))


@pytest.fixture
def seeded(tmp_path, database_url, monkeypatch):
    """The digest tests' collection (every verdict, a quarantined message, refused,
    held and uncertain mail, a failing mailbox), with the CLI pointed at it."""
    service = open_service(daemon_settings(tmp_path, database_url, staff_emails=["staff@acftu.org"]))
    seed(service.Session, NOW)
    with service.Session.begin() as session:  # a reply retried to the end (its error as recorded)
        session.add(Outbox(message_id=None, kind="alert", recipient="staff@acftu.org", subject="【报送系统告警】测试",
                           raw="", state="failed",
                           last_error="gave up after 5 attempts: TransientError: 421 try again later"))
    for name in [n for n in os.environ if n.startswith("INTAKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("INTAKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INTAKE_DATABASE_URL", database_url)
    return service


def run(capsys, *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_the_digest_says_failures_in_chinese(seeded):
    with seeded.Session() as session:
        digest = gather(session, seeded.settings, seeded.policy, NOW)
    mail = compose_digest(digest, seeded.settings, ["staff@acftu.org"])
    parsed = message_from_bytes(mail.as_bytes(), policy=email_policy.default)
    text, html = (part.get_content() for part in parsed.walk() if part.get_content_type() in ("text/plain", "text/html"))
    for body in (text, html):
        assert not CLASS_NAME.search(body), CLASS_NAME.search(body)
        assert "无法自动恢复的错误：archive.corrupt 之外的未知错误：7zz exited with 2" in body  # the quarantined one
        assert "暂时性故障：imap.163.com: connection timed out" in body  # the mailbox's health
        assert "已尝试 5 次，不再自动重试：暂时性故障：421 try again later" in body  # the refused alert


def test_intake_digest_send_says_failures_in_chinese(seeded, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}, "PYTHONPATH": str(ROOT),
           "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_DATABASE_URL": str(seeded.settings.database_url),
           "INTAKE_STAFF_EMAILS": "staff@acftu.org"}
    done = subprocess.run([sys.executable, "-m", "intake.cli", "digest", "--send"], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode in (0, 1), done.stderr  # 1: the seeded uncertain rows are still unsent
    [written] = (tmp_path / "data" / "outbox").glob("digest-*.eml")
    mail = message_from_bytes(written.read_bytes(), policy=email_policy.default)
    text = mail.get_body(("plain",)).get_content()
    assert "无法自动恢复的错误：" in text and "暂时性故障：imap.163.com" in text
    assert not CLASS_NAME.search(text), CLASS_NAME.search(text)


# ------------------------------------------------------------------ the tables, piped

def _column_starts(lines: list[str], value: str, header: str) -> set[int]:
    """The display column where ``header`` starts, and where ``value`` (a pattern) first
    matches on each row."""
    starts = {cell_len(lines[0][: lines[0].index(header)])}
    for line in lines[2:]:
        found = re.search(value, line)
        assert found, line
        starts.add(cell_len(line[: found.start()]))
    return starts


def test_submissions_is_a_chinese_table_in_beijing_time(seeded, capsys):
    code, out = run(capsys, "submissions")
    assert code == 0 and ANSI not in out
    lines = out.splitlines()
    assert lines[0].split() == ["回执编号", "收到（北京时间）", "结论", "单位", "发件人", "项目（结论）"]
    assert set(lines[1]) == {"─"}
    first = next(line for line in lines if line.startswith("WX2024-000001"))
    assert "2024-07-30 08:00" in first and "通过" in first  # 2 h before 10:00 Beijing time
    for name in ("通过", "部分通过", "未通过", "待人工核对", "已忽略"):
        assert f" {name} " in out
    assert not re.search(r"\b(accepted|partial|rejected|needs_review|ignored)\b", out)
    # wide CJK cells: the sender column starts at one display column on every row
    assert len(_column_starts(lines, r"[\w.]+@[\w.]+|发件地址无法识别", "发件人")) == 1
    assert len(_column_starts(lines, r"20\d\d-\d\d-\d\d \d\d:\d\d", "收到（北京时间）")) == 1
    assert "发件地址无法识别，未回复（From: 湖北省总工会 <a@b.cn>, 办公室 <c@d.cn>）" in out
    assert all(line == line.rstrip() for line in lines)


def test_json_keeps_the_contract_for_scripts(seeded, capsys):
    code, out = run(capsys, "submissions", "--json", "--verdict", "partial")
    assert code == 0
    [item] = json.loads(out)
    assert list(item) == ["receipt", "message_id", "from", "received_at", "verdict", "unit", "projects"]
    assert item["verdict"] == "partial" and item["received_at"] == "2024-07-28T20:00:00+00:00"  # 30 h earlier
    shown = json.loads(run(capsys, "show", "WX2024-000008", "--json")[1])
    assert shown["state"] == "quarantined" and shown["last_error"].startswith("PermanentError: ")  # as recorded
    [quarantined] = json.loads(run(capsys, "quarantine", "--json")[1])
    assert quarantined["receipt"] == "WX2024-000008" and quarantined["attempts"] == 5
    code, out = run(capsys, "status", "--json")
    assert code == 1 and json.loads(out)["mailbox"]["ok"] is False
    assert {row["id"] for row in json.loads(run(capsys, "outbox", "--json")[1])} >= {6, 7}


def test_show_quarantine_status_and_outbox_read_in_chinese(seeded, capsys):
    code, shown = run(capsys, "show", "WX2024-000008")
    assert code == 0 and ANSI not in shown
    assert "报送邮件 WX2024-000008" in shown and re.search(r"状态\s+已隔离", shown)
    assert re.search(r"最近错误\s+无法自动恢复的错误：archive\.corrupt", shown)
    code, listing = run(capsys, "quarantine")
    assert code == 0 and listing.splitlines()[0].split() == ["回执编号", "发件人", "主题", "审核次数", "最近错误"]
    assert "WX2024-000008" in listing and "无法自动恢复的错误" in listing
    code, status = run(capsys, "status")
    assert code == 1  # the mailbox's last poll failed
    assert re.search(r"收件邮箱（最近一次收取）\s+异常\s+2024-07-30 09:59\s+2024-07-30 09:40\s+暂时性故障：", status)
    assert re.search(r"已完成\s+9", status) and re.search(r"已隔离\s+1", status)
    code, outbox = run(capsys, "outbox")
    assert code == 0
    assert re.search(r"WX2024-000010\s+回复\s+被拒收\s+sczgh@qq\.com", outbox)
    assert "已尝试 5 次，不再自动重试：暂时性故障：421 try again later" in outbox
    for text in (shown, listing, status, outbox):
        assert not CLASS_NAME.search(text), CLASS_NAME.search(text)


def test_a_subject_with_rich_markup_is_printed_as_written(seeded, capsys):
    with seeded.Session.begin() as session:
        session.add(Outbox(kind="alert", recipient="staff@acftu.org", subject="[bold]加急[/bold] 报送", raw="",
                           state="held", last_error="over the cap"))
    code, out = run(capsys, "outbox")
    assert code == 0 and "[bold]加急[/bold] 报送" in out


# ------------------------------------------------------------------ the demo

def _form_unit(package: bytes, where: Path) -> str:
    where.mkdir(parents=True)
    (where / "p.zip").write_bytes(package)
    with zipfile.ZipFile(where / "p.zip") as bundle:
        [form] = [name for name in bundle.namelist() if name.endswith("报送表.docx")]
        bundle.extract(form, where)
    text = "\n".join(p.text for p in docx.Document(str(where / form)).paragraphs)
    return re.search(r"上报单位（盖章）：(\S+)", text).group(1)


def _first_folder(package: bytes) -> str:
    """The folder of a zip's first entry, read from its local header (a zip cut short has one too)."""
    assert package[:4] == b"PK\x03\x04"
    size = int.from_bytes(package[26:28], "little")
    return package[30:30 + size].decode("utf-8").split("/")[0]


def test_each_demo_message_carries_its_own_units_package(tmp_path):
    folder = build_demo_maildir(tmp_path / "demo")
    folders, forms = {}, {}
    for path in sorted(p for sub in ("cur", "new") for p in (folder / sub).iterdir()):
        mail = message_from_bytes(path.read_bytes(), policy=email_policy.default)
        sender = mail["From"].addresses[0].display_name
        for part in mail.iter_attachments():
            package = part.get_content()
            folders[sender] = _first_folder(package)
            try:
                forms[sender] = _form_unit(package, tmp_path / path.name)
            except zipfile.BadZipFile:  # the broken one is cut short on purpose
                pass
    assert folders == {"湖北省总工会": "湖北省总工会", "湖南省总工会": "湖南省总工会", "四川省总工会": "四川省总工会"}
    assert forms == {"湖北省总工会": "湖北省总工会", "湖南省总工会": "湖南省总工会"}  # 上报单位 on the form


def test_show_lists_findings_and_each_links_outcome():
    import io

    from intake.staff_tables import print_tables, show_tables

    details = {
        "receipt": "WX2024-000003", "message_id": "<m3@x>", "from": "gdzgh@163.com", "verdict": "needs_review",
        "received_at": "2024-07-30T04:00:00+00:00", "unit": "广东省总工会", "projects": [], "state": "done",
        "attempts": 1, "last_error": None, "fetch_attempts": 10, "next_attempt_at": None, "override": "rejected",
        "override_note": "链接已失效", "subject": "网盘链接", "from_header": "gdzgh@163.com",
        "findings": [{"code": "link.fetch_failed", "severity": "error", "message": "百度网盘链接暂未能自动下载",
                      "project": None, "path": None}],
        "fetch": [{"n": 0, "provider": "baidu", "url": "https://pan.baidu.com/s/1AbC", "outcome": "failed",
                   "folder": None, "findings": [], "reason": "网盘接口限流", "earlier": None,
                   "detail": "NetworkError: pan.baidu.com: answer cut (ReadTimeoutError)",
                   "listing": [{"path": "作品/视频.mp4", "size": 1000}]}],
        "reply": {"state": "queued", "recipient": "gdzgh@163.com", "last_error": None, "sent_at": None},
    }
    out = io.StringIO()
    print_tables(show_tables(details), out)
    text = out.getvalue()
    assert re.search(r"结论\s+待人工核对（人工改判为未通过：链接已失效）", text)
    assert re.search(r"错误\s+link\.fetch_failed\s+—\s+百度网盘链接暂未能自动下载", text)
    assert re.search(r"1\s+https://pan\.baidu\.com/s/1AbC\s+未能下载（我方）\s+网盘接口限流；网络故障：pan\.baidu\.com", text)
    assert "网盘中共 1 个文件" in text and re.search(r"回复\s+待发送，收件人 gdzgh@163\.com", text)
    assert "answer cut（读取超时）" in text and not CLASS_NAME.search(text), text


# ------------------------------------------------------------------ a sender's text in a table

def _hostile_mail() -> bytes:
    """A real zip whose course folder holds a line break and whose video's name an escape
    sequence (clear the screen), and a subject with a bidi override."""
    import io
    from email.message import EmailMessage

    bundle = io.BytesIO()
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("课程\n换行/视频\x1b[2J.mp4", b"x" * 100)
        archive.writestr("课程\n换行/说明.docx", b"not a docx")
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Message-ID"] = "unit1@163.com", "collect@163.com", "<h1@test.example.cn>"
    mail["Subject"] = "报送\u202e材料\u202c 第二行"
    mail.set_content("请查收")
    mail.add_attachment(bundle.getvalue(), maintype="application", subtype="zip", filename="报送.zip")
    return mail.as_bytes()


def test_a_senders_line_breaks_and_escapes_never_reach_the_table(tmp_path, database_url, monkeypatch, capsys):
    from intake.service import poll_and_process
    from intake.sources import deliver_to_maildir

    maildir = tmp_path / "Maildir"
    deliver_to_maildir(maildir, _hostile_mail(), datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc))
    poll_and_process(open_service(daemon_settings(tmp_path, database_url, maildir=maildir)))
    for name in [n for n in os.environ if n.startswith("INTAKE_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("INTAKE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("INTAKE_DATABASE_URL", database_url)

    code, listing = run(capsys, "submissions")
    assert code == 0 and len(listing.splitlines()) == 3  # header, rule, one row
    assert "课程 换行（未通过）" in listing
    code, shown = run(capsys, "show", "WX2024-000001")
    assert code == 0 and ANSI not in shown and "\u202e" not in shown
    assert re.search(r"主题\s+报送\ufffd材料\ufffd 第二行\n", shown)
    video = next(line for line in shown.splitlines() if "video.unreadable" in line)
    assert "课程 换行/视频\ufffd[2J.mp4" in video  # the whole finding on its one line, path included


def test_an_override_is_said_in_chinese(seeded, capsys):
    code, out = run(capsys, "override", "WX2024-000003", "--accept", "--note", "已人工核对网盘材料")
    assert code == 0
    assert out == "WX2024-000003：人工改判为通过，结论现为通过（说明：已人工核对网盘材料）\n"
    code, out = run(capsys, "override", "WX2024-000003", "--reject", "--note", "材料不实")
    assert code == 0 and out.startswith("WX2024-000003：人工改判为未通过，结论现为未通过")
    assert not re.search(r"\b(accepted|rejected)\b", out)
