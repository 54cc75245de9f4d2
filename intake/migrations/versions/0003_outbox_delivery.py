"""the outbox delivers over SMTP: kind, dedupe key, attempts, the server's answer, who is sending, via what

Revision ID: 0003
Revises: 0002

Messages no longer wait in 'replying' while their reply is delivered: the outbox row
has its own states, so such messages are done. A reply that an older version had given
up on (its message quarantined with the reply still queued) becomes a failed row, so
that nothing is sent without staff (`intake resend`).
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=False, server_default='reply'))
        batch_op.add_column(sa.Column('dedupe_key', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('sending_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('via', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('recipient', existing_type=sa.String(length=320), type_=sa.Text(),
                              existing_nullable=False)
        batch_op.create_unique_constraint('uq_outbox_dedupe_key', ['dedupe_key'])
        batch_op.create_index('ix_outbox_state', ['state'], unique=False)
        batch_op.create_index('ix_outbox_recipient', ['recipient'], unique=False)
        batch_op.create_index('ix_outbox_created_at', ['created_at'], unique=False)
    op.execute("UPDATE outbox SET updated_at = created_at")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.alter_column('updated_at', existing_type=sa.DateTime(timezone=True), nullable=False)
    op.execute("UPDATE outbox SET state = 'failed', last_error = (SELECT messages.last_error FROM messages "
               "WHERE messages.id = outbox.message_id) WHERE state = 'queued' AND message_id IN "
               "(SELECT id FROM messages WHERE state = 'quarantined')")
    op.execute("UPDATE messages SET state = 'done', claimed_by = NULL WHERE state = 'replying'")


def downgrade():
    op.execute("UPDATE outbox SET state = 'queued' WHERE state <> 'sent'")
    op.execute("DELETE FROM outbox WHERE message_id IS NULL")
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_created_at')
        batch_op.drop_index('ix_outbox_recipient')
        batch_op.drop_index('ix_outbox_state')
        batch_op.drop_constraint('uq_outbox_dedupe_key', type_='unique')
        batch_op.alter_column('recipient', existing_type=sa.Text(), type_=sa.String(length=320),
                              existing_nullable=False)
        for column in ('updated_at', 'via', 'sending_by', 'last_error', 'next_attempt_at', 'attempts',
                       'dedupe_key', 'kind'):
            batch_op.drop_column(column)
