"""The daemon's long-lived judging child: many judgements in one fork, each under the
whole budget; one over its budget ends only its own judgement (and its child)."""

from __future__ import annotations

import os
import signal

import pytest

from intake.kernel.budget import Budget, reading
from intake.kernel.judges import JudgingChild
from intake.kernel.report import Report
from intake.kernel.verdicts import Verdict
from tests.test_budget import failing, hungry, sleeping, spinning

BUDGET = Budget(memory_bytes=256 << 20, cpu_seconds=2, wall_seconds=30.0)


def whose(name: str) -> Report:
    reading(f"{name}/材料.docx")
    return Report(Verdict.ACCEPTED, f"{name}:{os.getpid()}", None, None)


@pytest.fixture
def judges():
    child = JudgingChild()
    yield child
    child.close()


def test_one_child_judges_message_after_message(judges):
    pids = {judges.within(BUDGET, "roadshow", None, whose, f"m{n}").policy.split(":")[1] for n in range(5)}
    assert len(pids) == 1 and pids != {str(os.getpid())}
    assert judges.forks == 1


@pytest.mark.parametrize("target, why, label", [
    (hungry, "内存", "项目一/题库.xlsx"),
    (spinning, "处理时间", "项目一/说明.docx"),
])
def test_a_judgement_over_budget_ends_only_itself(judges, target, why, label):
    judges.within(BUDGET, "roadshow", None, whose, "before")
    # spinning needs its two CPU seconds from the start of its own judgement, however
    # long the child ran before
    report = judges.within(BUDGET, "roadshow", None, target)
    (finding,) = report.findings
    assert finding.code == "package.too_complex" and finding.path == label and why in finding.message
    after = judges.within(BUDGET, "roadshow", None, whose, "after")
    assert after.verdict == Verdict.ACCEPTED and after.findings == []
    assert judges.forks == 2  # the child over budget was not reused


def test_the_cpu_budget_is_per_judgement_not_per_child(judges):
    budget = Budget(memory_bytes=256 << 20, cpu_seconds=1, wall_seconds=30.0)
    for n in range(4):  # 4 x 0.4 s of CPU: over one child's second, within each judgement's
        assert judges.within(budget, "roadshow", None, busy, 0.4).verdict == Verdict.ACCEPTED
    assert judges.forks == 1


def busy(seconds: float) -> Report:
    import resource  # only this helper measures its own CPU time

    def used() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    start = used()
    while used() - start < seconds:
        pass
    return Report(Verdict.ACCEPTED, "busy", None, None)


def test_wall_time_errors_and_a_child_killed_while_idle(judges):
    quick = Budget(memory_bytes=256 << 20, cpu_seconds=60, wall_seconds=1.0)
    (finding,) = judges.within(quick, "roadshow", None, sleeping).findings
    assert finding.code == "package.too_complex" and finding.path == "项目一/视频.mp4"
    with pytest.raises(Exception, match="disk is full"):
        judges.within(BUDGET, "roadshow", None, failing)
    pid = int(judges.within(BUDGET, "roadshow", None, whose, "a").policy.split(":")[1])
    os.kill(pid, signal.SIGKILL)  # dies between two judgements: the next one is not blamed
    report = judges.within(BUDGET, "roadshow", None, whose, "b")
    assert report.verdict == Verdict.ACCEPTED and report.policy.split(":")[1] != str(pid)


def test_the_child_goes_when_closed(judges):
    pid = int(judges.within(BUDGET, "roadshow", None, whose, "a").policy.split(":")[1])
    judges.close()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
