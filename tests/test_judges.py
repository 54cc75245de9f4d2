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


def stalling(pid_file: str) -> Report:
    """A judgement that neither ends nor reads another file (so only the kernel's
    parent-death signal can end it early)."""
    import time

    with open(pid_file + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(pid_file + ".tmp", pid_file)
    time.sleep(600)
    return Report(Verdict.ACCEPTED, "stalled", None, None)


_DAEMON = """
import sys
from intake.kernel.budget import Budget
from intake.kernel.judges import JudgingChild
from tests.test_judges import stalling
JudgingChild().within(Budget(256 << 20, 600, 900.0), "roadshow", None, stalling, sys.argv[1])
"""


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for a reaper has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _child_outlives_a_killed_daemon(daemon, pid_file, started: str) -> bool:
    """Wait for the judging child named in ``pid_file``, SIGKILL ``daemon`` (no close(),
    no finally, nothing of the parent's runs), and tell whether the child is still alive
    30 s later. Both processes are killed whatever happens."""
    import time

    child = None
    try:
        deadline = time.monotonic() + 120  # a loaded machine starts Python slowly
        while not pid_file.exists():
            assert daemon.poll() is None, daemon.stderr.read() if daemon.stderr else "the daemon ended"
            assert time.monotonic() < deadline, started
            time.sleep(0.05)
        child = int(pid_file.read_text())
        assert child != daemon.pid and _alive(child)
        daemon.kill()
        daemon.wait()
        deadline = time.monotonic() + 30
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        return _alive(child)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()
        if child is not None and _alive(child):
            os.kill(child, signal.SIGKILL)


def test_the_child_dies_with_its_daemon_mid_judgement(tmp_path):
    import subprocess
    import sys

    pid_file = tmp_path / "child.pid"
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    daemon = subprocess.Popen([sys.executable, "-c", _DAEMON, str(pid_file)], cwd=root,
                              env={**os.environ, "PYTHONPATH": root})
    assert not _child_outlives_a_killed_daemon(daemon, pid_file, "the judgement never started"), \
        "the judging child outlived its daemon"


def test_a_child_whose_parent_is_already_gone_exits():
    import multiprocessing

    from intake.kernel.budget import die_with_parent

    # what the child sees when its parent died between the fork and prctl: another parent
    process = multiprocessing.get_context("fork").Process(target=die_with_parent, args=(os.getpid() + 1,))
    process.start()
    process.join(60)
    assert process.exitcode == 1


_LEFT_BEHIND: list[bytearray] = []  # in the child: what a judgement left mapped


def leaving(mib: int) -> Report:
    _LEFT_BEHIND.append(bytearray(mib << 20))  # touched: really mapped
    return whose("leaving")


def headroom() -> Report:
    """The address space this judgement may still map, as the kernel will enforce it."""
    import resource

    from intake.kernel.budget import _address_space

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return Report(Verdict.ACCEPTED, f"{soft - _address_space()}:{os.getpid()}", None, None)


def test_each_judgement_has_its_whole_memory_budget_and_no_more(judges):
    """The limit is set per judgement: 24 MiB left mapped by one judgement (under the
    retiring threshold of 256/8 MiB) are not taken from the next one's budget; and a
    hostile judgement after it is still stopped by the limit."""
    first = int(judges.within(BUDGET, "roadshow", None, headroom).policy.split(":")[0])
    judges.within(BUDGET, "roadshow", None, leaving, 24)
    room, pid = judges.within(BUDGET, "roadshow", None, headroom).policy.split(":")
    assert judges.forks == 1 and pid != str(os.getpid())  # the same child, with 24 MiB more mapped
    for left in (first, int(room)):
        assert BUDGET.memory_bytes - (4 << 20) <= left <= BUDGET.memory_bytes
    (finding,) = judges.within(BUDGET, "roadshow", None, hungry).findings  # 4 GiB asked for
    assert finding.code == "package.too_complex" and "内存" in finding.message


_STALLING_RUN = """
import os, runpy, sys, time
import intake.core

def stalling(raw, *args, **kwargs):  # the judgement of every message: never ends
    path = os.environ["STALL_PID_FILE"]
    with open(path + ".tmp", "w") as fh:
        fh.write(str(os.getpid()))
    os.rename(path + ".tmp", path)
    time.sleep(600)

intake.core.check_message = stalling  # patched before the daemon starts: its judging child runs this
sys.argv = ["intake", "run"]
runpy.run_module("intake.cli", run_name="__main__")
"""


def test_intake_run_killed_mid_judgement_leaves_no_judging_child(tmp_path):
    """The real daemon (`intake run` over a Maildir, SQLite), SIGKILLed while its
    judging child is judging: the child goes too."""
    import subprocess
    import sys
    from datetime import datetime, timezone

    from intake.sources import deliver_to_maildir
    from tests.conftest import simple_mail

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    deliver_to_maildir(tmp_path / "Maildir", simple_mail(1), datetime(2024, 7, 30, 4, 0, tzinfo=timezone.utc))
    pid_file = tmp_path / "child.pid"
    env = {**os.environ, "INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_MAILDIR": str(tmp_path / "Maildir"),
           "INTAKE_DATABASE_URL": f"sqlite:///{tmp_path / 'intake.sqlite3'}", "PYTHONPATH": root,
           "INTAKE_POLL_MINUTES": "60", "STALL_PID_FILE": str(pid_file)}
    daemon = subprocess.Popen([sys.executable, "-c", _STALLING_RUN], env=env, cwd=root,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert not _child_outlives_a_killed_daemon(daemon, pid_file, "the judgement never started"), \
        "the judging child outlived intake run"