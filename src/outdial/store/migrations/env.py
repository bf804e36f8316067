"""Alembic environment: runs against the engine handed in by outdial.store.db."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from outdial.store.schema import metadata

# Any constant will do, as long as nothing else in the database takes the same advisory lock.
MIGRATION_LOCK = 0x6F75746469616C  # "outdial"

config = context.config
engine = config.attributes.get("engine")
if not isinstance(engine, Engine):
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "sqlite:///./outdial.db")

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # The API and every worker migrate at start; started together on a new database
            # (compose, systemd) they would race to create the same tables. The lock is held
            # to the end of this transaction, and the next process then finds the schema at head.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
        context.run_migrations()
    connection.commit()
