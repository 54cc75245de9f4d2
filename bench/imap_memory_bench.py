"""Benchmark: peak memory of `intake poll --once` over IMAP (Dovecot behind the 163-like
proxy, as the tests use) for one large message, and the same message from a Maildir.

- "45 MB": a real one-project package (form, scan, document, question bank and a real
  H.264 video, lossless noise, stored in the zip) whose zip is about 45 MB: it is judged
  to a verdict.
- "400 MB": the same package with a video of about 290 MB: the message is 400 MiB.
- "8 MiB": the same, just under the size above which a message is fetched in slices:
  the largest message held whole (one FETCH).

Messages are written to disk and APPENDed to Dovecot from the file (never held whole by
this process). `intake poll --once` runs as a child process; a poller reads VmHWM from
/proc/<pid>/status of it and of every process below it every few milliseconds; VmHWM
only grows, so the last reading is the process's peak. Below the poll: the judging child
(a fork of the poll), and under it 7-Zip (7zz) and, for a video whose index is large,
MediaInfo's own limited Python child (shown by its process name). A process is counted
from its exec on: before, it is a copy of its parent, which is counted already.

    .venv/bin/python bench/imap_memory_bench.py [--only 45mb|400mb] [--no-maildir]

bench/daemon_bench.py runs this too (its memory part).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from intake.samples import make_document, make_form, make_question_bank, make_scan  # noqa: E402
from tests.imap_server import PASSWORD, USER, Dovecot, Proxy163  # noqa: E402

TARGET_MIB = 150
FRAME_BYTES = 4_970_000  # one lossless 1080p frame of noise, as x264 -qp 0 makes it (measured)
BOUNDARY = "=====intake-memory-bench====="
ON_TIME = "30-Jul-2024 12:00:00 +0800"  # INTERNALDATE: before the roadshow's deadline


@dataclass
class Figures:
    label: str
    source: str
    message_mib: float
    poll_mib: float = 0.0
    children: dict[str, float] = field(default_factory=dict)  # role -> peak MiB
    seconds: float = 0.0
    verdict: str = "?"
    stored_intact: bool = False


def big_video(path: Path, target_bytes: int) -> Path:
    """A real H.264 video of lossless noise (5 frames a second), padded to ``target_bytes``
    with a top-level MP4 `free` box (which players and MediaInfo skip)."""
    frames = max(1, target_bytes // FRAME_BYTES)
    subprocess.run(["ffmpeg", "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", "1920x1080",
                    "-r", "5", "-i", "/dev/urandom", "-frames:v", str(frames), "-c:v", "libx264", "-preset",
                    "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", str(path)], check=True, stdin=subprocess.DEVNULL)
    padding = target_bytes - path.stat().st_size
    if padding >= 8:
        with open(path, "ab") as out:
            out.write(padding.to_bytes(4, "big") + b"free" + os.urandom(padding - 8))
    return path


def package(work: Path, video_bytes: int) -> Path:
    """A one-project package zip (stored, as large videos are sent) on disk."""
    root = work / f"pkg-{video_bytes}"
    make_form(root / "报送表.docx", courses=["课程甲"])
    make_scan(root / "报送表.pdf")
    make_document(root / "课程甲" / "材料-说明.docx")
    make_question_bank(root / "课程甲" / "材料-题库.xlsx")
    big_video(root / "课程甲" / "材料.mp4", video_bytes)
    target = work / f"package-{video_bytes}.zip"
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as bundle:
        for file in sorted(root.rglob("*")):
            if file.is_file():
                bundle.write(file, file.relative_to(root).as_posix())
    shutil.rmtree(root)
    return target


def write_message(attachment: Path, target: Path, n: int) -> Path:
    """A CRLF message carrying ``attachment`` (base64, written in pieces)."""
    head = "\r\n".join([
        f"From: unit{n}@163.com", "To: collect@163.com", f"Message-ID: <big{n}@bench.example.cn>",
        "Subject: =?utf-8?b?" + base64.b64encode(f"报送 {n}".encode()).decode() + "?=",
        "Date: Tue, 30 Jul 2024 12:00:00 +0800", "MIME-Version: 1.0",
        f'Content-Type: multipart/mixed; boundary="{BOUNDARY}"', "", f"--{BOUNDARY}",
        'Content-Type: text/plain; charset="utf-8"', "Content-Transfer-Encoding: base64", "",
        base64.b64encode("请查收".encode()).decode(), f"--{BOUNDARY}", "Content-Type: application/zip",
        "Content-Disposition: attachment; filename*=utf-8''%E6%9D%90%E6%96%99.zip",
        "Content-Transfer-Encoding: base64", "", ""])
    with open(target, "wb") as out, open(attachment, "rb") as data:
        out.write(head.encode("ascii"))
        for piece in iter(lambda: data.read(57 * 16384), b""):  # whole 76-character lines
            out.write(base64.encodebytes(piece).replace(b"\n", b"\r\n"))
        out.write(f"--{BOUNDARY}--\r\n".encode("ascii"))
    return target


def append_file(port: int, path: Path) -> None:
    """APPEND a message to Dovecot straight from its file (imaplib would hold it, twice)."""
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock, sock.makefile("rb") as reply:
        reply.readline()

        def command(tag: str, text: str) -> bytes:
            sock.sendall(f"{tag} {text}\r\n".encode())
            line = reply.readline()
            while not line.startswith((tag.encode(), b"+")):
                line = reply.readline()
            return line

        assert b"OK" in command("a1", f'LOGIN "{USER}" "{PASSWORD}"')
        assert command("a2", f'APPEND INBOX "{ON_TIME}" {{{path.stat().st_size}}}').startswith(b"+")
        with open(path, "rb") as data:
            sock.sendfile(data)
        sock.sendall(b"\r\n")
        line = reply.readline()
        while not line.startswith(b"a2 "):
            line = reply.readline()
        assert line.startswith(b"a2 OK"), line
        command("a3", "LOGOUT")


def _status(pid: int) -> tuple[str, int] | None:
    """(Name, VmHWM in KiB) of a live process, or None."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    if "VmHWM" not in fields:
        return None  # a zombie: its memory is gone
    return fields["Name"].strip(), int(fields["VmHWM"].split()[0])


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _descendants(pid: int) -> list[tuple[int, int]]:
    """(pid, depth) of every process below ``pid``."""
    found, todo = [], [(pid, 0)]
    while todo:
        current, depth = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.append((child, depth + 1))
                todo.append((child, depth + 1))
    return found


def watched(command: list[str], env: dict[str, str]) -> tuple[int, float, dict[str, float], float]:
    """Run ``command``; (exit status, its own peak MiB, peak MiB of the processes below it by
    role, seconds). A forked Python child is "judging child"; any other by its name."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    own, below = 0, {}
    while process.poll() is None:
        status = _status(process.pid)
        if status:
            own = max(own, status[1])
            for pid, depth in _descendants(process.pid):
                child = _status(pid)
                if depth > 1 and _cmdline(pid) == _cmdline(process.pid):
                    continue  # forked by the judging child, not yet exec'd: a copy of it
                if child and child[1] > 0:  # 0: between fork and exec
                    role = "judging child" if depth == 1 and child[0].startswith("python") else child[0]
                    before = below.get(pid, (role, 0))[1]
                    # VmHWM only grows within one process image: a lower reading is the
                    # program it exec'd (the copy of its parent before exec is not its own)
                    below[pid] = (role, child[1] if child[1] < before else max(before, child[1]))
        time.sleep(0.005)
    seconds = time.perf_counter() - start
    if process.returncode != 0:
        sys.stderr.write(process.stderr.read().decode(errors="replace")[-3000:])
    process.stderr.close()
    roles: dict[str, float] = {}
    for role, kib in below.values():
        roles[role] = max(roles.get(role, 0.0), kib / 1024)
    return process.returncode, own / 1024, roles, seconds


def _poll_env(work: Path, **values: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("INTAKE_")}
    env.update({"PYTHONPATH": str(ROOT), "INTAKE_DATA_DIR": str(work / "data"),
                "INTAKE_DATABASE_URL": f"sqlite:///{work / 'intake.sqlite3'}", **values})
    return env


def _outcome(work: Path, message: Path, figures: Figures) -> None:
    with sqlite3.connect(work / "intake.sqlite3") as db:
        rows = db.execute("SELECT verdict, state, raw_path FROM messages").fetchall()
    if len(rows) != 1:
        figures.verdict = f"{len(rows)} messages recorded"
        return
    verdict, state, raw_path = rows[0]
    figures.verdict = f"{verdict} ({state})"
    figures.stored_intact = _sha256(Path(raw_path)) == _sha256(message)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for piece in iter(lambda: fh.read(1 << 20), b""):
            digest.update(piece)
    return digest.hexdigest()


def over_imap(label: str, message: Path, work: Path) -> Figures:
    work.mkdir(parents=True)
    server = Dovecot()
    server.start()
    proxy = Proxy163(server.port)
    try:
        append_file(server.port, message)
        env = _poll_env(work, INTAKE_IMAP_HOST="127.0.0.1", INTAKE_IMAP_PORT=str(proxy.port), INTAKE_IMAP_SSL="false",
                        INTAKE_IMAP_USER=USER, INTAKE_IMAP_PASSWORD=PASSWORD)
        figures = Figures(label, "IMAP", message.stat().st_size / (1 << 20))
        code, figures.poll_mib, figures.children, figures.seconds = watched(
            [sys.executable, "-m", "intake.cli", "poll", "--once"], env)
    finally:
        proxy.close()
        server.remove()
    if code == 0:
        _outcome(work, message, figures)
    else:
        figures.verdict = f"exit {code}"
    shutil.rmtree(work / "data", ignore_errors=True)
    return figures


def from_maildir(label: str, message: Path, work: Path) -> Figures:
    folder = work / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (folder / sub).mkdir(parents=True)
    delivered = folder / "new" / "1722312000.M1P1.bench"
    try:
        os.link(message, delivered)
    except OSError:  # another file system
        shutil.copy(message, delivered)
    os.utime(delivered, (1722312000, 1722312000))  # 2024-07-30 12:00 Beijing: on time
    figures = Figures(label, "Maildir", message.stat().st_size / (1 << 20))
    code, figures.poll_mib, figures.children, figures.seconds = watched(
        [sys.executable, "-m", "intake.cli", "poll", "--once"], _poll_env(work, INTAKE_MAILDIR=str(folder)))
    if code == 0:
        _outcome(work, message, figures)
    else:
        figures.verdict = f"exit {code}"
    shutil.rmtree(work / "data", ignore_errors=True)
    return figures


def messages(work: Path, only: str | None) -> list[tuple[str, Path]]:
    made = []
    if only in (None, "8mib"):  # just under the slicing threshold (intake.sources.imap.STREAM_ABOVE)
        video = (8 << 20) * 57 // 78 - (120 << 10)
        made.append(("8 MiB message", write_message(package(work, video), work / "m8.eml", 3)))
    if only in (None, "45mb"):
        made.append(("45 MB attachment", write_message(package(work, (45 << 20) - (200 << 10)), work / "m45.eml", 1)))
    if only in (None, "400mb"):
        # 400 MiB of message: base64 takes 4/3 and a CRLF per 76 characters
        video = (400 << 20) * 57 // 78 - (1 << 20)
        made.append(("400 MiB message", write_message(package(work, video), work / "m400.eml", 2)))
    return made


def measure_all(work: Path, only: str | None = None, maildir: bool = True) -> list[Figures]:
    results = []
    for n, (label, message) in enumerate(messages(work, only)):
        results.append(over_imap(label, message, work / f"imap-{n}"))
        if maildir:
            results.append(from_maildir(label, message, work / f"maildir-{n}"))
        message.unlink()
    return results


def table(results: list[Figures]) -> str:
    lines = [f"peak RSS (VmHWM) of `intake poll --once`, one message (target <= {TARGET_MIB} MiB over IMAP)",
             f"{'message':<18} {'source':<8} {'size MiB':>8} {'poll MiB':>8} {'judging child':>13} "
             f"{'other children':<22} {'s':>6}  stored intact, verdict"]
    for f in results:
        others = ", ".join(f"{role} {mib:.0f}" for role, mib in sorted(f.children.items()) if role != "judging child")
        lines.append(f"{f.label:<18} {f.source:<8} {f.message_mib:8.1f} {f.poll_mib:8.0f} "
                     f"{f.children.get('judging child', 0):13.0f} {others or '-':<22} {f.seconds:6.1f}  "
                     f"{'yes' if f.stored_intact else 'NO'}, {f.verdict}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", choices=["8mib", "45mb", "400mb"])
    parser.add_argument("--no-maildir", action="store_true", help="IMAP only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="intake-memory-") as tmp:
        print(table(measure_all(Path(tmp), args.only, not args.no_maildir)))


if __name__ == "__main__":
    main()
