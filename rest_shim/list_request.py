"""The Get Clusters List body: the fields, what each accepts, and defaults (SPEC §4, §7)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from models.limits import DEFAULT_PAGE, MAX_PAGE
from rest_shim.problems import RestError

FIELDS = ("limit", "next_key", "last_key", "return_nodes", "filters", "order_by", "direction")
ORDERS = (
    "id",
    "name",
    "monitored_at",
    "controller_last_updated",
    "nodes_count",
    "failed_nodes_count",
)
DIRECTIONS = ("asc", "desc")
CONTROLLER_STATUSES = ("running", "stopped")
# REST filter key -> (GraphQL field, what its value must be)
FILTERS = {
    "ids": ("ids", "list of ids"),
    "name": ("name", "string"),
    "providers": ("providers", "list of strings"),
    "controller_statuses": ("controllerStatuses", "list of statuses"),
    "regions": ("regions", "list of strings"),
    "has_unhealthy_nodes": ("hasUnhealthyNodes", "boolean"),
    "stale": ("stale", "boolean"),
}
_DIGITS = re.compile(r"[0-9]{1,10}")


@dataclass(slots=True, frozen=True)
class ListRequest:
    limit: int = DEFAULT_PAGE
    next_key: str | None = None
    return_nodes: bool = False
    filter: dict[str, Any] = field(default_factory=dict)  # GraphQL ClusterFilter variables
    order_by: str = "ID"  # GraphQL enum names
    direction: str = "ASC"


def _bad(name: str, problem: str) -> RestError:
    return RestError(400, f"{name}: {problem}")


def _limit(value: Any) -> int:
    # The vendor's own example sends "50": a string holding an integer is taken as it.
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("limit", f"must be an integer from 1 to {MAX_PAGE}, got {value!r}")
    if not 1 <= value <= MAX_PAGE:
        raise _bad("limit", f"must be from 1 to {MAX_PAGE}, got {value}")
    return value


def _id_text(name: str, value: Any, expected: str) -> str:
    # Answers carry ids as JSON numbers and next_key as a string, and the vendor's ids were
    # integers in places: a non-negative integer is its decimal string.
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str):
        return value
    raise _bad(name, f"must {expected}, got {value!r}")


def _key(name: str, value: Any) -> str:
    if value is None:  # null, like "", means the first page
        return ""
    return _id_text(name, value, "be a string (the previous page's next_key)")


def _return_nodes(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad("return_nodes", f"must be true or false, got {value!r}")
    return value


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise _bad(name, f"must be one of {', '.join(allowed)}; got {value!r}")
    return value.upper()


def _strings(name: str, value: Any, allowed: tuple[str, ...] | None = None) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(name, f"must be a list of strings, got {value!r}")
    if allowed is not None:
        for v in value:
            if v not in allowed:
                raise _bad(name, f"{v!r} is not one of {', '.join(allowed)}")
    return value


def _filter_value(name: str, value: Any) -> Any:
    where = f"filters.{name}"
    if name == "ids":
        if not isinstance(value, list):
            raise _bad(where, f"must be a list of cluster ids, got {value!r}")
        return [_id_text(where, v, "hold cluster ids (numbers or decimal strings)") for v in value]
    if name == "name":
        if not isinstance(value, str):
            raise _bad(where, f"must be a string, got {value!r}")
        return value
    if name == "controller_statuses":
        return [s.upper() for s in _strings(where, value, CONTROLLER_STATUSES)]
    if name in ("has_unhealthy_nodes", "stale"):
        if not isinstance(value, bool):
            raise _bad(where, f"must be true or false, got {value!r}")
        return value
    return _strings(where, value)


def _filters(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad("filters", f"must be an object, got {value!r}")
    unknown = sorted(set(value) - set(FILTERS))
    if unknown:
        raise _bad(
            "filters",
            f"unknown filter(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(FILTERS)}",
        )
    return {FILTERS[k][0]: _filter_value(k, v) for k, v in value.items() if v is not None}


def parse_list_request(body: dict[str, Any]) -> ListRequest:
    """Check every field of the body; the first problem found is the 400's message."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise RestError(
            400,
            f"unknown field(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(FIELDS)}",
        )
    limit = _limit(body["limit"]) if "limit" in body else DEFAULT_PAGE
    keys = {f: _key(f, body[f]) for f in ("next_key", "last_key") if f in body}
    if len(set(keys.values())) > 1:
        raise RestError(400, "next_key and last_key are synonyms but differ: send one of them")
    next_key = next(iter(keys.values()), None)
    return ListRequest(
        limit=limit,
        next_key=next_key or None,
        return_nodes=_return_nodes(body["return_nodes"]) if "return_nodes" in body else False,
        filter=_filters(body["filters"]) if body.get("filters") is not None else {},
        order_by=_choice("order_by", body["order_by"], ORDERS) if "order_by" in body else "ID",
        direction=(
            _choice("direction", body["direction"], DIRECTIONS) if "direction" in body else "ASC"
        ),
    )
