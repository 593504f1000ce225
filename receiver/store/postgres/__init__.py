"""The PostgreSQL backend: the store's rules over asyncpg (``PgTx``), a pool, the
schema under an advisory lock, a group commit per process (``PgBackend``), and the
change feed's commit-ordered cursor (``feed``)."""

from receiver.store.postgres.backend import PgBackend, migrate
from receiver.store.postgres.tx import PgTx

__all__ = ["PgBackend", "PgTx", "migrate"]
