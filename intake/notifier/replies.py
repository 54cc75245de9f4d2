"""The reply to a sender: an acknowledgement, or a rejection with every reason and how
to fix it, in formal Chinese, as plain text with an HTML alternative (both rendered
from the Jinja2 templates in intake/notifier/templates from one ReplyView). Sent at
most once per message (the outbox row is unique per message), marked as an automatic
reply so that auto-responders do not answer it.
"""

from __future__ import annotations

import re
import secrets
from email.message import EmailMessage
from email.utils import formatdate

from jinja2 import Environment, PackageLoader, StrictUndefined

from intake.kernel.policy import Policy
from intake.notifier.reply_view import (  # re-exported: the reply's words are asked for here
    LATE, VERDICTS, ReplyView, build_view, has_late_finding, is_late, verdict_text,
)
from intake.settings import Settings
from intake.store import Message

__all__ = ["LATE", "MESSAGE_ID_DOMAIN", "VERDICTS", "compose_reply", "has_late_finding", "is_late",
           "reply_message_id", "reply_subject", "verdict_text"]

MESSAGE_ID_DOMAIN = "intake.local"  # every reply's Message-ID ends in it: mail answering one can be told ours
# A message id is quoted back only when it is one (RFC 5322 msg-id: printable ASCII in
# angle brackets): a sender's header, or a row stored before control characters were
# replaced, must never make the reply itself impossible to compose
_MESSAGE_ID = re.compile(r"<[\x21-\x3b\x3d\x3f-\x7e]{1,900}>")

# Plain text: nothing to escape. HTML: every string is escaped unless marked safe, so a
# subject, unit, course or file name a sender wrote is shown, never run.
_TEXT = Environment(loader=PackageLoader("intake.notifier", "templates"), autoescape=False,
                    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
_HTML = Environment(loader=PackageLoader("intake.notifier", "templates"), autoescape=True,
                    undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def reply_subject(view: ReplyView) -> str:
    return f"【回执 {view.receipt}】{view.verdict}"


def reply_message_id(receipt: str | None) -> str:
    """Our own msg-id: the receipt, a random part, our domain. Short enough that the
    header is never folded (make_msgid's is, and a folded id reads back with a space)."""
    return f"<{receipt or 'reply'}.{secrets.token_hex(8)}@{MESSAGE_ID_DOMAIN}>"


def compose_reply(message: Message, settings: Settings, policy: Policy) -> EmailMessage:
    """The reply as a mail: multipart/alternative, plain text first, then HTML; UTF-8 in
    base64, which passes any relay (Chinese text in quoted-printable triples in size)."""
    view = build_view(message, settings, policy)
    reply = EmailMessage()
    reply["From"] = settings.smtp_from or settings.imap_user or "intake@localhost"
    reply["To"] = message.from_address
    reply["Subject"] = reply_subject(view)
    reply["Date"] = formatdate(localtime=False)
    reply["Message-ID"] = reply_message_id(message.receipt)
    reply["Auto-Submitted"] = "auto-replied"
    reply["X-Auto-Response-Suppress"] = "All"
    if message.message_id and _MESSAGE_ID.fullmatch(message.message_id):
        reply["In-Reply-To"] = message.message_id
        reply["References"] = message.message_id
    reply.set_content(_render_text(view), charset="utf-8", cte="base64")
    reply.add_alternative(_render_html(view), subtype="html", charset="utf-8", cte="base64")
    return reply


def _render_text(view: ReplyView) -> str:
    text = _TEXT.get_template("reply.txt.j2").render(v=view)
    return re.sub(r"\n{3,}", "\n\n", text)  # optional blocks leave no runs of blank lines


def _render_html(view: ReplyView) -> str:
    return _HTML.get_template("reply.html.j2").render(v=view)
