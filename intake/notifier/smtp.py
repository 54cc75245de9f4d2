"""SMTP delivery (smtplib): 163 in production (``smtp.163.com``, implicit TLS on 465).

- Security: ``ssl`` (implicit TLS), ``starttls`` or ``none`` (loopback tests only); TLS
  is always verified with ``ssl.create_default_context()`` (a test trusts its own
  certificate through SSL_CERT_FILE; there is no setting that turns verification off).
- Login with INTAKE_SMTP_USER / INTAKE_SMTP_PASSWORD (for 163 the 客户端授权码). The
  envelope sender and the From address are always the login account: 163 answers
  ``553 Local user only`` otherwise. INTAKE_SMTP_FROM gives the display name; an
  address in it other than the login is replaced when mail is sent (said at start-up).
- One connection serves a batch. Every answer is classified here: a refused login is
  ``LoginRejected`` (naming INTAKE_SMTP_PASSWORD), after one try with one mechanism
  (PLAIN, else LOGIN: each wrong try counts at 163, which blocks the address after too
  many); 4xx, timeouts and dropped connections are ``TransientError``
  (``ConnectionLost`` when the connection is gone); a refused MAIL FROM is about our
  account, not the mail: ``SenderRefused``; 5xx for a recipient or the data is
  ``PermanentError`` carrying the server's answer, decoded leniently (QQ answers in raw
  GBK). Recipients refused while others take the mail are returned (``Refusals``). When
  all of the data was sent but the answer to it never came, the mail may have arrived:
  ``DeliveryUncertain``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import smtplib
import socket
import ssl
import threading
import time
from email.headerregistry import Address
from email.parser import Parser
from email.policy import SMTP as SMTP_POLICY
from email.utils import parseaddr
from types import TracebackType

from intake.kernel.errors import ConfigError, LoginRejected, PermanentError, TransientError, unverified_certificate
from intake.notifier.transport import ConnectionLost, DeliveryUncertain, Outgoing, Refusals, SenderRefused
from intake.settings import Settings

TIMEOUT = 60.0  # seconds for each read or write on the connection
PLAIN_PORT_REASONS = ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE",
                      "TLSV1_ALERT_PROTOCOL_VERSION", "UNSUPPORTED_PROTOCOL")
IMPLICIT_TLS_PORTS = (465, 994)  # SMTP over TLS from the first byte (RFC 8314); 994: 163's other one
SECURITY_HINT = "INTAKE_SMTP_SECURITY=ssl for a port that speaks TLS from the first byte (163: 465)"
SENDER_HINT = ("the account may not be allowed to send over SMTP (163: enable SMTP in the mailbox settings) or "
               "has spent its daily quota; mail waits an hour and is not charged an attempt")
# after a refused login this process does not try the same login again for this long
# (163 blocks an address after too many failed logins); a changed password is tried at once
LOGIN_PAUSE_SECONDS = 600.0
_refused_logins: dict[str, tuple[float, str]] = {}  # login key -> (monotonic time, the refusal)
_refused_lock = threading.Lock()
LOGIN_HINT = ("check INTAKE_SMTP_USER and INTAKE_SMTP_PASSWORD (for 163: the 客户端授权码, not the web "
              "password, with SMTP enabled in the mailbox settings)")


def answer_text(code: int, answer: bytes | str) -> str:
    """The server's answer on one line. Decoded leniently: UTF-8, else GB18030 (QQ and
    others answer in raw GBK), never an exception."""
    if isinstance(answer, str):
        text = answer
    else:
        try:
            text = answer.decode("utf-8")
        except UnicodeDecodeError:
            text = answer.decode("gb18030", errors="replace")
    return f"{code} {' '.join(text.split())}"[:500]


def display_name(settings: Settings) -> str:
    """INTAKE_SMTP_FROM's display name: the name of ``名称 <addr>``, or the whole value
    when it holds no address."""
    configured = (settings.smtp_from or "").strip()
    name, address = parseaddr(configured)
    return name if "@" in address else ("" if "@" in configured else configured)


def from_mismatch(settings: Settings) -> str | None:
    """A line for start-up when INTAKE_SMTP_FROM names an address other than the login."""
    address = parseaddr(settings.smtp_from or "")[1]
    if "@" in address and settings.smtp_user and address.lower() != settings.smtp_user.lower():
        return (f"INTAKE_SMTP_FROM: {address} is not the login account {settings.smtp_user}; mail is sent "
                f"from {settings.smtp_user} (163 refuses any other sender with 553), with the display name kept")
    return None


class SMTPTransport:
    status_name: str | None = "smtp"
    via = "smtp"
    repeatable = False  # a mail the server may have taken is never sent again unasked

    def __init__(self, settings: Settings, timeout: float = TIMEOUT) -> None:
        if not settings.smtp_user:
            raise ConfigError("INTAKE_SMTP_USER: needed to send mail over SMTP (the full address, "
                              "for example collect@163.com; it defaults to INTAKE_IMAP_USER)")
        if settings.smtp_security != "ssl" and settings.smtp_port in IMPLICIT_TLS_PORTS:
            raise ConfigError(f"INTAKE_SMTP_SECURITY: port {settings.smtp_port} speaks TLS from the first byte, "
                              f"so {settings.smtp_security} cannot work there; set {SECURITY_HINT}")
        self.settings = settings
        self.timeout = timeout
        self.name = (f"SMTP {settings.smtp_host}:{settings.smtp_port} ({settings.smtp_security}) "
                     f"as {settings.smtp_user}")

    def open(self) -> SMTPConnection:
        return SMTPConnection(self.settings, self.timeout)


class SMTPConnection:
    """One logged-in connection (a context manager): ``send`` delivers one mail."""

    def __init__(self, settings: Settings, timeout: float) -> None:
        self.settings = settings
        self.timeout = timeout
        self.login = settings.smtp_user or ""
        self.client: smtplib.SMTP | None = None
        self.broken = False  # a reset after a refusal failed: the next mail must not start

    def __enter__(self) -> SMTPConnection:
        key = _login_key(self.settings)
        with _refused_lock:
            refused = _refused_logins.get(key)
        if refused is not None and time.monotonic() - refused[0] < LOGIN_PAUSE_SECONDS:
            raise LoginRejected(f"{refused[1]} (not tried again for {LOGIN_PAUSE_SECONDS / 60:.0f} minutes "
                                "with the same password)")
        self.client = self._connected()
        try:
            self._log_in(self.client)
        except LoginRejected as err:
            with _refused_lock:
                _refused_logins[key] = (time.monotonic(), str(err))
            self.client.close()
            raise
        except BaseException:
            self.client.close()
            raise
        with _refused_lock:
            _refused_logins.pop(key, None)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.client is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.client.quit()
            self.client.close()

    # ------------------------------------------------------------------ connecting

    def _where(self) -> str:
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

    def _connected(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        try:
            if s.smtp_security == "ssl":
                return smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=self.timeout, context=context)
            client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=self.timeout)
            if s.smtp_security == "starttls":
                try:
                    self._start_tls(client, context)
                except BaseException:
                    client.close()
                    raise
            return client
        except ssl.SSLCertVerificationError as err:  # never advise turning TLS off for this
            raise unverified_certificate("INTAKE_SMTP_HOST", self._where(),
                                       err.verify_message or err.reason) from None
        except ssl.SSLError as err:
            if (err.reason or "") not in PLAIN_PORT_REASONS:
                raise TransientError(f"SMTP {self._where()}: TLS failed ({err.reason or err})") from err
            raise ConfigError(
                f"INTAKE_SMTP_SECURITY / INTAKE_SMTP_PORT: TLS with {self._where()} failed ({err.reason}); the port "
                "may be a plain one (163: ssl on port 465; starttls is for a plain port that offers it)") from None
        except smtplib.SMTPResponseException as err:  # a greeting or STARTTLS answer other than 220
            raise TransientError(f"SMTP {self._where()} refused the connection: "
                                 f"{answer_text(err.smtp_code, err.smtp_error)}") from err
        except (smtplib.SMTPException, OSError) as err:  # refused, unreachable, timed out, dropped
            if not _greeting_timed_out(err) or s.smtp_security == "ssl":
                raise TransientError(f"SMTP {self._where()}: cannot connect ({_said(err)})") from err
            if self._speaks_tls(context):  # it waits for our TLS hello, we for its greeting
                raise ConfigError(f"INTAKE_SMTP_SECURITY: {self._where()} speaks TLS from the first byte, "
                                  f"not {s.smtp_security}; set {SECURITY_HINT}") from None
            raise TransientError(f"SMTP {self._where()}: connected, but no greeting came ({_said(err)}); "
                                 f"if the port expects TLS at once, set {SECURITY_HINT}") from err

    def _speaks_tls(self, context: ssl.SSLContext) -> bool:
        """True when the port completes (or starts: a certificate we do not trust) a TLS
        handshake, so that its silence was a TLS server waiting for our hello."""
        host, port = self.settings.smtp_host, self.settings.smtp_port
        try:
            with socket.create_connection((host, port), timeout=self.timeout) as raw:
                with context.wrap_socket(raw, server_hostname=host):
                    return True
        except ssl.SSLCertVerificationError:
            return True
        except (ssl.SSLError, OSError):
            return False

    def _start_tls(self, client: smtplib.SMTP, context: ssl.SSLContext) -> None:
        client.ehlo()
        if not client.has_extn("starttls"):
            raise ConfigError(f"INTAKE_SMTP_SECURITY: {self._where()} offers no STARTTLS; use ssl "
                              "(163: port 465) or a server that offers STARTTLS")
        client.starttls(context=context)

    def _log_in(self, client: smtplib.SMTP) -> None:
        s = self.settings
        try:
            client.ehlo_or_helo_if_needed()
            mechanism = self._mechanism(client)
            client.user, client.password = self.login, s.smtp_password or ""
            # one AUTH with one mechanism: smtplib's login() tries every one offered, and
            # each wrong try counts against the address at 163
            client.auth(mechanism, getattr(client, f"auth_{mechanism.lower()}"))
        except smtplib.SMTPAuthenticationError as err:
            said = answer_text(err.smtp_code, err.smtp_error)
            if 400 <= err.smtp_code < 500:  # 454: a temporary authentication failure (RFC 4954)
                raise TransientError(f"SMTP {self._where()}: login refused for the moment ({said})") from None
            raise LoginRejected(f"INTAKE_SMTP_PASSWORD: {s.smtp_host} rejected the login of {self.login} "
                                f"({said}); {LOGIN_HINT}") from None
        except smtplib.SMTPNotSupportedError:
            raise ConfigError(f"INTAKE_SMTP_SECURITY: {self._where()} offers no login (AUTH) on this "
                              "connection; many servers offer it only over TLS (163: ssl on port 465)") from None
        except smtplib.SMTPResponseException as err:
            raise TransientError(f"SMTP {self._where()}: {answer_text(err.smtp_code, err.smtp_error)}") from err
        except (smtplib.SMTPException, OSError) as err:  # dropped or timed out while logging in
            raise TransientError(f"SMTP {self._where()}: connection lost while logging in ({_said(err)})") from err

    def _mechanism(self, client: smtplib.SMTP) -> str:
        if not client.has_extn("auth"):
            raise smtplib.SMTPNotSupportedError("no AUTH")
        offered = client.esmtp_features["auth"].upper().split()
        for mechanism in ("PLAIN", "LOGIN"):
            if mechanism in offered:
                return mechanism
        raise ConfigError(f"INTAKE_SMTP_HOST: {self._where()} offers neither PLAIN nor LOGIN authentication "
                          f"(it offers {' '.join(offered) or 'none'}); intake logs in with one of those")

    # ------------------------------------------------------------------ sending

    def send(self, mail: Outgoing) -> Refusals | None:
        """MAIL, RCPT for each recipient, DATA to those that took it; the data is counted
        as possibly delivered from the moment all of it (with the final dot) has been written."""
        client = self.client
        assert client is not None, "send() outside `with transport.open()`"
        if self.broken:  # nothing of this mail went: it is not at fault
            raise ConnectionLost(f"SMTP {self._where()}: the connection could not be reset after the "
                                 "previous mail", charged=False)
        if not mail.recipients or not all(r.isascii() for r in mail.recipients):
            raise PermanentError(f"no address this server can take: {', '.join(mail.recipients) or 'none'}")
        data = _wire_data(with_login_from(mail.raw, self.login, display_name(self.settings)))
        try:
            # 8-bit text (a composer's choice) is announced where the server takes it
            eight_bit = ["BODY=8BITMIME"] if not data.isascii() and client.has_extn("8bitmime") else []
            self._sender(client, eight_bit)
            refusals = self._recipients(client, mail.recipients)
            self._expect(client, client.docmd("DATA"), (354,))
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            raise ConnectionLost(f"SMTP {self._where()}: connection lost ({_said(err)})") from err
        try:
            client.send(data)
        except (smtplib.SMTPServerDisconnected, OSError) as err:  # not all of it went: it cannot count
            raise ConnectionLost(f"SMTP {self._where()}: connection lost while sending ({_said(err)})") from err
        try:
            code, answer = client.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as err:
            self.broken = True
            raise DeliveryUncertain(f"SMTP {self._where()}: the mail was sent but the server's answer never came "
                                    f"({_said(err)}); it may have been delivered") from err
        self._classify(code, answer, after_data=True)
        return refusals

    def _sender(self, client: smtplib.SMTP, options: list[str]) -> None:
        """MAIL FROM. Any refusal of it is about our account or this connection, never
        about the mail in hand: SenderRefused (the batch ends, the mail is not charged)."""
        try:
            code, answer = client.mail(self.login, options)
        except (smtplib.SMTPServerDisconnected, OSError) as err:  # gone before this mail began
            raise ConnectionLost(f"SMTP {self._where()}: connection lost ({_said(err)})", charged=False) from err
        if code == 250:
            return
        said = answer_text(code, answer)
        if code == 421:
            raise ConnectionLost(f"SMTP {self._where()}: {said}", charged=False)
        self._reset(client)
        self.broken = True  # the batch ends here; a new connection may be taken
        if code >= 500:
            raise SenderRefused(f"SMTP {self._where()} refused the sender {self.login}: {said}; {SENDER_HINT}",
                                permanent=True)
        raise SenderRefused(f"SMTP {self._where()} refused the sender {self.login} for now: {said}",
                            permanent=False)

    def _recipients(self, client: smtplib.SMTP, recipients: tuple[str, ...]) -> Refusals | None:
        """RCPT for each; the mail goes to those that took it. Refused by all: the first
        temporary refusal (else the first) is raised, and nothing is sent."""
        refused = []
        for address in recipients:
            code, answer = client.rcpt(address)
            if code not in (250, 251):
                refused.append((address, code, answer))
        if not refused:
            return None
        if len(refused) == len(recipients):
            address, code, answer = next((r for r in refused if r[1] < 500), refused[0])
            self._reset(client)
            self._classify(code, answer, subject=address)
        return Refusals("; ".join(f"{address}: {answer_text(code, answer)}" for address, code, answer in refused),
                        tuple(a for a in recipients if a not in {r[0] for r in refused}),
                        tuple(address for address, code, _ in refused if code < 500))

    def _expect(self, client: smtplib.SMTP, reply: tuple[int, bytes], wanted: tuple[int, ...]) -> None:
        code, answer = reply
        if code not in wanted:
            if code != 421:
                self._reset(client)
            self._classify(code, answer)

    def _reset(self, client: smtplib.SMTP) -> None:
        try:
            client.rset()
        except (smtplib.SMTPException, OSError):
            self.broken = True

    def _classify(self, code: int, answer: bytes, subject: str | None = None, after_data: bool = False) -> None:
        """Raise what an answer means; return for a success."""
        if 200 <= code < 400:
            return
        said = answer_text(code, answer)
        about = f"{subject}: " if subject else ""
        if code == 421:  # the server is closing the connection
            raise ConnectionLost(f"SMTP {self._where()}: {about}{said}")
        if code < 500:
            raise TransientError(f"SMTP {self._where()} refused it for now: {about}{said}")
        raise PermanentError(f"{about}{said}")


def with_login_from(raw: str, login: str, name: str) -> str:
    """The message with From = the login account (its display name kept). Untouched when
    it is already so; only the header block is parsed, the body is passed through."""
    message = Parser(policy=SMTP_POLICY).parsestr(raw, headersonly=True)
    current = message.get("From")
    addresses = list(getattr(current, "addresses", ()) or ())
    if len(addresses) == 1 and addresses[0].addr_spec.lower() == login.lower():
        return raw
    shown = (addresses[0].display_name if addresses else "") or name
    local, _, domain = login.partition("@")
    if current is None:
        message["From"] = Address(display_name=shown, username=local, domain=domain)
    else:
        message.replace_header("From", Address(display_name=shown, username=local, domain=domain))
    return message.as_string()


def _wire_data(raw: str) -> bytes:
    """The DATA payload: CRLF line ends, leading dots doubled, the final dot line."""
    data = re.sub(rb"\r\n|\n|\r", b"\r\n", raw.encode("utf-8"))
    data = re.sub(rb"(?m)^\.", b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _login_key(settings: Settings) -> str:
    """Names one login (the password only as a digest, never kept in the clear)."""
    password = hashlib.sha256((settings.smtp_password or "").encode("utf-8")).hexdigest()
    return f"{settings.smtp_host}:{settings.smtp_port}:{settings.smtp_user}:{password}"


def _greeting_timed_out(err: BaseException) -> bool:
    """Connected, then no greeting: smtplib reports the read's timeout as a disconnect."""
    return isinstance(err, smtplib.SMTPServerDisconnected) and isinstance(err.__context__, TimeoutError)


def _said(err: BaseException) -> str:
    if isinstance(err, socket.timeout):
        return "timed out"
    return " ".join(str(err).split())[:200] or type(err).__name__

