"""Persistence: schema, migrations and the repository, on SQLite or PostgreSQL."""
