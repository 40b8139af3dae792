"""The suite's database: one URL, one cached engine per URL, sessions with a clear scope.

The URL selects the backend. By default it is a SQLite file, ``<home>/switchboard.db``
(WAL journal, foreign keys enforced); set ``SWITCHBOARD_DATABASE_URL`` to a
``postgresql+psycopg://user@host/db`` URL (driver installed separately) and the same
code runs on PostgreSQL. SQLite specifics live only in the connection hook here: queries
elsewhere use portable SQLAlchemy constructs and never raw SQLite SQL.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import StaticPool
from sqlmodel import Session, SQLModel, create_engine

from topology.settings import Settings, get_settings

__all__ = [
    "DATABASE_URL_ENV",
    "database_url",
    "dispose_engines",
    "get_engine",
    "init_db",
    "session_scope",
]

DATABASE_URL_ENV = "SWITCHBOARD_DATABASE_URL"

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def database_url(settings: Settings | None = None) -> str:
    """``SWITCHBOARD_DATABASE_URL`` if set, else the SQLite file under the settings' home."""
    env = os.environ.get(DATABASE_URL_ENV, "").strip()
    if env:
        return env
    home = (settings or get_settings()).home
    return f"sqlite:///{home / 'switchboard.db'}"


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")  # a no-op answer ("memory") in memory
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL, much faster commits
    finally:
        cursor.close()


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    database = parsed.database or ""
    in_memory = database in ("", ":memory:") or database.startswith("file::memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if in_memory:
        kwargs["poolclass"] = StaticPool  # one connection, or every checkout is a new database
    else:
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "connect", _sqlite_on_connect)
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The engine for ``url`` (default :func:`database_url`), created once per URL."""
    url = url or database_url()
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = _create(url)
        return engine


def dispose_engines() -> None:
    """Close every cached engine's pool and forget it (tests, process shutdown)."""
    with _engines_lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def init_db(engine: Engine) -> None:
    """Create every table registered on ``SQLModel.metadata`` that does not exist yet.

    The inventory tables are always registered; other packages' tables are created when
    their modules were imported before this call. Existing tables are left as they are.
    """
    from topology import inventory, services  # noqa: F401  (registers their tables)

    SQLModel.metadata.create_all(engine)


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error.

    Objects stay readable after the commit (``expire_on_commit=False``), so callers can
    turn them into Public models once the block has ended.
    """
    session = Session(engine or get_engine(), expire_on_commit=False)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
