"""The event log of a local Dagster instance (the CLI's and `make dev`'s): Dagster's SQLite storage, keeping one
database engine per file for the life of the process.

Dagster's SqliteEventLogStorage builds a new SQLAlchemy engine for every event it stores and disposes of it
afterwards: each of a refresh's hundreds of events (dbt's models and tests, asset checks, steps) paid for an engine,
a connection and a dialect initialisation, a measurable share of a small refresh (docs/benchmarks.md, 2026-12-06).
Here the engines stay open, pooled. Everything else (files, schema, watching for the UI) is Dagster's own. Dagster is
pinned exactly (pyproject.toml), and `_connect` is the one method replaced; tests/test_cli.py runs refreshes on it.
A production instance keeps its event log in PostgreSQL (deploy/dagster.yaml) and does not use this class.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy.engine import Connection, Engine


class SqliteEventLogKeepingEngines(SqliteEventLogStorage):
    """SqliteEventLogStorage with one pooled engine per shard (the run's file, the cross-run index), kept open."""

    def __init__(self, base_dir: str, inst_data=None):
        self._engines: dict[str, Engine] = {}
        super().__init__(base_dir, inst_data)
        # A forked child must not share the parent's open SQLite connections: it opens its own.
        os.register_at_fork(after_in_child=self._engines.clear)

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # the parent's builds a SqliteEventLogStorage
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> Engine:
        engine = self._engines.get(shard)
        if engine is None:
            # SQLAlchemy pools connections to a SQLite file (QueuePool) and lets them cross threads (the UI's watcher
            # reads from one); the busy timeout is Dagster's.
            engine = create_engine(self.conn_string_for_shard(shard),
                                   connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS})
            self._engines[shard] = engine
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # As Dagster's own: one lock around the shard's first use (which creates its schema) and the transaction.
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def wipe(self) -> None:
        self._dispose_engines()
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()

    def _dispose_engines(self) -> None:
        with self._db_lock:
            engines = list(self._engines.values())
            self._engines.clear()
        for engine in engines:
            engine.dispose()
