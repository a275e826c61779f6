"""Token secrets: `cql_` and 43 URL-safe characters (256 random bits), kept only as SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "cql_"
_SHAPE = re.compile(r"cql_[A-Za-z0-9_-]{43}")


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_secret(text: str) -> bool:
    return _SHAPE.fullmatch(text) is not None
