"""The common list bodies are read directly (`rest_shim.list_request._common`): whatever it
takes, the model accepts and reads the same way; what it leaves, the model still judges."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.limits import MAX_PAGE
from rest_shim import list_request
from rest_shim.list_request import ListRequest, _common
from rest_shim.problems import RestError

# Values of every kind JSON gives, near the edges of what each key takes; each key's own values
# come often, so that most bodies are common ones.
_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
_KEY = st.one_of(st.none(), st.sampled_from(["", "0", "10", "x"]), st.integers(-1, 5), _ANY)
_OWN: dict[str, st.SearchStrategy[Any]] = {
    "limit": st.one_of(st.integers(-1, MAX_PAGE + 1), st.sampled_from(["5", True, 1.0]), _ANY),
    "next_key": _KEY,
    "last_key": _KEY,
    "return_nodes": st.one_of(st.booleans(), st.sampled_from([0, 1, "true", None]), _ANY),
    "order_by": st.one_of(st.sampled_from([*list_request.ORDERS, "ID", "Name"]), _ANY),
    "direction": st.one_of(st.sampled_from(["asc", "desc", "ASC"]), _ANY),
    "filters": st.one_of(st.none(), st.just({}), st.just({"name": "a"}), _ANY),
    "extra": _ANY,
}
BODIES = (
    st.fixed_dictionaries(
        {},
        optional={k: v for k, v in _OWN.items() if k not in {"filters", "extra"}},
    )
    | st.fixed_dictionaries({}, optional=_OWN)
    | _ANY
)


def parse_list_request_or_refusal(body: Any) -> ListRequest | str:
    try:
        return list_request.parse_list_request(body)
    except RestError:
        return "ValidationError"


def _by_the_model(body: Any) -> ListRequest | str:
    try:
        checked = list_request.ListClustersBody.model_validate(body)
    except Exception as exc:  # what the model refuses
        return type(exc).__name__
    keys = [checked.page_key(k) for k in ("next_key", "last_key") if k in checked.model_fields_set]
    return ListRequest(
        limit=int(checked.limit),
        next_key=next(iter(keys), "") or None,
        return_nodes=checked.return_nodes,
        filter=list_request._graphql_filter(checked.filters),
        order_by=checked.order_by.upper(),
        direction=checked.direction.upper(),
    )


@settings(max_examples=1500, deadline=None)
@given(BODIES)
def test_what_the_common_way_takes_the_model_reads_the_same(body: Any) -> None:
    common = _common(body)
    if common is not None:
        assert _by_the_model(body) == common
    else:
        assert parse_list_request_or_refusal(body) == _by_the_model(body)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"limit": 100, "return_nodes": False},
        {"limit": 1, "next_key": "10", "return_nodes": True},
        {"last_key": "", "order_by": "nodes_count", "direction": "desc"},
        {"next_key": None, "limit": MAX_PAGE},
    ],
)
def test_the_common_bodies_take_the_common_way(body: dict[str, Any]) -> None:
    common = _common(body)
    assert common is not None
    assert _by_the_model(body) == common


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"limit": 0}, "limit: must be from 1 to 100, got 0"),
        ({"limit": True}, "limit: must be an integer from 1 to 100, got True"),
        ({"limit": 5, "extra": 1}, "unknown field(s) 'extra'"),
        ({"next_key": "1", "last_key": "2"}, "next_key and last_key are synonyms but differ"),
        ({"order_by": "ID"}, "order_by: must be one of id, name"),
        ({"return_nodes": 1}, "return_nodes: must be true or false, got 1"),
        ([], "the body must be a JSON object, got an array"),
    ],
)
def test_what_the_common_way_leaves_the_model_refuses_with_its_message(
    body: Any, message: str
) -> None:
    assert _common(body) is None
    with pytest.raises(RestError) as refused:
        list_request.parse_list_request(body)
    assert refused.value.status == 400
    assert message in refused.value.message
