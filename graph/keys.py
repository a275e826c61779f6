"""Where a walk continues: plain ids for the vendor's default walk, signed cursors otherwise.

The default order without filters keeps the plain id of the last cluster as its key (what the
vendor's clients expect); any other order or any filter gets an opaque cursor (`graph.cursors`).
"""

from __future__ import annotations

import re

from graph.context import Context
from models import clusters as clusters_db
from models.errors import InvalidInput, NotFound
from models.listing import ClusterFilter, Order, Position, position_of
from models.records import ClusterRecord

_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,18})")
_MAX_ID = 2**63 - 1


def parse_cluster_id(text: str) -> int | None:
    """A cluster id written as a canonical decimal string; None if it cannot name a cluster."""
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


def uses_plain_ids(where: ClusterFilter, order: Order) -> bool:
    return where.is_empty and order.is_default


async def position_of_key(
    context: Context, key: str | None, where: ClusterFilter, order: Order, *, name: str
) -> Position | None:
    """Where the walk continues after `key`; None for the first page."""
    if key is None or key == "":
        return None
    if not uses_plain_ids(where, order):
        return context.cursors.decode(key, where, order, name=name)
    after_id = parse_cluster_id(key)
    if after_id is None:
        raise InvalidInput(
            f"{name} {key!r} is not a key of this service: pass the previous page's "
            f"{name} unchanged, or an empty string for the first page"
        )
    if not await context.snapshot.run(lambda conn: clusters_db.id_assigned(conn, after_id)):
        raise NotFound(f"{name} {after_id} is not the id of any cluster")
    return Position(value=after_id, id=after_id)


def key_after(context: Context, record: ClusterRecord, where: ClusterFilter, order: Order) -> str:
    """The key that continues a walk after `record`."""
    if uses_plain_ids(where, order):
        return str(record.id)
    return context.cursors.encode(where, order, position_of(record, order.field))
