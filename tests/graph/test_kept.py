"""The executor's caches keep values per the identities of objects (`graph.kept`)."""

from __future__ import annotations

import gc
import weakref

import pytest

from graph.kept import KeptByIdentity


class _Node:
    """Stands for a document's node: any object an id can name."""


def test_a_value_is_made_once_per_key_and_the_least_recently_used_goes_first() -> None:
    # given: room for two
    kept: KeptByIdentity[str] = KeptByIdentity(2)
    a, b, c = _Node(), _Node(), _Node()
    made: list[str] = []

    def make(name: str) -> str:
        made.append(name)
        return name.upper()

    # when: a and b are kept, a is used again, then c comes
    assert kept.get_or_make(id(a), (a,), lambda: make("a")) == "A"
    assert kept.get_or_make(id(b), (b,), lambda: make("b")) == "B"
    assert kept.get_or_make(id(a), (a,), lambda: make("a again")) == "A"
    kept.get_or_make(id(c), (c,), lambda: make("c"))
    # then: b, the least recently used, was dropped; a and c are still there
    assert len(kept) == 2
    assert kept.get_or_make(id(a), (a,), lambda: make("a, dropped?")) == "A"
    assert kept.get_or_make(id(c), (c,), lambda: make("c, dropped?")) == "C"
    assert kept.get_or_make(id(b), (b,), lambda: make("b, made again")) == "B, MADE AGAIN"
    assert made == ["a", "b", "c", "b, made again"]


def test_an_entry_keeps_its_objects_alive_until_it_is_dropped() -> None:
    # given: an object known only to the cache, by its id
    kept: KeptByIdentity[None] = KeptByIdentity(1)
    node = _Node()
    alive = weakref.ref(node)
    kept.get_or_make(id(node), (node,), lambda: None)
    del node
    gc.collect()
    # then: its id cannot be another object's while the entry is there
    assert alive() is not None
    # and: once dropped, it goes
    other = _Node()
    kept.get_or_make(id(other), (other,), lambda: None)
    gc.collect()
    assert alive() is None


def test_a_value_that_cannot_be_hashed_is_refused_and_nothing_is_kept() -> None:
    kept: KeptByIdentity[int] = KeptByIdentity(4)
    with pytest.raises(TypeError):
        kept.get_or_make(("x", [1]), (), lambda: 1)
    assert len(kept) == 0
