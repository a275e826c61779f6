"""Scalars whose wire format the contract fixes, and what a cluster's `ID` may hold."""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime

import strawberry
from strawberry.types.scalar import ScalarDefinition

from models.errors import InvalidInput

FORMATTED_TIMESTAMPS = 16_384  # distinct instants whose text is kept
_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,18})")
_MAX_ID = 2**63 - 1


def parse_cluster_id(text: str) -> int | None:
    """A cluster id written as a canonical decimal string (GraphQL's `ID` of a cluster, a REST
    path's id, a plain `nextKey`); None if it cannot name a cluster."""
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


@functools.lru_cache(maxsize=FORMATTED_TIMESTAMPS)
def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds and `Z`: `2024-12-31T11:32:10.367653Z`.

    A page with nodes formats thousands of timestamps, and many are equal (every node a report
    registered shares its `monitoredAt`): each value is formatted once and kept, in a bounded
    cache (equal datetimes are the same instant, so they have the same text). Timestamps from
    the database are UTC already (`models.tables.UtcDateTime`): for them one C call and a slice
    do it (`+00:00` becomes `Z`).
    """
    if value.tzinfo is UTC:
        return value.isoformat(timespec="microseconds")[:-6] + "Z"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def parse_timestamp(value: object) -> datetime:
    """An RFC 3339 timestamp with an explicit offset (`Z` or `+hh:mm`), as an aware UTC datetime.

    Every refusal is `InvalidInput`, whether the value came as a literal or a variable: an instant
    outside years 1 to 9999 once in UTC (`0001-01-01T00:00:00+01:00`) included, which Python's
    `datetime` cannot hold (an `OverflowError` would be a masked 500)."""
    if not isinstance(value, str):
        raise InvalidInput(f"DateTime must be an RFC 3339 string, got {value!r}")
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None or "T" not in text.upper():
        raise InvalidInput(
            f"DateTime {value!r} is not RFC 3339 with a time zone, e.g. 2024-12-31T11:32:10.367653Z"
        )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(
            f"DateTime {value!r} is out of range: give an instant from "
            "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z"
        ) from None


DateTime: ScalarDefinition = strawberry.scalar(
    name="DateTime",
    description="A UTC instant, RFC 3339 with microseconds and Z: 2024-12-31T11:32:10.367653Z",
    specified_by_url="https://datatracker.ietf.org/doc/html/rfc3339",
    serialize=format_timestamp,
    parse_value=parse_timestamp,
)
