"""Alembic environment: the connection comes from intake.store.upgrade()."""

from alembic import context

from intake.store import Base

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
