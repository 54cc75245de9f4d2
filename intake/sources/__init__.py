"""Where mail comes from, behind one small interface (``MailSource``): the collection
mailbox over IMAP, or a Maildir (the demo, an exported mailbox)."""

from __future__ import annotations

from intake.settings import Settings
from intake.sources.base import Fetched, MailSource
from intake.sources.imap import ImapSource
from intake.sources.maildir import MaildirSource, deliver_to_maildir


def make_source(settings: Settings) -> MailSource:
    if settings.maildir is not None:
        return MaildirSource(settings.maildir)
    return ImapSource(settings)


__all__ = ["Fetched", "ImapSource", "MailSource", "MaildirSource", "deliver_to_maildir", "make_source"]
