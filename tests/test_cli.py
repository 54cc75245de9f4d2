"""The `intake` command as a user runs it: JSON shape, Chinese report, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from intake.samples import build_sample_package, make_form, make_project, make_scan
from tests.conftest import cli_json, run_cli


def complete(tmp_path):
    root = tmp_path / "pkg"
    make_project(root / "01-课程甲", "材料")
    make_form(root / "报送表.docx", courses=["课程甲"])
    make_scan(root / "报送表.pdf")
    return root


def test_json_has_exactly_the_contract_fields(tmp_path):
    status, report = cli_json(complete(tmp_path), "--received-at", "2024-07-30T12:00:00+08:00")
    assert status == 0
    assert list(report) == ["verdict", "policy", "received_at", "unit", "projects", "findings"]
    assert report["verdict"] == "accepted" and report["policy"] == "roadshow"
    assert report["received_at"] == "2024-07-30T12:00:00+08:00"
    assert list(report["projects"][0]) == ["name", "verdict", "files"]
    assert list(report["projects"][0]["files"]) == ["video", "document", "question_bank"]


def test_findings_have_the_contract_fields_and_exit_1(tmp_path):
    status, report = cli_json(build_sample_package(tmp_path))
    assert status == 1 and report["verdict"] == "partial"
    finding = report["findings"][0]
    assert list(finding) == ["code", "severity", "message", "project", "path"]
    assert finding["path"].endswith("数控机床快速对刀法.mp4")  # decoded, relative


def test_late_message_exits_1(tmp_path):
    status, report = cli_json(complete(tmp_path), "--received-at", "2024-07-31T16:30:00Z")
    assert status == 1 and report["findings"][0]["code"] == "deadline.late"


def test_human_report_is_chinese_failures_first(tmp_path):
    proc = run_cli("check", build_sample_package(tmp_path))
    assert proc.returncode == 1
    text = proc.stdout
    assert text.startswith("检查结论：部分通过")
    assert text.index("一、未通过的项目") < text.index("二、通过的项目")
    assert text.index("数控机床快速对刀法（未通过）") < text.index("班组安全隐患排查（通过）")
    assert "video.resolution" in text and "上报单位：湖北省总工会" in text


def test_usage_errors_exit_2(tmp_path):
    assert run_cli("check").returncode == 2
    assert run_cli("check", tmp_path / "absent.zip").returncode == 2
    assert run_cli("check", tmp_path, "--received-at", "yesterday").returncode == 2
    proc = run_cli("check", tmp_path, "--policy", "nonsense")
    assert proc.returncode == 2 and "nonsense" in proc.stderr


def test_config_overrides_a_policy_value(tmp_path):
    root = complete(tmp_path)
    config = tmp_path / "intake.toml"
    config.write_text("[policy.question_bank]\nmin_questions = 25\n", encoding="utf-8")
    status, report = cli_json(root, "--config", config)
    assert status == 1 and [f["code"] for f in report["findings"]] == ["question_bank.too_few"]
    assert "25 道" in report["findings"][0]["message"]


def test_config_deadline_override(tmp_path):
    config = tmp_path / "intake.toml"
    config.write_text('[policy.deadline]\nat = 2024-08-15T18:00:00\n', encoding="utf-8")
    status, report = cli_json(complete(tmp_path), "--config", config, "--received-at", "2024-08-10T09:00:00+08:00")
    assert status == 0 and report["verdict"] == "accepted"


def test_bad_config_value_names_the_setting(tmp_path):
    config = tmp_path / "intake.toml"
    config.write_text('[policy.video]\nmax_seconds = "five minutes"\n', encoding="utf-8")
    proc = run_cli("check", complete(tmp_path), "--config", config)
    assert proc.returncode == 2 and "policy.video.max_seconds" in proc.stderr
    config.write_text('[policy.video]\nmax_minutes = 5\n', encoding="utf-8")
    proc = run_cli("check", complete(tmp_path), "--config", config)
    assert proc.returncode == 2 and "policy.video.max_minutes" in proc.stderr


def test_json_stdout_is_only_the_object(tmp_path):
    proc = run_cli("check", "--json", build_sample_package(tmp_path))
    json.loads(proc.stdout)  # nothing else on stdout


def _eml(tmp_path, body: str, headers: str = "") -> Path:
    import base64

    subject = "=?gb2312?B?" + base64.b64encode("朱镕基同志报送".encode("gbk")).decode() + "?="
    raw = (f"From: a@163.com\r\nSubject: {subject}\r\n{headers}"
           "Received: from x by mx.163.com; Tue, 30 Jul 2024 02:00:05 +0000\r\n"
           "Content-Type: text/plain; charset=gbk\r\nContent-Transfer-Encoding: base64\r\n\r\n"
           + base64.encodebytes(body.encode("gbk")).decode())
    path = tmp_path / "m.eml"
    path.write_bytes(raw.encode("ascii"))
    return path


@pytest.fixture
def netdisk_unreachable(monkeypatch):
    """pan.baidu.com is a closed loopback port: `intake check` fetches the links it finds,
    and fails on our side at once (link.fetch_failed), whatever this machine's network."""
    import socket  # a port that was free a moment ago

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("INTAKE_HOST_MAP", f"pan.baidu.com=http://127.0.0.1:{port}")


def test_eml_json_has_the_message_object(tmp_path, netdisk_unreachable):
    status, report = cli_json(_eml(tmp_path, "链接：https://pan.baidu.com/s/1AbCd 提取码：ab12"))
    assert status == 1 and report["verdict"] == "needs_review"
    assert report["message"]["subject"] == "朱镕基同志报送"
    assert report["message"]["links"] == [{"provider": "baidu", "url": "https://pan.baidu.com/s/1AbCd", "code": "ab12"}]
    assert report["received_at"] == "2024-07-30T10:00:05+08:00"


def test_eml_human_report_shows_the_message(tmp_path):
    proc = run_cli("check", _eml(tmp_path, "你好"))
    assert proc.returncode == 1
    assert "主题：朱镕基同志报送" in proc.stdout and "package.empty" in proc.stdout


def test_ignored_eml_exits_1_and_says_why(tmp_path):
    proc = run_cli("check", _eml(tmp_path, "我在休假", headers="Auto-Submitted: auto-replied\r\n"))
    assert proc.returncode == 1
    assert proc.stdout.startswith("检查结论：已忽略") and "Auto-Submitted" in proc.stdout


def test_innovation_policy_from_the_command_line(tmp_path):
    from intake.samples import make_innovation_result

    root = make_innovation_result(tmp_path / "成果包" / "快速对刀装置", "快速对刀装置").parent
    proc = run_cli("check", "--json", "--policy", "innovation", root)
    assert proc.returncode == 0, proc.stdout
    assert json.loads(proc.stdout)["policy"] == "innovation"
    assert "innovation" in run_cli("policies").stdout


def test_innovation_human_report(tmp_path):
    from intake.samples import make_innovation_result

    root = make_innovation_result(tmp_path / "成果包" / "快速对刀装置", "快速对刀装置").parent
    (root / "快速对刀装置" / "授权书.pdf").unlink()
    proc = run_cli("check", "--policy", "innovation", root)
    assert proc.returncode == 1, proc.stderr
    assert "照片：快速对刀装置/照片1.jpg、" in proc.stdout and "authorization.missing" in proc.stdout


# ------------------------------------------------------------------ hostile mail: a finding and exit 1, never 2

def _write(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "hostile.eml"
    path.write_bytes(raw)
    return path


def test_mime_nested_3000_deep_exits_1_with_message_too_deep(tmp_path):
    from tests.test_messages import deep_mail

    status, report = cli_json(_write(tmp_path, deep_mail(3000)))
    assert status == 1 and report["verdict"] == "rejected"
    assert report["message"]["attachments"] == ["项目材料.zip"]
    too_deep = [f for f in report["findings"] if f["code"] == "message.too_deep"]
    assert len(too_deep) == 1 and "3001 层" in too_deep[0]["message"] and too_deep[0]["severity"] == "error"


def test_attachments_forwarded_too_deep_are_named_in_the_report(tmp_path):
    from tests.test_messages import forwarded_chain

    status, report = cli_json(_write(tmp_path, forwarded_chain(7)))
    assert status == 1 and [f["code"] for f in report["findings"]] == ["message.too_deep"]  # not package.empty
    assert "“项目材料.zip”" in report["findings"][0]["message"]


def test_a_date_in_year_9999_is_treated_as_missing(tmp_path):
    date = "Fri, 31 Dec 9999 23:59:59 -1200"
    raw = (f"From: a@163.com\r\nSubject: x\r\nDate: {date}\r\nReceived: from a by b; {date}\r\n\r\n你好\r\n")
    status, report = cli_json(_write(tmp_path, raw.encode()))
    assert status == 1 and report["received_at"] is None and report["verdict"] == "rejected"
    proc = run_cli("check", tmp_path / "hostile.eml", "--received-at", "9999-12-31T23:59:59-12:00")
    assert proc.returncode == 2 and "--received-at: out of range" in proc.stderr


def test_more_links_than_the_cap_give_one_warning(tmp_path, netdisk_unreachable):
    from intake.parsers.links import MAX_LINKS

    body = "".join(f"https://pan.baidu.com/s/1Share{i:04d} 提取码：{i:04d}\n" for i in range(MAX_LINKS + 50))
    status, report = cli_json(_eml(tmp_path, body))
    assert status == 1 and len(report["message"]["links"]) == MAX_LINKS
    codes = [f["code"] for f in report["findings"]]
    assert codes.count("link.too_many") == 1 and codes.count("link.fetch_failed") == MAX_LINKS
    warning = next(f for f in report["findings"] if f["code"] == "link.too_many")
    assert warning["severity"] == "warning" and f"共有 {MAX_LINKS + 50} 个" in warning["message"]
