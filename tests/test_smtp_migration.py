"""Migration 0003 on a database an older version left behind: a message waiting in
'replying' is done (its reply row is delivered by the pass), and a reply the old
version had given up on (message quarantined, row still queued) becomes a failed row
that nothing sends without staff."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import select, text

from intake import store
from intake.store import Message, Outbox

MIGRATIONS = Path(store.__file__).parent / "migrations"


def migrate(engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_messages_and_replies_from_before_0003_are_carried_over(database_url):
    engine = store.make_engine(database_url)
    migrate(engine, "0002")
    with engine.begin() as connection:
        for number, state, error in ((1, "replying", None), (2, "quarantined", "outbox folder: Permission denied"),
                                     (3, "done", None)):
            connection.execute(text(
                "INSERT INTO messages (id, receipt, mailbox, uidvalidity, uid, sha256, raw_path, size, state, "
                "attempts, archived, last_error, created_at, updated_at) VALUES (:id, :receipt, 'm', 1, :id, 'x', "
                "'p', 0, :state, 1, false, :error, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"),
                {"id": number, "receipt": f"WX2024-00000{number}", "state": state, "error": error})
            connection.execute(text(
                "INSERT INTO outbox (message_id, recipient, subject, raw, state, created_at) VALUES "
                "(:id, :to, 's', 'r', :state, CURRENT_TIMESTAMP)"),
                {"id": number, "to": f"unit{number}@163.com", "state": "sent" if number == 3 else "queued"})
    store.upgrade(engine)
    with store.sessions(engine)() as session:
        states = {m.receipt: (m.state, m.claimed_by) for m in session.scalars(select(Message))}
        replies = {r.message_id: (r.kind, r.state, r.attempts, r.last_error, r.updated_at is not None)
                   for r in session.scalars(select(Outbox))}
    assert states == {"WX2024-000001": ("done", None), "WX2024-000002": ("quarantined", None),
                      "WX2024-000003": ("done", None)}
    assert replies == {1: ("reply", "queued", 0, None, True),
                       2: ("reply", "failed", 0, "outbox folder: Permission denied", True),
                       3: ("reply", "sent", 0, None, True)}
    engine.dispose()
