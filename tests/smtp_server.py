"""A real SMTP server for the tests: aiosmtpd on loopback, with AUTH (LOGIN and PLAIN,
checking user and password), in plain, implicit-TLS (``ssl``) or STARTTLS mode with a
certificate made here (a CA and a server certificate for 127.0.0.1 and localhost).

It records every connection and every message it accepted, and can be told to answer
a recipient, a DATA or the login with any reply (4xx, 5xx, 535, raw GBK bytes as QQ
does), or to hold a DATA command until the test releases it.

Clients trust the certificate through SSL_CERT_FILE (``server.trust(monkeypatch)`` for
the test's own process, ``server.environment()`` for a subprocess): intake has no setting
that turns verification off.

Use the fixtures from a test module::

    from tests.smtp_server import smtp_certificate, smtp_server  # noqa: F401  (fixtures)

    def test_x(smtp_server):
        server = smtp_server("ssl")            # started; stopped after the test
        ...
        assert [m.message["Subject"] for m in server.messages] == [...]
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

USER = "collect@163.com"
PASSWORD = "abcdEFGH1234"  # stands for a 163 客户端授权码


@dataclass(frozen=True)
class Certificate:
    ca: Path  # what clients trust (SSL_CERT_FILE)
    chain: Path  # the server's certificate
    key: Path


@dataclass
class Connection:
    number: int
    tls: bool  # implicit TLS from the first byte
    starttls: bool = False  # upgraded with STARTTLS
    login: str | None = None  # the user that logged in, if any
    mails: int = 0  # messages accepted on this connection


@dataclass
class Received:
    mail_from: str
    recipients: list[str]
    data: bytes
    connection: int

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Behaviour:
    """What the server answers; tests change it between (or during) deliveries."""

    rcpt: dict[str, str | bytes] = field(default_factory=dict)  # address -> reply instead of 250
    data: list[str | bytes] = field(default_factory=list)  # replies to the next DATAs, in order
    auth: str | bytes | None = None  # a reply to every AUTH instead of checking the password
    # hold each DATA (after its content arrived; it counts as received then) until release()
    hold: bool = False


def make_certificate(folder: Path) -> Certificate:
    """A CA, and a server certificate it signed for 127.0.0.1 and localhost (EC keys: fast)."""
    # cryptography is a test dependency only: imported here, where certificates are made
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "intake test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
          .not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
              .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                          x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                             critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    paths = Certificate(folder / "ca.pem", folder / "server.pem", folder / "server.key")
    paths.ca.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths.chain.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SMTPServer:
    """aiosmtpd on 127.0.0.1: ``security`` is 'none', 'ssl' (implicit TLS) or 'starttls'."""

    def __init__(self, certificate: Certificate, security: str = "none", user: str = USER,
                 password: str = PASSWORD) -> None:
        assert security in ("none", "ssl", "starttls")
        self.certificate, self.security, self.user, self.password = certificate, security, user, password
        self.host, self.port = "127.0.0.1", free_port()
        self.behaviour = Behaviour()
        self.messages: list[Received] = []  # accepted (250 to the end of the data)
        self.refused: list[Received] = []  # whose data got another answer
        self.connections: list[Connection] = []
        self.holding = threading.Event()  # set while a DATA is held
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> SMTPServer:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certificate.chain, self.certificate.key)
        options: dict = {"authenticator": self._authenticate, "auth_require_tls": self.security != "none",
                         "auth_exclude_mechanism": []}
        if self.security == "starttls":
            options.update(tls_context=context, require_starttls=True)
        elif self.security == "ssl":
            options.update(auth_require_tls=False)  # implicit TLS: aiosmtpd cannot tell, it is TLS all along
        self._release.clear()
        self._controller = _RecordingController(self, _Handler(self), hostname=self.host, port=self.port,
                                                ssl_context=context if self.security == "ssl" else None,
                                                ready_timeout=30, **options)
        self._controller.start()
        self._controller.recording = True  # the controller's own readiness probe is not a client
        return self

    def stop(self) -> None:
        self._release.set()  # a held DATA must not keep the loop from stopping
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def release(self) -> None:
        """Let a held DATA be answered (and stop holding the next ones)."""
        self.behaviour.hold = False
        self._release.set()

    def wait_holding(self, timeout: float = 300) -> None:
        assert self.holding.wait(timeout), "no DATA arrived at the server"

    def trust(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """This process's TLS clients trust the test CA (ssl.create_default_context reads it)."""
        monkeypatch.setenv("SSL_CERT_FILE", str(self.certificate.ca))

    def environment(self, **settings: str) -> dict[str, str]:
        """INTAKE_SMTP_* (and SSL_CERT_FILE) for a subprocess that sends through this server."""
        return {"INTAKE_SMTP_HOST": self.host if self.security == "none" else "localhost",
                "INTAKE_SMTP_PORT": str(self.port), "INTAKE_SMTP_SECURITY": self.security,
                "INTAKE_SMTP_USER": self.user, "INTAKE_SMTP_PASSWORD": self.password,
                "SSL_CERT_FILE": str(self.certificate.ca), **settings}

    def settings_values(self) -> dict:
        """The same as Settings(...) keyword values, for tests in this process."""
        return {"smtp_host": "localhost", "smtp_port": self.port, "smtp_security": self.security,
                "smtp_user": self.user, "smtp_password": self.password}

    # ------------------------------------------------------------------ recording

    def _connected(self, tls: bool) -> Connection:
        with self._lock:
            connection = Connection(len(self.connections) + 1, tls)
            self.connections.append(connection)
            return connection

    def _authenticate(self, server: SMTP, session: object, envelope: object, mechanism: str,
                      auth_data: object) -> AuthResult:
        answer = self.behaviour.auth
        if isinstance(answer, bytes):  # raw bytes (QQ answers in GBK): written as they are
            server._writer.write(answer + b"\r\n")  # type: ignore[union-attr]
            return AuthResult(success=False, handled=True)
        if answer is not None:
            return AuthResult(success=False, handled=False, message=answer)
        assert isinstance(auth_data, LoginPassword)
        if (auth_data.login.decode(), auth_data.password.decode()) != (self.user, self.password):
            return AuthResult(success=False, handled=False, message="535 Error: authentication failed")
        record = getattr(server, "record", None)
        if record is not None:
            record.login = auth_data.login.decode()
        return AuthResult(success=True)


class _Handler:
    def __init__(self, owner: SMTPServer) -> None:
        self.owner = owner

    async def handle_RCPT(self, server: SMTP, session: object, envelope: object, address: str,
                          rcpt_options: list[str]) -> str | bytes:
        answer = self.owner.behaviour.rcpt.get(address.lower())
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: object, envelope: object) -> str | bytes:
        owner = self.owner
        record: Connection = getattr(server, "record")
        received = Received(envelope.mail_from, list(envelope.rcpt_tos),  # type: ignore[attr-defined]
                            envelope.original_content, record.number)  # type: ignore[attr-defined]
        if owner.behaviour.hold:
            # the data is in the server's hands: a real server may queue it for delivery
            # before it answers, so a held message counts as received from here on
            with owner._lock:
                owner.messages.append(received)
                record.mails += 1
            owner.holding.set()
            await asyncio.get_running_loop().run_in_executor(None, owner._release.wait)
            owner.holding.clear()
            return "250 OK: queued as intake-test"
        answer = owner.behaviour.data.pop(0) if owner.behaviour.data else "250 OK: queued as intake-test"
        accepted = (answer if isinstance(answer, bytes) else answer.encode()).startswith(b"2")
        with owner._lock:
            (owner.messages if accepted else owner.refused).append(received)
            record.mails += accepted
        return answer


class _RecordingSMTP(SMTP):
    record: Connection | None = None

    def __init__(self, owner: SMTPServer, controller: _RecordingController, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.owner, self.controller = owner, controller

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upgraded = self.transport is not None and self._original_transport is not None
        super().connection_made(transport)
        if upgraded and self.record is not None:
            self.record.starttls = True
        elif self.controller.recording:
            self.record = self.owner._connected(tls=self.owner.security == "ssl")
        else:
            self.record = Connection(0, False)  # the controller's readiness probe


class _RecordingController(Controller):
    def __init__(self, owner: SMTPServer, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.owner = owner
        self.recording = False

    def factory(self) -> SMTP:
        return _RecordingSMTP(self.owner, self, self.handler, **self.SMTP_kwargs)


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return make_certificate(tmp_path_factory.mktemp("smtp-certificate"))


@pytest.fixture
def smtp_server(smtp_certificate: Certificate) -> Iterator[Callable[..., SMTPServer]]:
    """A factory: ``smtp_server("ssl")`` starts a server; every one is stopped afterwards."""
    servers: list[SMTPServer] = []

    def start(security: str = "none", **options: str) -> SMTPServer:
        server = SMTPServer(smtp_certificate, security, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
