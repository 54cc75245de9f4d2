"""A large message over IMAP (Dovecot behind the 163-like proxy) is fetched in
``BODY.PEEK[]<offset.length>`` slices and stored while it arrives; one that comes short
or vanishes mid-way is never recorded. The slice threshold is lowered here so that the
test messages stay small (the memory itself is measured by bench/imap_memory_bench.py)."""

from __future__ import annotations

import hashlib
import os

import pytest
from sqlalchemy import select

from intake.daemon.ledger import poll
from intake.kernel.errors import TransientError
from intake.service import open_service
from intake.sources import ImapSource
from intake.store import MailboxState, Message
from tests.conftest import simple_mail
from tests.test_mailbox import ON_TIME, append, imap_settings

STREAM_ABOVE = 20_000
SLICE = 7_000


@pytest.fixture
def small_slices(monkeypatch):
    monkeypatch.setattr(ImapSource, "stream_above", STREAM_ABOVE)
    monkeypatch.setattr(ImapSource, "slice_bytes", SLICE)


def large_mail(n: int) -> bytes:
    return simple_mail(n, attachments={"材料.zip": os.urandom(40_000)})  # about 55 kB of base64


def as_served(dovecot, uid: int) -> bytes:
    """The message as the server holds it (Dovecot serves LF-only mail with CRLF)."""
    client = dovecot.client()
    client.select_folder("INBOX", readonly=True)
    body = client.fetch([uid], ["BODY.PEEK[]"])[uid][b"BODY[]"]
    client.logout()
    return body


def rows(service) -> list[Message]:
    with service.Session() as session:
        return session.scalars(select(Message).order_by(Message.uid)).all()


def raw_files(settings) -> list:
    return sorted(p for p in (settings.data_dir / "raw").rglob("*") if p.is_file())


def slice_fetches(proxy) -> list[str]:
    return [line for s in proxy.sessions for line in s["fetches"] if "BODY.PEEK[]<" in line]


def test_a_large_message_arrives_in_slices_byte_identical(tmp_path, database_url, mailbox_163, small_slices):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(1), ON_TIME), (large_mail(2), ON_TIME), (simple_mail(3), ON_TIME)])
    served = as_served(dovecot, 2)
    assert len(served) > STREAM_ABOVE
    settings = imap_settings(tmp_path, database_url, proxy)
    service = open_service(settings)
    assert poll(settings, service.Session, lambda: ImapSource(settings)) == 3
    small, large, other = rows(service)
    stored = open(large.raw_path, "rb").read()
    assert stored == served and large.size == len(served)
    assert large.sha256 == hashlib.sha256(served).hexdigest()
    assert large.from_address == "unit2@163.com" and large.subject == "报送 2"  # the header look, from the file
    assert small.size == len(as_served(dovecot, 1)) and other.from_address == "unit3@163.com"
    # only the large one in slices: ceil(size / SLICE) of them, the last asking one byte more
    assert len(slice_fetches(proxy)) == -(-len(served) // SLICE)
    assert all(" 2 " in line for line in slice_fetches(proxy))
    assert not list((settings.data_dir / "raw" / "incoming").iterdir())  # no temporary file left


def test_a_short_slice_records_nothing_and_the_message_comes_at_the_next_poll(
        tmp_path, database_url, mailbox_163, small_slices):
    dovecot, proxy = mailbox_163
    append(dovecot, [(simple_mail(1), ON_TIME), (large_mail(2), ON_TIME)])
    served = as_served(dovecot, 2)
    settings = imap_settings(tmp_path, database_url, proxy, fetch_batch=1)
    service = open_service(settings)
    assert len(served) % SLICE  # so the last slice is a short one by nature, and cut shorter still:
    proxy.cut_slice_at = len(served) // SLICE * SLICE  # a lenient reader would store a truncated message
    with pytest.raises(TransientError, match="UID 2 changed or vanished") as raised:
        poll(settings, service.Session, lambda: ImapSource(settings), retries=0)
    assert "\n" not in str(raised.value)
    assert [m.uid for m in rows(service)] == [1]  # the batch before it is kept
    with service.Session() as session:
        assert session.scalars(select(MailboxState.highest_uid)).one() == 1
    assert len(raw_files(settings)) == 1  # UID 1's: nothing of UID 2, not even a temporary file
    assert poll(settings, service.Session, lambda: ImapSource(settings)) == 1
    _, large = rows(service)
    assert open(large.raw_path, "rb").read() == served and large.sha256 == hashlib.sha256(served).hexdigest()


def test_a_message_expunged_mid_way_is_not_recorded_and_the_poll_goes_on(
        tmp_path, database_url, mailbox_163, small_slices):
    dovecot, proxy = mailbox_163
    append(dovecot, [(large_mail(1), ON_TIME), (simple_mail(2), ON_TIME)])
    settings = imap_settings(tmp_path, database_url, proxy)
    service = open_service(settings)

    class Expunging(ImapSource):
        def _slice(self, uid, offset, length):
            if offset > 0 and uid == 1:  # another client deletes it after the first slice came
                client = dovecot.client()
                client.select_folder("INBOX")
                client.delete_messages([1])
                client.expunge()
                client.logout()
            return super()._slice(uid, offset, length)

    sources = iter([Expunging(settings), ImapSource(settings)])
    assert poll(settings, service.Session, lambda: next(sources), backoff=0.01) == 1
    assert [m.uid for m in rows(service)] == [2]  # the retry no longer lists UID 1
    assert len(raw_files(settings)) == 1


def test_a_temporary_file_left_by_a_killed_poll_is_swept_later(tmp_path, database_url):
    from intake.sources import MaildirSource, deliver_to_maildir
    from tests.conftest import daemon_settings

    folder = tmp_path / "Maildir"
    deliver_to_maildir(folder, simple_mail(1), ON_TIME)
    settings = daemon_settings(tmp_path, database_url, maildir=folder)
    incoming = settings.data_dir / "raw" / "incoming"
    incoming.mkdir(parents=True)
    left, in_progress = incoming / "123-left.tmp", incoming / "456-writing.tmp"
    left.write_bytes(b"half a message")
    in_progress.write_bytes(b"another worker's message, arriving")
    os.utime(left, (1, 1))  # untouched for long: its process is gone
    service = open_service(settings)
    assert poll(settings, service.Session, lambda: MaildirSource(folder)) == 1
    assert not left.exists() and in_progress.exists()
    assert [p.name for p in raw_files(settings) if p.suffix == ".eml"] == [f"{rows(service)[0].sha256}.eml"]
