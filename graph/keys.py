"""How pagination keys and cluster ids are written on the wire."""

from __future__ import annotations

import re

from models.errors import InvalidInput

_DECIMAL = re.compile(r"(?:0|[1-9][0-9]{0,18})")
_MAX_ID = 2**63 - 1


def parse_cluster_id(text: str) -> int | None:
    """A cluster id written as a canonical decimal string; None if it cannot name a cluster."""
    if not _DECIMAL.fullmatch(text):
        return None
    value = int(text)
    return value if value <= _MAX_ID else None


def parse_next_key(next_key: str | None) -> int | None:
    """The cluster id a page continues after; None for the first page."""
    if next_key is None or next_key == "":
        return None
    after_id = parse_cluster_id(next_key)
    if after_id is None:
        raise InvalidInput(
            f"next key {next_key!r} is not a key of this service: pass the previous page's "
            "next key unchanged, or an empty string for the first page"
        )
    return after_id
