"""Alembic's entry point for the store's migrations. It runs only on a connection the
store hands over (store/migrate.py), never from a URL of its own."""

from alembic import context

from digest.store.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata)
with context.begin_transaction():
    context.run_migrations()
