"""Who hears which change: the process's subscriptions, each with its filter and a bounded queue.

Committed changes arrive through `changed` (from the writer itself on SQLite, from the listening
connection on PostgreSQL), which never waits: writers never wait for readers. One task
(`Fanout.run`) takes them in batches, asks the database in one statement which filters each
change's cluster matches (`models.changes.matching`: the filters mean what they mean in a
listing; ids are matched in the process, and filters of ids alone need no statement), and
offers each change to the matching subscribers. A subscriber whose queue is full
is too slow: it is ended (`Ending.TOO_SLOW`), and its connection closed by whoever opened it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncEngine

from models.changes import Change, ChangeKind, matching, turned_stale
from models.clusters import get_live
from models.engine import read_transaction
from models.faults import is_unavailable
from models.limits import DEFAULT_STALE_AFTER
from models.listing import ClusterFilter
from models.records import ClusterRecord

log = logging.getLogger("clusterql.graph")

# Changes taken in one batch, and filters asked about in one statement.
BATCH = 256
FILTERS_PER_STATEMENT = 200
# After a matching statement, the changes that arrive within this gap share the next one: under
# a stream of reports, matching costs a statement per gap rather than one per report (a fixed
# delay of at most this much on an event, well inside the 1 s an event is due in).
MATCH_GAP_S = 0.05


class Ending(StrEnum):
    """Why a subscription was ended by the server."""

    TOO_SLOW = "too slow"  # its queue was full
    EVENTS_LOST = "events lost"  # the process may have missed changes (database restart)


OnEnd = Callable[[Ending, str], None]


class Offered:
    """A change as offered to every subscriber it matches, with the cluster as stored after it,
    read once for all of them (on first asking) when their events need no more than the row."""

    __slots__ = ("_read", "change", "engine")

    def __init__(self, engine: AsyncEngine, change: Change) -> None:
        self.engine = engine
        self.change = change
        self._read: asyncio.Task[ClusterRecord | None] | None = None

    async def record(self) -> ClusterRecord | None:
        """The live cluster as stored now, read by the first subscriber to ask; None once it
        is no longer live (its removal follows as a change of its own)."""
        if self._read is None:
            self._read = asyncio.ensure_future(self._read_now())
            self._read.add_done_callback(lambda t: t.cancelled() or t.exception())  # retrieved
        return await asyncio.shield(self._read)  # one subscriber cancelled: not the others

    async def _read_now(self) -> ClusterRecord | None:
        async with read_transaction(self.engine) as conn:
            return await get_live(conn, self.change.cluster_id)


class Subscriber:
    """One subscription: its filter, and the changes waiting for it (at most `size`)."""

    __slots__ = ("_queue", "ended", "on_end", "where")

    def __init__(self, where: ClusterFilter, size: int, on_end: OnEnd | None) -> None:
        self.where = where
        self.on_end = on_end
        self.ended: Ending | None = None
        self._queue: asyncio.Queue[Offered | None] = asyncio.Queue(size + 1)  # +1: the end

    def offer(self, offered: Offered) -> None:
        if self.ended is not None:
            return
        if self._queue.qsize() >= self._queue.maxsize - 1:
            self.end(Ending.TOO_SLOW, f"more than {self._queue.maxsize - 1} events waiting")
            return
        self._queue.put_nowait(offered)

    def end(self, why: Ending, detail: str) -> None:
        if self.ended is not None:
            return
        self.ended = why
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)
        if self.on_end is not None:
            self.on_end(why, detail)

    async def next(self) -> Offered | None:
        """The next change for this subscriber; None once it has been ended."""
        return await self._queue.get()


class Fanout:
    """The subscriptions of one process, and the task that hands them the changes."""

    def __init__(
        self,
        engine: AsyncEngine,
        queue_size: int,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        max_pending: int = 100_000,
    ) -> None:
        self.engine = engine
        self.queue_size = queue_size
        self.stale_after = stale_after
        self.max_pending = max_pending
        self.subscribers: set[Subscriber] = set()
        # Subscribers grouped by filter: a change is matched once per distinct filter, and
        # only the groups it matches are visited.
        self._by_filter: dict[ClusterFilter, set[Subscriber]] = {}
        self._pending: deque[Change] = deque()
        self._wake = asyncio.Event()

    def subscribe(self, where: ClusterFilter, on_end: OnEnd | None = None) -> Subscriber:
        subscriber = Subscriber(where, self.queue_size, on_end)
        self.subscribers.add(subscriber)
        self._by_filter.setdefault(where, set()).add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)
        group = self._by_filter.get(subscriber.where)
        if group is not None:
            group.discard(subscriber)
            if not group:
                del self._by_filter[subscriber.where]

    def changed(self, change: Change) -> None:
        """A committed change (never waits)."""
        if not self.subscribers:
            return
        if len(self._pending) >= self.max_pending:
            self._pending.clear()
            self.interrupted(f"more than {self.max_pending} changes waiting to be matched")
            return
        self._pending.append(change)
        self._wake.set()

    def interrupted(self, reason: str) -> None:
        """Changes may have gone unheard: every subscriber must reconnect and reconcile."""
        for subscriber in list(self.subscribers):
            subscriber.end(Ending.EVENTS_LOST, reason)

    async def run(self) -> None:
        """Hand the changes to the subscribers, until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch = [self._pending.popleft() for _ in range(min(BATCH, len(self._pending)))]
                try:
                    asked = await self._dispatch(batch)
                except Exception as exc:
                    if not is_unavailable(exc):
                        log.exception("matching cluster changes failed")
                    self.interrupted("the database is unavailable")
                    continue
                if asked:  # let the next changes gather: one statement for many of them
                    await asyncio.sleep(MATCH_GAP_S)

    async def _dispatch(self, batch: list[Change]) -> bool:
        """Offer `batch` to the subscribers it matches; True if that took a statement.

        Ids are matched here: a change whose cluster a filter's `ids` leave out does not match
        it, and a filter of nothing but ids (or of nothing) needs no statement. A cluster no
        longer live by the time its event is read is skipped then (`graph.subscription`).
        """
        groups = [(where, list(group)) for where, group in self._by_filter.items()]
        asked = [where for where, _ in groups if not _by_ids_alone(where)]
        asked_at = {where: i for i, where in enumerate(asked)}
        unknown = [
            i
            for i, change in enumerate(batch)
            if any(where.ids is None or change.cluster_id in where.ids for where in asked)
        ]
        answers: dict[int, list[bool]] = {i: [] for i in unknown}
        if unknown:
            changes = [batch[i] for i in unknown]
            stale_before = datetime.now(UTC) - self.stale_after  # judged now, not at subscribing
            async with read_transaction(self.engine) as conn:
                for start in range(0, len(asked), FILTERS_PER_STATEMENT):
                    chunk = [
                        replace(where, stale_before=stale_before)
                        for where in asked[start : start + FILTERS_PER_STATEMENT]
                    ]
                    for i, found in zip(unknown, await matching(conn, changes, chunk), strict=True):
                        answers[i].extend(found)
        for i, change in enumerate(batch):
            offered = Offered(self.engine, change)
            for where, group in groups:
                if where.ids is not None and change.cluster_id not in where.ids:
                    continue
                at = asked_at.get(where)
                if at is None or answers[i][at]:
                    for subscriber in group:
                        subscriber.offer(offered)
        return bool(unknown)

    async def watch_staleness(self, every_s: float) -> None:
        """Announce STALE for each live cluster whose last report grows older than
        `stale_after`, checked every `every_s` seconds (each process for its own subscribers,
        from the database: no notification needed), until cancelled."""
        checked = datetime.now(UTC)
        while True:
            await asyncio.sleep(every_s)
            now = datetime.now(UTC)
            if not self.subscribers:
                checked = now
                continue
            try:
                async with read_transaction(self.engine) as conn:
                    ids = await turned_stale(
                        conn, checked - self.stale_after, now - self.stale_after
                    )
            except Exception as exc:
                if not is_unavailable(exc):
                    raise
                continue  # the same window is looked at again next time
            checked = now
            for cluster_id in ids:
                self.changed(Change(ChangeKind.STALE, cluster_id))


def _by_ids_alone(where: ClusterFilter) -> bool:
    """Whether `where` asks nothing but (perhaps) ids: matched without the database."""
    return replace(where, ids=None).is_empty


@dataclass(frozen=True, slots=True)
class Listening:
    """What a websocket connection gives its operations: the process's fan-out, and what to do
    when the server ends one of its subscriptions (close the connection, saying why)."""

    fanout: Fanout
    on_end: OnEnd | None = None
