"""deploy/intake.service: systemd accepts it as it is, and it keeps the hardening the
issue asks for (its own user, restart on failure, a read-only system but the data
folder, a memory limit with room for the largest package, no timer)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from intake.kernel.policy import available_policies, load_policy

ROOT = Path(__file__).resolve().parents[1]
UNIT = ROOT / "deploy" / "intake.service"
INSTALLED_INTAKE = "/opt/intake/.venv/bin/intake"  # where deploy/README.md installs it
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed (Debian package systemd; bootstrap --test adds it)")


def directives(text: str) -> dict[str, list[str]]:
    """Every `Key=value` of the unit's [Service] section, in order, per key."""
    found: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith(("#", ";")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def one(found: dict[str, list[str]], key: str) -> str:
    values = found.get(key, [])
    assert len(values) == 1, f"{key}: expected once in [Service], found {values}"
    return values[0]


def verify(unit_text: str, folder: Path) -> str:
    """`systemd-analyze verify` on the unit with its Exec lines pointing at this venv's
    `intake` (verify checks that the binary exists); everything else is the real file.
    Returns what it said: it exits 0 over unknown keys and bad values, so words count."""
    intake = Path(sys.executable).with_name("intake")
    assert intake.exists(), f"{intake}: the project is not installed in this environment"
    copy = folder / "intake.service"  # the name matters: verify reads the unit by its file name
    copy.write_text(unit_text.replace(INSTALLED_INTAKE, str(intake)), encoding="utf-8")
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", "--man=no", str(copy)],
                          capture_output=True, text=True, timeout=120)
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}".strip()


@needs_systemd_analyze
def test_systemd_accepts_the_unit_without_a_word(tmp_path):
    text = UNIT.read_text(encoding="utf-8")
    assert text.count(INSTALLED_INTAKE) == 2  # ExecStartPre and ExecStart: nothing else is replaced
    assert verify(text, tmp_path) == "exit 0"


@needs_systemd_analyze
@pytest.mark.parametrize("mistake, complaint", [
    (("NoNewPrivileges=yes", "NoNewPrivilege=yes"), "Unknown key"),
    (("MemoryMax=", "MemoryMax=lots"), "Invalid memory limit"),
    ((f"ExecStart={INSTALLED_INTAKE}", "ExecStart=/nonexistent/intake"), "not executable"),
])
def test_the_check_catches_a_misspelt_directive_a_bad_value_and_a_missing_binary(tmp_path, mistake, complaint):
    text = UNIT.read_text(encoding="utf-8")
    assert mistake[0] in text
    said = verify(text.replace(mistake[0], mistake[1], 1), tmp_path)
    assert complaint in said and said != "exit 0"


def test_the_daemon_runs_as_its_own_user_and_restarts_after_a_failure():
    found = directives(UNIT.read_text(encoding="utf-8"))
    assert one(found, "User") not in ("", "root", "0")
    assert one(found, "Group") not in ("", "root", "0")
    assert "DynamicUser" not in found  # a fixed user owns the data folder across restarts
    assert one(found, "Restart") == "on-failure"
    assert one(found, "ExecStart") == f"{INSTALLED_INTAKE} run"
    assert one(found, "ExecStartPre") == f"{INSTALLED_INTAKE} db upgrade"
    # SIGTERM to the daemon alone, so that it can finish the step in hand
    assert one(found, "KillMode") == "mixed"


def test_only_the_data_folder_is_writable_and_the_rest_is_hardened():
    found = directives(UNIT.read_text(encoding="utf-8"))
    environment = " ".join(found.get("Environment", []))
    data_dir = re.search(r"INTAKE_DATA_DIR=(\S+)", environment)
    assert data_dir, "the unit names the data folder (INTAKE_DATA_DIR)"
    assert one(found, "ReadWritePaths").split() == [data_dir.group(1)]
    assert data_dir.group(1) == f"/var/lib/{one(found, 'StateDirectory')}"  # created for the user
    for key, wanted in {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes",
                        "ProtectHome": "yes", "PrivateDevices": "yes", "RestrictSUIDSGID": "yes",
                        "CapabilityBoundingSet": ""}.items():
        assert one(found, key) == wanted, key
    # secrets come from an environment file, not from the unit
    assert one(found, "EnvironmentFile").startswith("/etc/intake/")
    assert "PASSWORD" not in environment.upper()


def memory_bytes(value: str) -> int:
    parsed = re.fullmatch(r"(\d+)([KMGT]?)", value)
    assert parsed, f"MemoryMax={value}: a size such as 3G"
    return int(parsed.group(1)) << (10 * " KMGT".index(parsed.group(2) or " "))


def test_the_memory_limit_leaves_room_for_the_largest_judgement():
    found = directives(UNIT.read_text(encoding="utf-8"))
    limit = memory_bytes(one(found, "MemoryMax"))
    largest_budget = max(load_policy(name).budget.memory_bytes for name in available_policies())
    # the daemon and the judging child it forks (about 0.1 GiB each, see README "Memory
    # over IMAP") plus the unpacking tools, which the judging budget does not bound
    assert limit >= largest_budget + (1 << 30), f"MemoryMax {limit >> 20} MiB"


def test_no_timer_the_daemon_schedules_itself():
    assert not list((ROOT / "deploy").glob("*.timer"))
    text = UNIT.read_text(encoding="utf-8")
    assert "OnCalendar" not in text and "WantedBy=multi-user.target" in text
