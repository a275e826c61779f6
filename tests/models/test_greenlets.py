"""`models.greenlets.run_sync`: SQLAlchemy's `greenlet_spawn` on kept greenlets, with its
behaviour: `await_` waits, results and errors come back, cancellation reaches the function,
the caller's context variables are seen, and calls at once each run on a greenlet of their own."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.util import await_

from models import greenlets
from models.engine import create_engine
from models.greenlets import run_sync

_seen: contextvars.ContextVar[str] = contextvars.ContextVar("_seen", default="unset")


def _waits(value: int, seconds: float = 0.01) -> tuple[int, str]:
    return await_(asyncio.sleep(seconds, result=value)), _seen.get()


async def test_a_function_that_waits_gets_its_values_and_sees_the_callers_context() -> None:
    _seen.set("the caller's")
    assert await run_sync(_waits, 1) == (1, "the caller's")
    assert await run_sync(lambda: 2) == 2  # and one that does not wait


async def test_calls_at_once_run_side_by_side_and_their_greenlets_are_kept() -> None:
    greenlets._idle.kept.clear()
    started = asyncio.get_running_loop().time()
    results = await asyncio.gather(*(run_sync(_waits, i, 0.2) for i in range(4)))
    assert asyncio.get_running_loop().time() - started < 0.6  # not one after the other
    assert [value for value, _ in results] == [0, 1, 2, 3]
    kept = list(greenlets._idle.kept)
    assert len(kept) == 4
    await run_sync(_waits, 5)
    assert greenlets._idle.kept[-1] in kept  # a kept one ran it


async def test_an_error_is_raised_to_the_caller_and_the_greenlet_is_kept() -> None:
    def fails() -> None:
        await_(asyncio.sleep(0))
        raise ValueError("stored value is wrong")

    with pytest.raises(ValueError, match="stored value is wrong"):
        await run_sync(fails)
    assert await run_sync(_waits, 7) == (7, "unset")


async def test_cancelling_the_caller_reaches_the_function_where_it_waits() -> None:
    reached = asyncio.Event()
    saw: list[str] = []

    def long() -> None:
        reached.set()
        try:
            await_(asyncio.sleep(30))
        except asyncio.CancelledError:
            saw.append("cancelled")
            raise

    call = asyncio.ensure_future(run_sync(long))
    await reached.wait()
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert saw == ["cancelled"]
    assert await run_sync(_waits, 8) == (8, "unset")


def test_each_thread_keeps_its_own_greenlets() -> None:
    # a greenlet runs only in the thread that made it: another thread's loop makes its own
    asyncio.run(run_sync(_waits, 1))
    errors: list[BaseException] = []

    def elsewhere() -> None:
        try:
            assert asyncio.run(run_sync(_waits, 2))[0] == 2
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert errors == []


async def test_sqlalchemy_runs_its_statements_there(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'g.db'}")

    def query(sync_engine: Engine) -> int:
        with sync_engine.connect() as conn:
            return int(conn.execute(text("SELECT 41 + 1")).scalar_one())

    try:
        assert await asyncio.gather(*(run_sync(query, engine.sync_engine) for _ in range(3))) == [
            42,
            42,
            42,
        ]
    finally:
        await engine.dispose()
