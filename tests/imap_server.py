"""A real IMAP server for the tests: Dovecot on loopback, behind a small proxy that
makes it behave like 163 (what production is).

The proxy advertises only 163's capabilities (``IMAP4rev1 XLIST SPECIAL-USE ID
LITERAL+ STARTTLS UIDPLUS``: no IDLE, no MOVE), drops ``[UIDNEXT n]``, and refuses
SELECT/EXAMINE with 163's "Unsafe Login" until the client has sent ID. Dovecot's
settings cannot do these; everything else is Dovecot's own behaviour.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

USER, PASSWORD = "collect@163.com", "client-auth-code"
CAPABILITIES_163 = b"IMAP4rev1 XLIST SPECIAL-USE ID LITERAL+ STARTTLS UIDPLUS"
UNSAFE_LOGIN = b"NO SELECT Unsafe Login. Please contact kefu@188.com for help"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Dovecot:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="intake-dovecot-"))
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.process = None
        uid = os.getuid() or _uid_of("nobody")
        gid = os.getgid() or _gid_of("nogroup")
        for sub in ("mail", "home"):
            (self.dir / sub).mkdir()
            os.chmod(self.dir / sub, 0o777)
        (self.dir / "passwd").write_text(f"{USER}:{{PLAIN}}{PASSWORD}::::::\n")
        (self.dir / "dovecot.conf").write_text(f"""
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{self.dir}/mail/%n
default_login_user = dovenull
default_internal_user = dovecot
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.dir}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={self.dir}/home/%n
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")

    def start(self) -> None:
        self.process = subprocess.Popen(["dovecot", "-F", "-c", str(self.dir / "dovecot.conf")],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    if sock.recv(100).startswith(b"* OK"):
                        return
            except OSError:
                time.sleep(0.1)
        log = (self.dir / "dovecot.log").read_text(errors="replace") if (self.dir / "dovecot.log").exists() else ""
        raise RuntimeError(f"dovecot did not start: {log[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def client(self):
        """A plain client straight to Dovecot, for setting up mailboxes (APPEND)."""
        from imapclient import IMAPClient

        client = IMAPClient("127.0.0.1", port=self.port, ssl=False, timeout=30)
        client.login(USER, PASSWORD)
        return client


def _uid_of(name: str) -> int:
    import pwd

    return pwd.getpwnam(name).pw_uid


def _gid_of(name: str) -> int:
    import grp

    return grp.getgrnam(name).gr_gid


def _hang_up(*sockets: socket.socket, close: bool) -> None:
    """Shut both directions down, so the other forwarding thread ends too."""
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if close:
            sock.close()


def _forward(reader, to: socket.socket | None, size: int) -> None:
    """Pass ``size`` bytes from ``reader`` on to ``to`` (or drop them), 1 MiB at a time."""
    while size > 0:
        data = reader.read(min(size, 1 << 20))
        if not data:
            raise OSError("connection closed inside a literal")
        if to is not None:
            to.sendall(data)
        size -= len(data)


class Proxy163:
    """TCP proxy in front of Dovecot that behaves like imap.163.com (see module doc)."""

    def __init__(self, upstream_port: int):
        self.upstream_port = upstream_port
        self.port = free_port()
        self.listener = socket.create_server(("127.0.0.1", self.port))
        self.closed = False
        self.sessions: list[dict] = []  # what each client did, for assertions
        self.refuse_login: bytes | None = None  # answer LOGIN with "NO <this>" instead of Dovecot
        self.refuse_selects = 0  # answer this many more SELECTs with NO (a busy server), then pass them
        self.cut_slice_at: int | None = None  # cut the next answer for BODY[]<this offset> to half, once
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self.closed = True
        self.listener.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
        except OSError:
            client.close()
            return
        for end in (client, upstream):  # it forwards line by line: without this, Nagle and the
            end.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # peer's delayed ACK add 40 ms a reply
        session = {"id_sent": False, "refused_select": 0, "commands": [], "fetches": []}
        self.sessions.append(session)
        lock = threading.Lock()
        threading.Thread(target=self._downstream, args=(upstream, client, lock), daemon=True).start()
        self._upstream(client, upstream, session, lock)

    def _upstream(self, client, upstream, session, lock) -> None:
        reader = client.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    break
                parts = line.split(b" ", 2)
                command = parts[1].upper() if len(parts) > 1 else b""
                session["commands"].append(command.decode("ascii", "replace"))
                if command == b"ID":
                    session["id_sent"] = True
                if b" FETCH " in line.upper():
                    session["fetches"].append(line.decode("ascii", "replace").strip())
                if command == b"LOGIN" and self.refuse_login is not None:
                    with lock:
                        client.sendall(parts[0] + b" NO " + self.refuse_login + b"\r\n")
                    continue
                if command in (b"SELECT", b"EXAMINE") and self.refuse_selects > 0:
                    self.refuse_selects -= 1
                    with lock:
                        client.sendall(parts[0] + b" NO [UNAVAILABLE] Server busy, try again later\r\n")
                    continue
                if command in (b"SELECT", b"EXAMINE") and not session["id_sent"]:
                    session["refused_select"] += 1
                    with lock:
                        client.sendall(parts[0] + b" " + UNSAFE_LOGIN + b"\r\n")
                    continue
                upstream.sendall(line)
                literal = re.search(rb"\{(\d+)\+?\}\r\n$", line)
                while literal:
                    upstream.sendall(reader.read(int(literal.group(1))))
                    line = reader.readline()
                    upstream.sendall(line)
                    literal = re.search(rb"\{(\d+)\+?\}\r\n$", line)
        except OSError:
            pass
        finally:
            _hang_up(client, upstream, close=True)

    def _downstream(self, upstream, client, lock) -> None:
        reader = upstream.makefile("rb")
        try:
            while True:
                line = reader.readline()
                if not line:
                    break
                literal = re.search(rb"\{(\d+)\}\r\n$", line)
                if literal:
                    size = int(literal.group(1))
                    passed = size
                    if self.cut_slice_at is not None and b"BODY[]<%d> {" % self.cut_slice_at in line:
                        self.cut_slice_at = None  # a short answer, as from a message that changed meanwhile
                        passed = size // 2
                        line = line[:literal.start()] + b"{%d}\r\n" % passed
                    with lock:  # in pieces: a 400 MB message is not held here either
                        client.sendall(line)
                        _forward(reader, client, passed)
                    _forward(reader, None, size - passed)
                    continue
                line = self._rewrite(line)
                if line:
                    with lock:
                        client.sendall(line)
        except OSError:
            pass
        finally:
            _hang_up(client, upstream, close=False)  # the other direction closes them

    @staticmethod
    def _rewrite(line: bytes) -> bytes | None:
        if re.match(rb"\* OK \[UIDNEXT \d+\]", line):
            return None  # 163 sends no UIDNEXT
        if line.startswith(b"* CAPABILITY "):
            return b"* CAPABILITY " + CAPABILITIES_163 + b"\r\n"
        return re.sub(rb"\[CAPABILITY [^\]]*\]", b"[CAPABILITY " + CAPABILITIES_163 + b"]", line)
