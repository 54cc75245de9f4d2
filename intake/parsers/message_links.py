"""A message's links as the core will judge them, read without decoding its attachments:
what the daemon's ``fetching`` stage and ``intake check`` download before judging.

The links (and their positions, which key each link's outcome) are exactly those
``intake.core.check_message`` finds: the same parser, the same cap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from intake.parsers.links import MAX_LINKS, Link, find_links
from intake.parsers.mail_large import RawMessage
from intake.parsers.messages import LoadedMessage, parse_message

FETCHABLE = ("baidu", "netease", "qq")  # the hosts intake.fetchers download from


@dataclass
class MessageLinks:
    links: list[Link] = field(default_factory=list)  # at most MAX_LINKS, in order of appearance
    ignored: bool = False  # automatic mail: never judged, nothing fetched
    moment: datetime | None = None  # the newest Received: header, else Date: (for `intake check`)

    def fetchable(self) -> list[tuple[int, Link]]:
        """(position, link) of each link a fetcher can download."""
        return [(n, link) for n, link in enumerate(self.links) if link.provider in FETCHABLE]


def message_links(raw: RawMessage, loaded: LoadedMessage | None = None) -> MessageLinks:
    """``loaded``: ``load_message(raw)``, to be walked again by the judgement."""
    parsed = parse_message(raw, None, loaded)
    if parsed.ignored_reason:
        return MessageLinks(ignored=True)
    return MessageLinks(find_links(parsed.texts, parsed.htmls)[:MAX_LINKS], False, parsed.received or parsed.date)
