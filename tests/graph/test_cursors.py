"""The cursor codec by its properties: every cursor it makes round-trips, nothing else passes."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from graph.cursors import CursorCodec
from models.errors import InvalidInput
from models.listing import ClusterFilter, Direction, Order, OrderField, Position, SortValue

KEY = b"k" * 32
CODEC = CursorCodec(KEY)
URL_SAFE = re.compile(r"[A-Za-z0-9_.-]+")
# Names and filter values are free text: any string UTF-8 can carry (hypothesis's default
# alphabet leaves out lone surrogates, which no column can store).
texts = st.text(max_size=40)
few_texts = st.lists(texts, min_size=1, max_size=4).map(tuple)
ids = st.integers(min_value=0, max_value=2**63 - 1)
counts = st.integers(min_value=0, max_value=2**31 - 1)
timestamps = st.datetimes(timezones=st.just(UTC))  # years 1 to 9999, with microseconds

filters = st.builds(
    ClusterFilter,
    ids=st.none() | st.lists(ids, min_size=1, max_size=4).map(tuple),
    name=st.none() | texts,
    providers=st.none() | few_texts,
    controller_statuses=st.none()
    | st.sampled_from([("RUNNING",), ("STOPPED",), ("RUNNING", "STOPPED")]),
    regions=st.none() | few_texts,
    has_unhealthy_nodes=st.none() | st.booleans(),
)
orders = st.builds(Order, st.sampled_from(OrderField), st.sampled_from(Direction))
_VALUES: dict[OrderField, st.SearchStrategy[SortValue]] = {
    OrderField.ID: ids,
    OrderField.NAME: texts,
    OrderField.MONITORED_AT: timestamps,
    OrderField.CONTROLLER_LAST_UPDATED: timestamps,
    OrderField.NODES_COUNT: counts,
    OrderField.FAILED_NODES_COUNT: counts,
}


@st.composite
def queries(draw: st.DrawFn) -> tuple[ClusterFilter, Order, Position]:
    """A filter, an order and a position whose value has the type of the order's field."""
    where, order = draw(filters), draw(orders)
    cluster_id = draw(ids)
    value = cluster_id if order.field is OrderField.ID else draw(_VALUES[order.field])
    return where, order, Position(value=value, id=cluster_id)


@st.composite
def cursors(draw: st.DrawFn) -> tuple[ClusterFilter, Order, str]:
    where, order, position = draw(queries())
    return where, order, CODEC.encode(where, order, position)


def _refused(cursor: str, where: ClusterFilter, order: Order) -> None:
    with pytest.raises(InvalidInput, match="next key"):
        CODEC.decode(cursor, where, order, name="next key")


@settings(max_examples=300)
@given(queries())
def test_a_cursor_decodes_to_the_position_it_was_made_from(
    query: tuple[ClusterFilter, Order, Position],
) -> None:
    where, order, position = query
    cursor = CODEC.encode(where, order, position)
    decoded = CODEC.decode(cursor, where, order, name="next key")
    assert decoded == position
    assert type(decoded.value) is type(position.value)
    if isinstance(decoded.value, datetime):  # aware and in UTC, like the column's values
        assert decoded.value.tzinfo is UTC


@settings(max_examples=300)
@given(queries())
def test_a_cursor_is_url_safe_and_versioned(query: tuple[ClusterFilter, Order, Position]) -> None:
    cursor = CODEC.encode(*query)
    assert URL_SAFE.fullmatch(cursor), cursor
    assert cursor.startswith("1.")


@settings(max_examples=200)
@given(cursors(), st.data())
def test_any_single_character_substitution_is_refused(
    made: tuple[ClusterFilter, Order, str], data: st.DataObject
) -> None:
    where, order, cursor = made
    at = data.draw(st.integers(0, len(cursor) - 1), label="at")
    # Mostly characters a cursor is made of (the likeliest forgeries), sometimes any at all.
    char = data.draw(st.sampled_from("AQgw09-_.=+/2") | st.characters(), label="char")
    assume(char != cursor[at])
    _refused(cursor[:at] + char + cursor[at + 1 :], where, order)


@settings(max_examples=200)
@given(cursors(), st.data())
def test_any_insertion_is_refused(
    made: tuple[ClusterFilter, Order, str], data: st.DataObject
) -> None:
    where, order, cursor = made
    at = data.draw(st.integers(0, len(cursor)), label="at")
    inserted = data.draw(st.text(st.sampled_from("AQgw09-_.=") | st.characters(), min_size=1))
    _refused(cursor[:at] + inserted + cursor[at:], where, order)


@settings(max_examples=200)
@given(cursors(), st.data())
def test_any_deletion_or_truncation_is_refused(
    made: tuple[ClusterFilter, Order, str], data: st.DataObject
) -> None:
    where, order, cursor = made
    start = data.draw(st.integers(0, len(cursor) - 1), label="start")
    end = data.draw(st.integers(start + 1, len(cursor)), label="end")
    _refused(cursor[:start] + cursor[end:], where, order)  # deletes one or more characters
    _refused(cursor[:start], where, order)  # truncation, down to the empty string


@settings(max_examples=100)
@given(cursors(), st.permutations(range(3)))
def test_swapping_its_parts_is_refused(
    made: tuple[ClusterFilter, Order, str], permutation: list[int]
) -> None:
    where, order, cursor = made
    parts = cursor.split(".")
    assume(permutation != [0, 1, 2])
    _refused(".".join(parts[i] for i in permutation), where, order)


@settings(max_examples=200)
@given(cursors(), filters, orders)
def test_a_cursor_is_refused_for_another_filter_or_order(
    made: tuple[ClusterFilter, Order, str], other_filter: ClusterFilter, other_order: Order
) -> None:
    where, order, cursor = made
    assume((other_filter, other_order) != (where, order))
    with pytest.raises(InvalidInput, match="other filters or another order"):
        CODEC.decode(cursor, other_filter, other_order, name="next key")


@settings(max_examples=100)
@given(queries(), st.binary(min_size=16, max_size=64))
def test_a_cursor_made_with_another_key_is_refused(
    query: tuple[ClusterFilter, Order, Position], other_key: bytes
) -> None:
    assume(other_key != KEY)
    where, order, _ = query
    _refused(CursorCodec(other_key).encode(*query), where, order)


@settings(max_examples=100)
@given(cursors(), st.sampled_from("023456789aAzZ") | st.text(min_size=2, max_size=3))
def test_a_foreign_version_is_refused_even_with_a_valid_body(
    made: tuple[ClusterFilter, Order, str], version: str
) -> None:
    where, order, cursor = made
    assume(version != "1")
    _refused(version + cursor[1:], where, order)
