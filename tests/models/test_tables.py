"""The UTC instant type (`models.tables.UtcDateTime`): on SQLite its own bind processor writes
exactly the text SQLAlchemy's DATETIME would, from any aware instant, and refuses a naive one."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from models.tables import UtcDateTime

DIALECT = sqlite.dialect()
INSTANTS = [
    datetime(2024, 12, 31, 11, 32, 10, 367653, tzinfo=UTC),
    datetime(2024, 12, 31, 11, 32, 10, tzinfo=UTC),  # no microseconds: still written
    datetime(2025, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=2))),  # the day before, in UTC
    datetime(2024, 2, 29, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-9, minutes=-30))),
    datetime(5, 6, 7, 8, 9, 10, 11, tzinfo=UTC),  # a year of one digit, zero-padded
]


def _ours() -> Callable[[Any], Any]:
    process = UtcDateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    assert process is not None
    return process


def _sqlalchemys(value: datetime | None) -> object:
    """What SQLAlchemy's own processing writes: the decorator's UTC value, then DATETIME's."""
    naive = UtcDateTime().process_bind_param(value, DIALECT)
    process = DateTime().dialect_impl(DIALECT).bind_processor(DIALECT)
    assert process is not None
    return process(naive)


@pytest.mark.parametrize("value", [*INSTANTS, None])
def test_the_sqlite_text_is_sqlalchemys(value: datetime | None) -> None:
    process = _ours()
    assert process(value) == _sqlalchemys(value)


def test_the_sqlite_text_of_an_instant_in_another_zone_is_utc() -> None:
    process = _ours()
    assert process(INSTANTS[2]) == "2024-12-31 22:30:00.000000"


def test_a_naive_instant_is_refused() -> None:
    process = _ours()
    with pytest.raises(ValueError, match="naive datetime"):
        process(datetime(2024, 12, 31, 11, 32, 10))
