"""linked packages: a message's fetch attempts, counted apart from its judging attempts

Revision ID: 0004
Revises: 0003

A message in `fetching` waits for its next attempt (next_attempt_at) after a failure on
our side (a rate limit, risk control, the network); those attempts are counted here,
against INTAKE_FETCH_ATTEMPTS, so that they never use up INTAKE_MAX_ATTEMPTS, which
quarantines a message whose judging fails or kills its worker.
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('fetch_attempts', sa.Integer(), nullable=False, server_default='0'))


def downgrade():
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_column('fetch_attempts')
