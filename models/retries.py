"""Running a whole write transaction again when it lost a race with a concurrent one.

On PostgreSQL two transactions can collide in ways SQLite's single writer never sees: two first
reports of one name both try to register it (the second fails on the live-name unique index once
the first commits), and serialization failures or deadlocks abort a transaction that would
succeed if run alone. In each case the right answer is to run the same work again from the
start, in a new transaction, after a short random pause so that the rivals do not collide again.
https://www.postgresql.org/docs/15/mvcc-serialization-failure-handling.html
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from models.faults import is_dead_connection, is_write_conflict

T = TypeVar("T")
log = logging.getLogger("clusterql.models")

ATTEMPTS = 5
BASE_PAUSE_S = 0.01


async def retry_conflicts(
    transaction: Callable[[], Awaitable[T]],
    *,
    unique_index: str | None = None,
    attempts: int = ATTEMPTS,
) -> T:
    """Await `transaction()` (which must open, run and commit its own transaction), again on
    a write conflict (see `models.faults.is_write_conflict`) or when its pooled connection
    turned out dead, at most `attempts` times in all; the last failure is raised as it is.
    """
    for attempt in range(1, attempts + 1):
        try:
            return await transaction()
        except Exception as exc:
            if attempt == attempts or not (
                is_write_conflict(exc, unique_index) or is_dead_connection(exc)
            ):
                raise
            pause = random.uniform(0, BASE_PAUSE_S * 2**attempt)
            log.info(
                "write transaction lost a race (attempt %d of %d): running it again in %.0f ms",
                attempt,
                attempts,
                pause * 1000,
            )
            await asyncio.sleep(pause)
    raise AssertionError("unreachable")  # the loop returns or raises
