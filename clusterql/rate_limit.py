"""Rate limits (SPEC §10): 429 with `Retry-After`, in each API's shape, from token buckets.

Two limiters, each a table of token buckets bounded in size (an LRU, so memory stays the same
however many tokens or addresses appear; a forgotten bucket comes back full, which only forgives):

- per client address, before authentication: every failed authentication (a 401) takes from the
  address's bucket, and an address whose bucket is empty gets 429 before its token is even looked
  up, so guessing tokens costs the guesser and not the database. Successful requests take
  nothing from it: many clients behind one proxy are not throttled together;
- per API token, after authentication: every request takes from its token's bucket, with the
  budget of its permission (a token with Admin, or one with only Controller).

The buckets live in each process: with N processes (`--workers N`, or N machines) the effective
limits are N times these. The client address is the connection's peer as uvicorn reports it:
behind a proxy, let uvicorn take it from `X-Forwarded-For` (`FORWARDED_ALLOW_IPS`).
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Scope

from clusterql.refusals import Boundary, note
from models.tokens import Permission, Principal

log = logging.getLogger("clusterql.app")

FOR_TOKEN = "for this token"  # noqa: S105 (a message, not a secret)
FROM_ADDRESS = "with failed authentication from this address"


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` requests a second on average, `burst` at once; a rate of 0 is no limit."""

    per_second: float
    burst: int

    @property
    def limited(self) -> bool:
        return self.per_second > 0


@dataclass(frozen=True, slots=True)
class RateLimits:
    admin: Rate
    controller: Rate
    address: Rate
    keys: int  # buckets each limiter keeps


class Buckets:
    """Token buckets by key, at most `max_keys` of them (the least recently used is dropped)."""

    def __init__(self, max_keys: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def wait(self, key: Hashable, rate: Rate, *, take: bool = True) -> float:
        """0 when `key` has a request left (taken from its bucket if `take`), else the seconds
        until it has one again."""
        now = self._clock()
        buckets = self._buckets
        found = buckets.get(key)
        if found is None:
            tokens = float(rate.burst)
        else:
            left, then = found
            tokens = min(float(rate.burst), left + (now - then) * rate.per_second)
            buckets.move_to_end(key)
        waited = 0.0
        if tokens >= 1:
            tokens -= take
        else:
            waited = (1 - tokens) / rate.per_second
        buckets[key] = (tokens, now)
        if len(buckets) > self.max_keys:
            buckets.popitem(last=False)
        return waited


class RateLimiter:
    """The limits and both tables of one app, shared by the stacks of both APIs."""

    def __init__(self, limits: RateLimits) -> None:
        self.limits = limits
        self.addresses = Buckets(limits.keys)
        self.tokens = Buckets(limits.keys)

    def token_rate(self, principal: Principal) -> Rate:
        admin = principal.may(Permission.ADMIN)
        return self.limits.admin if admin else self.limits.controller

    def address_wait(self, address: str) -> float:
        """Before authentication: 0 when `address` may try (nothing is taken), else the
        seconds until it may again."""
        rate = self.limits.address
        return self.addresses.wait(address, rate, take=False) if rate.limited else 0.0

    def failed_authentication(self, address: str) -> None:
        """A request from `address` was answered 401: it takes from the address's bucket."""
        rate = self.limits.address
        if rate.limited:
            self.addresses.wait(address, rate)

    def token_wait(self, principal: Principal) -> float:
        """After authentication: 0 when the token has a request left (it is taken), else the
        seconds until it has one again."""
        rate = self.token_rate(principal)
        return self.tokens.wait(principal.token_id, rate) if rate.limited else 0.0


def _retry_after(wait: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(wait)))}


def address_of(scope: Scope) -> str:
    """The client address a request's failed authentications are counted by."""
    client = scope.get("client")
    return client[0] if client else ""


def throttled(boundary: Boundary, scope: Scope, what: str, wait: float) -> Response:
    """The 429 of a request refused by a rate limit (`what`: FOR_TOKEN or FROM_ADDRESS), which
    may be sent again after `wait` seconds."""
    note(scope, "rate_limit_token" if what == FOR_TOKEN else "rate_limit_address")
    headers = _retry_after(wait)
    seconds = headers["Retry-After"]
    log.info(
        "rate limited (%s): 429, retry after %s s",
        what,
        seconds,
        extra={"request_id": scope.get("state", {}).get("request_id")},
    )
    message = f"too many requests {what}: try again in {seconds} s"
    return boundary.refuse(429, message, headers)
