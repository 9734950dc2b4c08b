"""Insert-if-absent and upsert that two processes may run at the same moment, on both
databases.

A read-then-insert races: both processes read "absent" and the second insert fails on the
unique key. ``INSERT … ON CONFLICT`` (SQLite and PostgreSQL) makes the insert itself the
check. The many-row forms write a whole ad's rows in one statement.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


def insert_if_absent(
    session: Session, model: Any, values: Mapping[str, Any], unique: Sequence[str]
) -> None:
    """Insert a row unless one with the same ``unique`` columns exists (no error either way)."""
    insert_all_if_absent(session, model, [values], unique)


def insert_all_if_absent(
    session: Session, model: Any, rows: Iterable[Mapping[str, Any]], unique: Sequence[str]
) -> None:
    """Insert each row unless one with the same ``unique`` columns exists, in one statement."""
    distinct = _distinct(rows, unique)
    if not distinct:
        return
    statement = _insert(session, model).values(distinct)
    session.execute(statement.on_conflict_do_nothing(index_elements=list(unique)))


def upsert_all(
    session: Session,
    model: Any,
    rows: Iterable[Mapping[str, Any]],
    unique: Sequence[str],
    update: Callable[[Any], Mapping[str, Any]],
) -> None:
    """Insert each row; where one with the same ``unique`` columns exists, set the columns
    that ``update(excluded)`` gives instead (``excluded``: the values this row brought).

    Rows with the same key are written once, the last one winning: PostgreSQL refuses to
    update one row twice in a statement.
    """
    distinct = _distinct(rows, unique)
    if not distinct:
        return
    statement = _insert(session, model).values(distinct)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=list(unique), set_=dict(update(statement.excluded))
        )
    )


def _insert(session: Session, model: Any) -> Any:
    dialect = session.get_bind().dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    return module.insert(model)


def _distinct(rows: Iterable[Mapping[str, Any]], unique: Sequence[str]) -> list[dict[str, Any]]:
    by_key = {tuple(row[column] for column in unique): dict(row) for row in rows}
    return list(by_key.values())
