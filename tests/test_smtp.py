"""The SMTP transport against a real server (aiosmtpd on loopback, tests/smtp_server.py):
each security mode with a login, From = the login account, and every answer a server
gives turned into the kernel's errors (a refused login naming its setting, 4xx
transient, 5xx permanent with the server's own words, no answer after the data
uncertain)."""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import pytest

from intake.kernel.errors import ConfigError, LoginRejected, PermanentError, TransientError
from intake.notifier.smtp import SMTPTransport, from_mismatch, with_login_from
from intake.notifier.transport import ConnectionLost, DeliveryUncertain, Outgoing, Refusals, make_transport
from intake.settings import Settings
from tests.smtp_server import USER, Connection, free_port, make_certificate
from tests.smtp_server import smtp_certificate, smtp_server  # noqa: F401  (fixtures)


def settings_for(server, tmp_path, **values) -> Settings:
    return Settings(data_dir=tmp_path, **{**server.settings_values(), **values})


def outgoing(n: int, sender: str = USER, to: tuple[str, ...] = ("unit1@163.com",), subject: str | None = None) -> Outgoing:
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = subject or f"【回执 WX2024-00000{n}】已受理"
    mail["Message-ID"] = make_msgid(domain="intake.local")
    mail.set_content("您好！\n.这一行以句点开头\n回执号：WX2024-000001\n", charset="utf-8")
    return Outgoing(f"WX2024-00000{n}-{n}", to, mail.as_string())


@pytest.mark.parametrize("security", ["ssl", "starttls", "none"])
def test_each_security_mode_logs_in_and_sends(smtp_server, tmp_path, monkeypatch, security):
    server = smtp_server(security)
    server.trust(monkeypatch)
    transport = make_transport(settings_for(server, tmp_path))
    assert transport.name == f"SMTP localhost:{server.port} ({security}) as {USER}"
    with transport.open() as connection:
        assert connection.send(outgoing(1)) is None
        assert connection.send(outgoing(2, to=("a@qq.com", "b@126.com"))) is None
    assert server.connections == [Connection(1, tls=security == "ssl", starttls=security == "starttls",
                                             login=USER, mails=2)]
    first, second = server.messages
    assert (first.mail_from, first.recipients, second.recipients) == (USER, ["unit1@163.com"], ["a@qq.com", "b@126.com"])
    body = first.message.get_body(("plain",)).get_content()
    assert first.message["Subject"] == "【回执 WX2024-000001】已受理" and ".这一行以句点开头" in body  # dots unstuffed


def test_from_is_the_login_account_and_the_configured_name_is_kept(smtp_server, tmp_path):
    server = smtp_server("none")
    settings = settings_for(server, tmp_path, smtp_from="全国总工会劳动和经济工作部 <other@163.com>")
    assert "INTAKE_SMTP_FROM" in from_mismatch(settings) and USER in from_mismatch(settings)
    with SMTPTransport(settings).open() as connection:
        connection.send(outgoing(1, sender=settings.smtp_from))  # as a composer that trusted the setting
        connection.send(outgoing(2, sender="other@163.com"))  # no name of its own: the setting's is used
    first, second = (m.message for m in server.messages)
    assert (first["From"].addresses[0].addr_spec, first["From"].addresses[0].display_name) == (
        USER, "全国总工会劳动和经济工作部")
    assert second["From"].addresses[0].addr_spec == USER
    assert second["From"].addresses[0].display_name == "全国总工会劳动和经济工作部"
    assert all(m.mail_from == USER for m in server.messages)  # the envelope too (163: 553 otherwise)
    # a name alone is a display name, and a From that is already the login is left as composed
    named = settings_for(server, tmp_path, smtp_from="报送系统")
    assert from_mismatch(named) is None
    raw = outgoing(3).raw
    assert with_login_from(raw, USER, "报送系统") is raw


def test_a_refused_login_is_one_line_naming_the_password_setting(smtp_server, tmp_path):
    server = smtp_server("none")
    transport = SMTPTransport(settings_for(server, tmp_path, smtp_password="the-web-password"))
    with pytest.raises(LoginRejected) as refused:
        with transport.open():
            pass
    said = str(refused.value)
    assert said.startswith("INTAKE_SMTP_PASSWORD:") and "535 Error: authentication failed" in said
    assert "客户端授权码" in said and "\n" not in said and "the-web-password" not in said
    server.behaviour.auth = "535 请使用授权码登录".encode("gbk")  # QQ answers in raw GBK
    with pytest.raises(LoginRejected, match="535 请使用授权码登录"):
        with SMTPTransport(settings_for(server, tmp_path)).open():
            pass


def test_a_temporary_login_refusal_is_transient(smtp_server, tmp_path):
    server = smtp_server("none")
    server.behaviour.auth = "454 4.7.0 Temporary authentication failure"
    with pytest.raises(TransientError, match="454 4.7.0") as raised:
        with SMTPTransport(settings_for(server, tmp_path)).open():
            pass
    assert not isinstance(raised.value, LoginRejected)


def test_an_unverifiable_certificate_names_the_host_and_never_advises_plain(smtp_server, tmp_path, monkeypatch):
    server = smtp_server("ssl")
    stranger = make_certificate(tmp_path / "another-ca")  # trusted: a CA that did not sign the server's
    monkeypatch.setenv("SSL_CERT_FILE", str(stranger.ca))
    with pytest.raises(ConfigError) as refused:
        with SMTPTransport(settings_for(server, tmp_path)).open():
            pass
    said = str(refused.value)
    assert said.startswith("INTAKE_SMTP_HOST:") and "do not turn TLS off" in said and "\n" not in said
    assert server.messages == []


def test_tls_settings_that_do_not_fit_the_port_name_the_setting(smtp_server, tmp_path, monkeypatch):
    server = smtp_server("none")  # a plain port
    server.trust(monkeypatch)
    with pytest.raises(ConfigError, match="INTAKE_SMTP_SECURITY / INTAKE_SMTP_PORT"):
        with SMTPTransport(settings_for(server, tmp_path, smtp_security="ssl")).open():
            pass
    with pytest.raises(ConfigError, match="INTAKE_SMTP_SECURITY: .* offers no STARTTLS"):
        with SMTPTransport(settings_for(server, tmp_path, smtp_security="starttls")).open():
            pass


def test_a_server_that_is_not_there_is_transient(tmp_path):
    settings = Settings(data_dir=tmp_path, smtp_host="127.0.0.1", smtp_port=free_port(), smtp_security="none",
                        smtp_user=USER, smtp_password="x")
    with pytest.raises(TransientError, match="cannot connect"):
        with SMTPTransport(settings).open():
            pass


def test_each_answer_is_classified_and_one_connection_serves_the_rest(smtp_server, tmp_path):
    server = smtp_server("none")
    server.behaviour.rcpt = {"nobody@163.com": "550 User not found: nobody@163.com",
                             "qq@qq.com": "550 用户不存在".encode("gbk"), "busy@126.com": "450 Mailbox busy"}
    server.behaviour.data = ["554 DT:SPM 163 smtp3,DdGowAD3 1722312000,please see https://help.mail.163.com",
                             "451 4.3.0 Temporary local problem"]
    with SMTPTransport(settings_for(server, tmp_path)).open() as connection:
        with pytest.raises(PermanentError, match="nobody@163.com: 550 User not found") as unknown:
            connection.send(outgoing(1, to=("nobody@163.com",)))
        assert not isinstance(unknown.value, TransientError)
        with pytest.raises(PermanentError, match="550 用户不存在"):
            connection.send(outgoing(2, to=("qq@qq.com",)))
        with pytest.raises(TransientError, match="450 Mailbox busy"):
            connection.send(outgoing(3, to=("busy@126.com",)))  # refused by every recipient: nothing sent
        with pytest.raises(PermanentError, match="554 DT:SPM 163 smtp3"):
            connection.send(outgoing(4))
        with pytest.raises(TransientError, match="451 4.3.0") as later:
            connection.send(outgoing(5))
        assert not isinstance(later.value, ConnectionLost)  # the connection still serves
        note = connection.send(outgoing(6, to=("nobody@163.com", "unit6@163.com")))
        assert connection.send(outgoing(7)) is None
        later = connection.send(outgoing(8, to=("busy@126.com", "unit8@163.com")))  # goes to the one that takes it
    assert note == Refusals("nobody@163.com: 550 User not found: nobody@163.com", ("unit6@163.com",), ())
    assert later == Refusals("busy@126.com: 450 Mailbox busy", ("unit8@163.com",), ("busy@126.com",))
    assert [m.recipients for m in server.messages] == [["unit6@163.com"], ["unit1@163.com"], ["unit8@163.com"]]
    assert len(server.connections) == 1 and len(server.refused) == 2


def test_a_server_that_closes_the_connection_ends_the_batch(smtp_server, tmp_path):
    server = smtp_server("none")
    server.behaviour.data = ["421 4.7.0 Too many messages, closing connection"]
    with SMTPTransport(settings_for(server, tmp_path)).open() as connection:
        with pytest.raises(ConnectionLost, match="421 4.7.0"):
            connection.send(outgoing(1))
    assert server.messages == []


def test_no_answer_to_the_data_is_uncertain_because_it_may_have_arrived(smtp_server, tmp_path):
    server = smtp_server("none")
    server.behaviour.hold = True  # the server holds DATA until the test releases it
    transport = SMTPTransport(settings_for(server, tmp_path), timeout=1.0)
    with transport.open() as connection:
        with pytest.raises(DeliveryUncertain, match="may have been delivered"):
            connection.send(outgoing(1))
    server.release()
    assert [m.message["Subject"] for m in server.messages] == ["【回执 WX2024-000001】已受理"]  # it did arrive


def test_an_address_the_server_cannot_take_is_permanent(smtp_server, tmp_path):
    server = smtp_server("none")
    with SMTPTransport(settings_for(server, tmp_path)).open() as connection:
        with pytest.raises(PermanentError, match="no address this server can take"):
            connection.send(outgoing(1, to=("张三@例子.中国",)))
        connection.send(outgoing(2))
    assert len(server.messages) == 1


def test_without_an_smtp_password_the_outbox_folder_is_the_transport(tmp_path):
    transport = make_transport(Settings(data_dir=tmp_path, smtp_user=USER))
    assert transport.name == f"the outbox folder {tmp_path / 'outbox'}" and transport.repeatable
    with pytest.raises(ConfigError, match="INTAKE_SMTP_USER"):
        make_transport(Settings(data_dir=tmp_path, smtp_password="x"))


def test_answer_text_is_lenient():
    from intake.notifier.smtp import answer_text

    assert answer_text(550, "用户不存在".encode("gbk")) == "550 用户不存在"
    assert answer_text(554, b"DT:SPM\n  second line") == "554 DT:SPM second line"
    assert answer_text(550, b"\xff\xfe\x00broken").startswith("550 ")  # never an exception


def test_eight_bit_text_arrives_intact(smtp_server, tmp_path):
    server = smtp_server("none")
    mail = EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = USER, "unit1@163.com", "回执"
    mail.set_content("您好！回执号：WX2024-000001\n", charset="utf-8", cte="8bit")  # a composer may choose 8bit
    with SMTPTransport(settings_for(server, tmp_path)).open() as connection:
        connection.send(Outgoing("k-1", ("unit1@163.com",), mail.as_string()))
    assert server.messages[0].message.get_content() == "您好！回执号：WX2024-000001\n"
