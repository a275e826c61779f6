"""Which cluster names a Controller token may report (SPEC §3): its binding.

An Admin binds each Controller token to exact names and/or glob patterns (`prod-eu`, `sim-*`),
with `fnmatch`'s rules, case-sensitive: `*` any text, `?` one character, `[abc]`/`[!abc]` one
of (or none of) a set; `literal(name)` escapes a name that holds one of those characters.
Ownership belongs to the binding, not to a token: any live token bound to a name reports it, so
a rotated secret (a new token with the same binding) keeps reporting its clusters.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from models.errors import InvalidInput
from models.limits import MAX_BINDING_PATTERNS, MAX_CLUSTER_NAME

# What a report for a name outside the caller's binding gets: one message whether or not the
# name is registered (or was, or will be), so that a refusal says nothing about other clusters.
OUTSIDE_BINDING = (
    "this token is not bound to that cluster name: an Admin binds Controller tokens to the "
    "names they report (`clusterql token bind`)"
)
_GLOB_CHARACTERS = re.compile(r"([*?\[])")


@dataclass(frozen=True, slots=True)
class Binding:
    """The names and patterns one token is bound to, in the order they were given."""

    patterns: tuple[str, ...] = ()

    def covers(self, name: str) -> bool:
        return bool(self.patterns) and _matcher(self.patterns).match(name) is not None


NOTHING = Binding()


@lru_cache(maxsize=1024)
def _matcher(patterns: tuple[str, ...]) -> re.Pattern[str]:
    # One expression for the whole binding (fnmatch.translate anchors each at its end).
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))


def literal(name: str) -> str:
    """A pattern that matches exactly `name`, whatever characters it holds."""
    return _GLOB_CHARACTERS.sub(r"[\1]", name)


def pattern(text: str) -> str:
    """`text` as a stored pattern (NFC, like names), or `InvalidInput` saying what is wrong."""
    if not text or len(text) > MAX_CLUSTER_NAME:
        raise InvalidInput(
            f"a cluster name or pattern is 1 to {MAX_CLUSTER_NAME} characters: {text[:40]!r}"
        )
    if not text.isprintable() or text != text.strip():
        raise InvalidInput(
            f"a cluster name or pattern must be printable, without spaces around it: {text!r}"
        )
    return unicodedata.normalize("NFC", text)


def binding(texts: Iterable[str]) -> Binding:
    """A binding of the patterns `texts`, checked, each once, in the order first given."""
    patterns = tuple(dict.fromkeys(pattern(t) for t in texts))
    if len(patterns) > MAX_BINDING_PATTERNS:
        raise InvalidInput(
            f"a token is bound to at most {MAX_BINDING_PATTERNS} names and patterns; "
            f"{len(patterns)} given: use patterns such as 'prod-*'"
        )
    return Binding(patterns)
