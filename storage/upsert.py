"""Insert-if-absent that two processes may run at the same moment, on both databases.

A read-then-insert races: both processes read "absent" and the second insert fails on the
unique key. ``INSERT … ON CONFLICT DO NOTHING`` (SQLite and PostgreSQL) makes the insert
itself the check.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_if_absent(
    session: Session, model: Any, values: Mapping[str, Any], unique: Sequence[str]
) -> None:
    """Insert a row unless one with the same ``unique`` columns exists (no error either way)."""
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = (
        module.insert(model).values(**values).on_conflict_do_nothing(index_elements=list(unique))
    )
    session.execute(statement)
