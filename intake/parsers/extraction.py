"""Extraction in a sandboxed child process, and the walk that checks what it wrote.

``run_extraction`` runs the backend patool would run (or, for tar, patool itself in
``intake.parsers._extract_worker``) in its own process group under a timeout, a
file-size rlimit and a watched disk cap, and kills the whole group when a limit is
crossed. ``audit_tree`` then removes anything that is not a plain file or folder
inside the output root.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import patoolib

from intake.parsers._extract_worker import EXIT_FILE_TOO_LARGE

# Formats we unpack, and the program patool should use for each (chosen, not guessed:
# unrar-free cannot decrypt and mangles split sets; 7zz in Debian has no RAR codec).
PROGRAMS = {"zip": "7zz", "7z": "7zz", "rar": "unar", "tar": "py_tarfile"}

WORKER = "intake.parsers._extract_worker"  # run as python -m WORKER

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1  # prctl(2)


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""  # "" | "timeout" | "disk" | "failed"
    detail: str = ""
    via: str = ""  # what extracted it: "zipfile" (in this process) or the tool's name


def run_extraction(head: Path, outdir: Path, fmt: str, cap_bytes: int, timeout: float) -> Outcome:
    """Extract with patool in a child process group; kill it at the timeout or the cap."""
    head, outdir = Path(head).resolve(), Path(outdir).resolve()  # the child runs in outdir
    outdir.mkdir(parents=True, exist_ok=True)
    file_limit = max(cap_bytes, 1) + 1

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_limit, file_limit))
        # the judging budget's CPU and memory are the judge's, not the tool's: a large
        # legitimate archive needs more, and the tool has its own timeout and disk cap
        for kind in (resource.RLIMIT_CPU, resource.RLIMIT_AS):
            resource.setrlimit(kind, (resource.getrlimit(kind)[1],) * 2)
        # the tool dies with its watcher: a judgement killed by its budget leaves nothing running
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)

    cmd = extraction_command(head, outdir, fmt)
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        start_new_session=True, preexec_fn=limit_file_size,
        cwd=str(outdir), env=worker_env(),
    )
    started = time.monotonic()
    reason = ""
    while True:
        try:
            _, err = proc.communicate(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if time.monotonic() - started > timeout:
                reason = "timeout"
            elif disk_usage(outdir) > cap_bytes:
                reason = "disk"
            if reason:
                _kill_group(proc)
                _, err = proc.communicate()
                break
    detail = err.decode("utf-8", "replace").strip()[-500:]
    if not reason and disk_usage(outdir) > cap_bytes:
        reason = "disk"
    if not reason and proc.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        reason = "timeout"  # stopped by a limit, not a damaged archive
    if not reason and proc.returncode != 0:
        reason = "disk" if _died_of_file_size(proc.returncode, fmt) else "failed"
    return Outcome(ok=not reason, reason=reason, detail=detail, via=PROGRAMS.get(fmt, fmt))


def extraction_command(head: Path, outdir: Path, fmt: str) -> list[str]:
    """The command patool builds for the chosen backend, run by us under our limits.

    For tar, patool extracts in Python (tarfile with its data filter), so that runs in
    a child Python process (intake.parsers._extract_worker); for the others we run the
    backend patool names directly, which spares a Python start per archive.
    """
    if fmt == "tar":
        return [sys.executable, "-m", WORKER, fmt, PROGRAMS[fmt], str(head), str(outdir)]
    exe = patoolib.find_archive_program(fmt, "extract", program=PROGRAMS[fmt])
    build = patoolib.get_archive_cmdlist_func(exe, "extract", fmt)
    return [str(part) for part in build(str(head), None, exe, -1, False, str(outdir))]


def _died_of_file_size(returncode: int, fmt: str) -> bool:
    """Decided by the exit status alone: the tool's output carries the sender's file
    names, so no substring of it may decide (an entry named "x-25.mp4" once made a
    corrupt archive "too large"). 7-Zip and unar are killed by SIGXFSZ; our Python
    worker (tar) ignores the signal, gets EFBIG and exits with its own code."""
    return returncode == -signal.SIGXFSZ or (fmt == "tar" and returncode == EXIT_FILE_TOO_LARGE)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def worker_env() -> dict[str, str]:
    """The environment for a child ``python -m intake.parsers._extract_worker``: ours,
    with the folder holding this intake package first on PYTHONPATH."""
    return {**os.environ, "PYTHONPATH": _import_root()}


def _import_root() -> str:
    here = str(Path(__file__).resolve().parents[2])  # the folder holding the intake package
    existing = os.environ.get("PYTHONPATH")
    return f"{here}{os.pathsep}{existing}" if existing else here


def disk_usage(root: Path) -> int:
    """Bytes of the files under ``root`` (links not followed; vanished files skipped)."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
            except OSError:
                pass
    return total


def audit_tree(root: Path) -> list[str]:
    """Remove everything under root that is not a plain file or folder inside it.

    Returns the relative paths removed: symlinks, hard links, devices, FIFOs,
    sockets. The tools we use refuse most of these already; this walk is the
    guarantee that a name like photo.jpg is never a link to /etc/passwd.
    """
    removed = []
    real_root = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in list(dirnames) + filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            unsafe = (
                stat.S_ISLNK(info.st_mode)
                or not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode))
                or (stat.S_ISREG(info.st_mode) and info.st_nlink > 1)
                or not os.path.realpath(full).startswith(real_root + os.sep)
            )
            if unsafe:
                removed.append(os.path.relpath(full, root))
                if stat.S_ISDIR(info.st_mode):
                    shutil.rmtree(full, ignore_errors=True)
                else:
                    os.unlink(full)
                if name in dirnames:
                    dirnames.remove(name)
    return removed
