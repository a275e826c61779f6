"""Values kept per the identities of the objects they were made from (a schema, a document's
nodes), for the executor's caches across requests (`graph.collections_kept`, `graph.variables`).

A key holds `id()`s, which are cheap to hash where the objects themselves (graphql-core's AST
nodes) hash by walking their fields. An id is only an object's while that object lives, so each
entry keeps its objects alive: no other object can take their ids while it is there. At most
`size` entries are kept, the least recently used dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class KeptByIdentity(Generic[V]):
    """At most `size` values under keys made of ids, each kept with the objects they name."""

    __slots__ = ("_entries", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[tuple[object, ...], V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get_or_make(self, key: Hashable, keep: tuple[object, ...], make: Callable[[], V]) -> V:
        """The value kept under `key`; if there is none, `make()`'s, kept with `keep` (the
        objects whose ids `key` holds). Raises TypeError for a key that cannot be hashed."""
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = (keep, make())
            if len(self._entries) > self.size:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry[1]
