"""The store's engine factory: SQLite or PostgreSQL by URL, and URLs safe to print.

The dashboard and the daemon both open the store through ``create_store_engine``; the
dashboard sees nothing else of the store but its table definitions (``pipeline.tables``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class StoreError(RuntimeError):
    """The store URL is unusable (bad scheme, missing driver)."""


def create_store_engine(url: str) -> Engine:
    """An engine for a SQLite or PostgreSQL URL; SQLite gets WAL and a busy timeout."""
    for plain in ("postgresql://", "postgres://"):  # psycopg 3 is the driver we ship
        if url.startswith(plain):
            url = "postgresql+psycopg://" + url[len(plain) :]
    try:
        engine = create_engine(url, pool_pre_ping=True, future=True)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"store URL is not usable ({exc}); use sqlite:///PATH or postgresql://USER@HOST/DB") from exc
    if engine.dialect.name not in ("sqlite", "postgresql"):
        raise StoreError(f"store must be SQLite or PostgreSQL (got: {engine.dialect.name})")
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


def mask_url(url: str) -> str:
    """Hide the password of a database URL."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"
