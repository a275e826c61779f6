"""Response headers every answer carries, and request headers that may appear only once.

- Every response: `X-Content-Type-Options: nosniff` and `Referrer-Policy: no-referrer`.
- API answers (`no_store`, from each API's gate, `clusterql.api_gate`): `Cache-Control: no-store`,
  since they hold fleet data for one caller. The static GraphiQL files stay cacheable.
- A request with two `Authorization` or two `Host` headers is refused with 400 in the API's
  shape: a proxy that checks the first one and an app that reads the last one would disagree
  about who is asking, or for which site.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Scope

EVERYWHERE = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
NO_STORE = ((b"cache-control", b"no-store"),)
SINGLETONS = (b"authorization", b"host")


Headers = Sequence[tuple[bytes, bytes]]


def _with(headers: Headers, extra: Headers) -> list[tuple[bytes, bytes]]:
    """`headers` and those of `extra` they do not name."""
    present = {name.lower() for name, _ in headers}
    return [*headers, *(header for header in extra if header[0] not in present)]


def everywhere(headers: Headers) -> list[tuple[bytes, bytes]]:
    """Any answer's headers, with those of `EVERYWHERE` (`clusterql.edge` adds them)."""
    return _with(headers, EVERYWHERE)


def no_store(headers: Headers) -> list[tuple[bytes, bytes]]:
    """An API answer's headers, with `NO_STORE` unless it says its own caching."""
    return _with(headers, NO_STORE)


def duplicated(scope: Scope) -> str | None:
    """What to fix when a request sends a singleton header twice, else None."""
    names = [name.lower() for name, _ in scope["headers"]]
    for singleton in SINGLETONS:
        if names.count(singleton) > 1:
            return f"send the {singleton.decode().title()} header once, not twice"
    return None
