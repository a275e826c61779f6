"""Opaque pagination cursors: versioned, URL-safe, and signed so that they cannot be forged.

`1.<payload>.<mac>`: the payload (base64url JSON) binds the order, a fingerprint of the filter
and order, the sort value and the id of the last cluster seen; the mac is HMAC-SHA256 over
`1.<payload>` with a key the service keeps in its database, so every process accepts every
other's cursors. Any change to a cursor, including a non-canonical base64 spelling, is refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import datetime
from typing import Any

import orjson

from graph.scalars import format_timestamp, parse_timestamp
from models.errors import InvalidInput
from models.listing import ClusterFilter, Order, OrderField, Position
from models.node_search import NodeFilter

VERSION = "1"
_MAC_BYTES = 16
_TIMESTAMP_FIELDS = {OrderField.MONITORED_AT, OrderField.CONTROLLER_LAST_UPDATED}
_INVALID = (
    "is not a cursor of this service (altered, truncated or from elsewhere): "
    "pass the previous page's key unchanged, or start again without one"
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:  # one spelling per value: no malleable padding bits
        raise ValueError("non-canonical base64")
    return data


# A node search's cursor is a cluster cursor of this impossible filter (no cluster has id -1),
# whose sort value is the fingerprint of the node filter: one format, one signature.
_NODE_SEARCH = ClusterFilter(ids=(-1,))


def node_fingerprint(where: NodeFilter) -> str:
    canonical = orjson.dumps({"nodes": where}, option=orjson.OPT_SORT_KEYS)
    return _b64(hashlib.sha256(canonical).digest()[:9])


def fingerprint(where: ClusterFilter, order: Order) -> str:
    """A short digest of what a walk lists: a cursor is only valid for the same query."""
    canonical = orjson.dumps(
        {"filter": where.identity(), "order": [order.field, order.direction]},
        option=orjson.OPT_SORT_KEYS,
    )
    return _b64(hashlib.sha256(canonical).digest()[:9])


class CursorCodec:
    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, signed: str) -> str:
        return _b64(hmac.new(self._key, signed.encode(), hashlib.sha256).digest()[:_MAC_BYTES])

    def encode(self, where: ClusterFilter, order: Order, position: Position) -> str:
        value = position.value
        payload = {
            "f": fingerprint(where, order),
            "v": format_timestamp(value) if isinstance(value, datetime) else value,
            "i": position.id,
        }
        signed = f"{VERSION}.{_b64(orjson.dumps(payload))}"
        return f"{signed}.{self._mac(signed)}"

    def encode_node(self, where: NodeFilter, node_id: int) -> str:
        """A cursor after node `node_id` in a search of nodes (`nodes(filter:)`, by id)."""
        return self.encode(_NODE_SEARCH, Order(), Position(node_fingerprint(where), node_id))

    def decode_node(self, cursor: str, where: NodeFilter, *, name: str) -> int:
        """The node id `cursor` stands for in this search; `InvalidInput` naming `name` if not."""
        position = self.decode(cursor, _NODE_SEARCH, Order(), name=name)
        if position.value != node_fingerprint(where):
            raise InvalidInput(
                f"{name} was made for another node filter (or is a cursor of clusters): send "
                "the same filter as for the page that gave it"
            )
        return position.id

    def decode(self, cursor: str, where: ClusterFilter, order: Order, *, name: str) -> Position:
        """The position `cursor` stands for in this query; `InvalidInput` naming `name` if not."""
        parts = cursor.split(".")
        if len(parts) != 3:
            raise InvalidInput(f"{name} {_INVALID}")
        version, body, mac = parts
        if version != VERSION:
            raise InvalidInput(
                f"{name} is a cursor of version {version[:8]!r}, which this service no longer "
                "reads: start the walk again without it"
            )
        try:
            valid_mac = hmac.compare_digest(_unb64(mac), _unb64(self._mac(f"{version}.{body}")))
            payload = orjson.loads(_unb64(body)) if valid_mac else None
        except (ValueError, binascii.Error):
            payload = None
        if not isinstance(payload, dict):
            raise InvalidInput(f"{name} {_INVALID}")
        if payload.get("f") != fingerprint(where, order):
            raise InvalidInput(
                f"{name} was made for other filters or another order: send the same filters, "
                "order_by and direction as for the page that gave it"
            )
        return Position(value=self._value(payload.get("v"), order.field), id=int(payload["i"]))

    @staticmethod
    def _value(value: Any, field: OrderField) -> int | str | datetime:
        if field in _TIMESTAMP_FIELDS:
            return parse_timestamp(value)
        return value  # type: ignore[no-any-return]
