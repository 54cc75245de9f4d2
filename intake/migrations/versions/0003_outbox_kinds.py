"""outbox rows for staff mail: kind, a unique dedupe key, the server's answer, several
recipients (the digest branch's minimal part of the notifier's schema)

Revision ID: 0003
Revises: 0002
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
        batch_op.add_column(sa.Column('last_error', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('updated_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.alter_column('recipient', existing_type=sa.String(length=320), type_=sa.Text(),
                              existing_nullable=False)
        batch_op.create_unique_constraint('uq_outbox_dedupe_key', ['dedupe_key'])


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_constraint('uq_outbox_dedupe_key', type_='unique')
        batch_op.alter_column('recipient', existing_type=sa.Text(), type_=sa.String(length=320),
                              existing_nullable=False)
        batch_op.drop_column('updated_at')
        batch_op.drop_column('last_error')
        batch_op.drop_column('dedupe_key')
        batch_op.drop_column('kind')
