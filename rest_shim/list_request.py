"""The Get Clusters List body: which fields exist, what each accepts, and its defaults (SPEC §4)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from rest_shim.problems import RestError

DEFAULT_LIMIT = 10
MAX_LIMIT = 100
FIELDS = ("limit", "next_key", "last_key", "return_nodes")
_DIGITS = re.compile(r"[0-9]{1,10}")


@dataclass(slots=True, frozen=True)
class ListRequest:
    limit: int = DEFAULT_LIMIT
    next_key: str | None = None
    return_nodes: bool = False


def _bad(field: str, problem: str) -> RestError:
    return RestError(400, f"{field}: {problem}")


def _limit(value: Any) -> int:
    # The vendor's own example sends "50": a string holding an integer is taken as it.
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("limit", f"must be an integer from 1 to {MAX_LIMIT}, got {value!r}")
    if not 1 <= value <= MAX_LIMIT:
        raise _bad("limit", f"must be from 1 to {MAX_LIMIT}, got {value}")
    return value


def _key(field: str, value: Any) -> str:
    # The vendor's ids were integers in places: a non-negative integer is its decimal string.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str):
        return value
    if value is None:  # null, like "", means the first page
        return ""
    raise _bad(field, f"must be a string (the previous page's next_key), got {value!r}")


def _return_nodes(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad("return_nodes", f"must be true or false, got {value!r}")
    return value


def parse_list_request(body: dict[str, Any]) -> ListRequest:
    """Check every field of the body; the first problem found is the 400's message."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RestError(
            400,
            f"unknown field(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(FIELDS)}",
        )
    limit = _limit(body["limit"]) if "limit" in body else DEFAULT_LIMIT
    keys = {f: _key(f, body[f]) for f in ("next_key", "last_key") if f in body}
    if len(set(keys.values())) > 1:
        raise RestError(400, "next_key and last_key are synonyms but differ: send one of them")
    next_key = next(iter(keys.values()), None)
    return_nodes = _return_nodes(body["return_nodes"]) if "return_nodes" in body else False
    return ListRequest(limit=limit, next_key=next_key or None, return_nodes=return_nodes)
