"""Every judgement runs in a child process under a budget (memory, CPU, wall time): a
child over it is stopped by the kernel or by its parent, and the package is judged
package.too_complex, naming the file in hand; it is never a retry."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select

from intake.kernel.budget import Budget, reading, within
from intake.kernel.errors import TransientError
from intake.kernel.policy import load_policy
from intake.kernel.report import Report
from intake.kernel.verdicts import Verdict
from intake.service import open_service, poll_and_process
from intake.sources import deliver_to_maildir
from intake.states import State
from intake.store import Message
from tests.conftest import daemon_settings, run_cli, simple_mail

BUDGET = Budget(memory_bytes=256 << 20, cpu_seconds=2, wall_seconds=30.0)


def hungry() -> Report:
    reading("项目一/题库.xlsx")
    hoard = [bytearray(64 << 20) for _ in range(64)]  # 4 GiB, far over the budget
    return Report(Verdict.ACCEPTED, f"{len(hoard)}", None, None)


def spinning() -> Report:
    reading("项目一/说明.docx")
    while True:
        pass


def sleeping() -> Report:
    reading("项目一/视频.mp4")
    time.sleep(3600)
    return Report(Verdict.ACCEPTED, "never", None, None)


def failing() -> Report:
    raise TransientError("the disk is full")


def fine(name: str) -> Report:
    return Report(Verdict.ACCEPTED, name, None, "湖北省总工会")


@pytest.mark.parametrize("target, why, label", [
    (hungry, "内存", "项目一/题库.xlsx"),
    (spinning, "处理时间", "项目一/说明.docx"),
])
def test_the_kernel_stops_a_child_over_its_memory_or_cpu(target, why, label):
    started = time.monotonic()
    report = within(BUDGET, "roadshow", None, target)
    assert report.verdict == Verdict.REJECTED
    (finding,) = report.findings
    assert finding.code == "package.too_complex" and finding.path == label
    assert why in finding.message and label in finding.message and "另存为标准格式后重新发送" in finding.message
    assert time.monotonic() - started < BUDGET.wall_seconds  # the child's own limit, not the wall clock


def test_the_parent_stops_a_child_past_its_wall_time():
    report = within(Budget(memory_bytes=256 << 20, cpu_seconds=60, wall_seconds=1.0), "roadshow", None, sleeping)
    (finding,) = report.findings
    assert finding.code == "package.too_complex" and finding.path == "项目一/视频.mp4"


def test_a_childs_report_and_errors_come_back_as_they_were():
    assert within(BUDGET, "roadshow", None, fine, "路演").policy == "路演"
    with pytest.raises(TransientError, match="disk is full"):
        within(BUDGET, "roadshow", None, failing)  # not the package's fault: retried by the daemon


def test_intake_check_judges_under_the_policys_budget(tmp_path):
    from intake.samples import build_sample_package

    package = build_sample_package(tmp_path / "sample")
    config = tmp_path / "tight.toml"
    # 1 MiB beyond what the child starts with: no real judgement fits in that
    config.write_text("[policy.budget]\nmemory_mb = 1\n")
    proc = run_cli("check", "--json", package, "--config", config)
    assert proc.returncode == 1, proc.stderr  # judged (rejected), never an internal error
    report = json.loads(proc.stdout)
    assert [f["code"] for f in report["findings"]] == ["package.too_complex"]


def test_the_daemon_judges_the_next_message_while_one_is_stopped(tmp_path, monkeypatch):
    import intake.core

    folder = tmp_path / "Maildir"
    on_time = datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc)
    deliver_to_maildir(folder, simple_mail(1, subject="炸弹"), on_time)
    deliver_to_maildir(folder, simple_mail(2, subject="正常"), on_time + timedelta(minutes=1))
    settings = daemon_settings(tmp_path, f"sqlite:///{tmp_path / 'db.sqlite3'}", maildir=folder)
    service = open_service(settings)
    service.policy = load_policy("roadshow", {"budget": {"wall_seconds": 5}})
    check_message = intake.core.check_message

    def bomb_or_not(raw, *args, **kwargs):
        if b"<m1@test.example.cn>" in bytes(raw[:4000]):  # the first message never ends
            sleeping()
        return check_message(raw, *args, **kwargs)

    monkeypatch.setattr(intake.core, "check_message", bomb_or_not)
    assert poll_and_process(service) == (2, 2)
    with service.Session() as session:
        first, second = session.scalars(select(Message).order_by(Message.id)).all()
    assert first.state == State.DONE and first.verdict == "rejected" and first.attempts == 1  # judged, not retried
    assert [f["code"] for f in first.report["findings"]] == ["package.too_complex"]
    assert second.state == State.DONE and second.verdict == "rejected"  # the next one judged as usual
    assert "package.too_complex" not in [f["code"] for f in second.report["findings"]]


def test_extraction_tools_do_not_inherit_the_judges_cpu_and_memory_limits(tmp_path):
    import subprocess

    from intake.parsers.extraction import run_extraction

    # a real archive whose unpacking reports the limits the tool itself runs under
    script = tmp_path / "limits.sh"
    script.write_text("#!/bin/sh\ngrep -E 'Max (cpu time|address space)' /proc/self/limits >&2\nexit 1\n")
    script.chmod(0o755)

    def probe() -> Report:
        import intake.parsers.extraction as extraction

        extraction.extraction_command = lambda head, outdir, fmt: [str(script)]  # type: ignore[assignment]
        outcome = run_extraction(tmp_path / "a.zip", tmp_path / "out", "zip", 1 << 20, 60)
        return Report(Verdict.ACCEPTED, outcome.detail, None, None)

    (tmp_path / "a.zip").write_bytes(b"PK\x05\x06" + bytes(18))
    limits = within(Budget(memory_bytes=256 << 20, cpu_seconds=30, wall_seconds=60.0), "roadshow", None, probe).policy
    assert "Max cpu time" in limits and "Max address space" in limits
    assert all(line.split()[3] == "unlimited" for line in limits.splitlines()), limits
