"""The store's migrations (Alembic), for SQLite and PostgreSQL alike; store/migrate.py
runs them."""
