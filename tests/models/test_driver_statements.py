"""Reads the driver runs itself (`models.driver_statements`) say what SQLAlchemy's way says.

Every fixed page statement (each order both ways, first and continued pages, filters) runs
through the driver with the very SQL and arguments SQLAlchemy sends for it, and its records and
counts equal those SQLAlchemy's way reads; outside a transaction, and when the driver fails,
the caller takes SQLAlchemy's way. Runs on the pass's database (SQLite, or PostgreSQL).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, event, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from models import bindings, clusters, driver_statements, listing, tokens
from models.engine import read_transaction
from models.listing import ClusterFilter, Direction, Order, OrderField, Position, position_of
from models.records import ClusterRecord, Rows
from models.tokens import Permission
from tests import factories
from tests.databases import NewEngine
from tests.models.conftest import not_by_driver

FILTERS = [
    ClusterFilter(),
    ClusterFilter(name="A%_/"),  # LIKE's own characters, escaped as parameters
    ClusterFilter(controller_statuses=("stopped",), has_unhealthy_nodes=True),
    ClusterFilter(regions=("eu-west-1",)),
]
ORDERS = [Order(field, direction) for field in OrderField for direction in Direction]


async def _fleet(engine: AsyncEngine) -> list[ClusterRecord]:
    rng = random.Random(7)
    for batch in range(3):
        await factories.insert(
            engine,
            [
                factories.cluster(
                    f"{rng.choice(['a', 'A%_/', 'b'])}-{batch}-{i}",
                    node_count=rng.choice([0, 1, 2]),
                    provider=rng.choice(["aws", "gcp"]),
                )
                for i in range(8)
            ],
        )
    async with read_transaction(engine) as conn:
        records, more = await listing.page(conn, ClusterFilter(), Order(), None, 1000)
    assert not more
    assert len(records) == 24
    return list(records)


class _SqlAlchemyWay:
    """Sends every page and count through SQLAlchemy, recording what it sends."""

    def __init__(self, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[tuple[str, Any]] = []
        self._engine = engine
        self._monkeypatch = monkeypatch

    def __enter__(self) -> _SqlAlchemyWay:
        self._monkeypatch.setattr(listing, "fetch_statement", not_by_driver)
        event.listen(self._engine.sync_engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self._engine.sync_engine, "before_cursor_execute", self._record)
        self._monkeypatch.undo()

    def _record(
        self, _c: object, _cur: object, statement: str, parameters: Any, *_: object
    ) -> None:
        self.sent.append((statement, tuple(parameters)))


async def _walk(
    conn: AsyncConnection, where: ClusterFilter, order: Order, *, counted: bool = False
) -> list[Any]:
    """Pages of 5 in `order`, after their count, as one list to compare; with `counted` each
    page is read with its count (`page_and_count`), which must be the same for every page (the
    first, continued ones, the empty one after a last full page)."""
    out: list[Any] = [] if counted else [await listing.count_matching(conn, where)]
    after: Position | None = None
    while True:
        if counted:
            records, more, total = await listing.page_and_count(conn, where, order, after, 5)
            out = out or [total]
            assert total == out[0], (where, order, after)
        else:
            records, more = await listing.page(conn, where, order, after, 5)
        out.append([tuple(r) for r in records])
        if not more:
            return out
        after = position_of(records[-1], order.field)


async def test_pages_and_counts_by_driver_equal_sqlalchemys(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fleet(engine)
    await factories.remove(engine, 3)  # a tombstone to step over
    for where in FILTERS:
        for order in ORDERS:
            async with read_transaction(engine) as conn:
                by_driver = await _walk(conn, where, order)
            with _SqlAlchemyWay(engine, monkeypatch):
                async with read_transaction(engine) as conn:
                    by_sqlalchemy = await _walk(conn, where, order)
            assert by_driver == by_sqlalchemy, (where, order)
            assert sum(len(page) for page in by_driver[1:]) == by_driver[0]


async def test_the_driver_gets_the_sql_and_arguments_sqlalchemy_sends(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = await _fleet(engine)
    middle = records[10]
    taken = 0
    for where in FILTERS:
        for order in ORDERS:
            after = position_of(middle, order.field)
            async with read_transaction(engine) as conn:
                dialect = conn.dialect
                for position in (None, after):
                    query = listing._statement(dialect.name, where, order, position is not None, 5)
                    given = (
                        {}
                        if position is None
                        else {"after_value": after.value, "after_id": after.id}
                    )
                    form = driver_statements.driver_form(query, dialect, tuple(given))
                    if form is None:  # IN lists: SQLAlchemy expands their parameters per call
                        assert query.compile(dialect=dialect).post_compile_params, where
                        continue
                    taken += 1
                    with _SqlAlchemyWay(engine, monkeypatch) as way:
                        await listing.page(conn, where, order, position, 5)
                    [(statement, parameters)] = way.sent
                    assert (form.sql, tuple(form.arguments(given))) == (statement, parameters)
    assert taken >= len(ORDERS) * 2 * 2  # no filter and a name filter at least, everywhere


async def test_driver_rows_are_records_decoded_when_read(engine: AsyncEngine) -> None:
    records = await _fleet(engine)
    async with read_transaction(engine) as conn:
        # the transaction's first statement, by the driver: SQLite's deferred BEGIN goes with
        # it, and asyncpg's is sent first as SQLAlchemy's adapter would have
        assert await listing.count_matching(conn, ClusterFilter()) == len(records)
        page, more = await listing.page(conn, ClusterFilter(), Order(), None, 10)
    assert isinstance(page, Rows)
    assert more
    assert list(page) == records[:10]
    assert all(r.monitored_at.tzinfo is not None and isinstance(r.regions, list) for r in page)


async def test_outside_a_transaction_or_when_the_driver_fails_sqlalchemy_reads(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = await _fleet(engine)
    async with engine.connect() as conn:  # no transaction begun: the driver is not asked
        query = listing._count_statement(conn.dialect.name, ClusterFilter())
        assert await driver_statements.fetch_statement(conn, query) is None
        assert await listing.count_matching(conn, ClusterFilter()) == len(records)

    async def failing(*_: object) -> list[Any]:
        raise RuntimeError("the driver failed")

    async with read_transaction(engine) as conn:
        raw = conn.sync_connection.connection  # type: ignore[union-attr]
        if conn.dialect.name == "sqlite":  # our adapter's read (models.sqlite_driver)
            monkeypatch.setattr(type(raw.dbapi_connection), "fetch_rows", failing)
        else:
            monkeypatch.setattr(type(raw.driver_connection), "fetch", failing)
        page, _ = await listing.page(conn, ClusterFilter(), Order(), None, 100)
        assert not isinstance(page, Rows)
        assert list(page) == records
        assert await listing.count_matching(conn, ClusterFilter()) == len(records)


def test_a_statement_with_parameters_expanded_per_call_is_not_taken() -> None:
    from sqlalchemy.dialects.sqlite.aiosqlite import dialect

    query = listing._statement("sqlite", ClusterFilter(ids=(1, 2)), Order(), False, 5)
    assert driver_statements.driver_form(query, dialect()) is None


async def test_a_token_looked_up_by_driver_is_the_one_sqlalchemy_reads(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    admin = await tokens.issue(engine, "admin", [Permission.ADMIN], now=now)
    bound = bindings.binding(["prod-*", "edge-1"])
    controller = await tokens.issue(
        engine, "ctl", [Permission.CONTROLLER], binding=bound, now=now - timedelta(hours=1)
    )
    expired = await tokens.issue(
        engine, "old", [Permission.ADMIN], expires_at=now + timedelta(seconds=1)
    )
    later = now + timedelta(minutes=5)

    async def look_up(secret: str) -> Any:
        async with read_transaction(engine) as conn:
            return await tokens.find_active(conn, tokens.digest(secret), later)

    answered: list[bool] = []
    real = driver_statements.fetch_statement

    async def spy(*args: Any) -> Any:
        found = await real(*args)
        answered.append(found is not None)
        return found

    monkeypatch.setattr(tokens, "fetch_statement", spy)
    by_driver = [await look_up(s) for s in (admin, controller, expired, "cql_" + "x" * 43)]
    # the first statement of each transaction, taken by the driver on both databases
    assert answered == [True] * 4
    monkeypatch.setattr(tokens, "fetch_statement", not_by_driver)
    by_sqlalchemy = [await look_up(s) for s in (admin, controller, expired, "cql_" + "x" * 43)]
    assert by_driver == by_sqlalchemy
    assert by_driver[2:] == [None, None]
    (principal, stale), (bound_principal, _) = by_driver[0], by_driver[1]
    assert principal.may(Permission.ADMIN)
    assert stale  # never used
    assert bound_principal.binding == bound


async def test_a_first_read_by_the_driver_is_in_the_snapshot(engine: AsyncEngine) -> None:
    records = await _fleet(engine)
    async with read_transaction(engine) as conn:
        query = listing._count_statement(conn.dialect.name, ClusterFilter())
        assert await driver_statements.fetch_statement(conn, query) == [(len(records),)]
        if conn.dialect.name == "postgresql":  # the adapter's BEGIN, with its isolation level
            level = await driver_statements.fetch(conn, "SHOW transaction_isolation", [])
            assert level == [("repeatable read",)]
        # a cluster added meanwhile is not counted: the first read took the snapshot
        await factories.insert(engine, [factories.cluster("meanwhile")])
        assert await listing.count_matching(conn, ClusterFilter()) == len(records)
    async with read_transaction(engine) as conn:
        assert await listing.count_matching(conn, ClusterFilter()) == len(records) + 1


async def test_a_page_read_with_its_count_is_the_page_and_the_count(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _fleet(engine)
    await factories.remove(engine, 3)
    stale = ClusterFilter(stale=True, stale_before=datetime.now(UTC) + timedelta(days=1))
    for where in [*FILTERS, stale, ClusterFilter(name="no such cluster")]:
        for order in ORDERS:
            async with read_transaction(engine) as conn:
                apart = await _walk(conn, where, order)
                together = await _walk(conn, where, order, counted=True)
            assert together == apart, (where, order)

    # one statement for both, when the page's statement is a single fixed SELECT: neither the
    # page's nor the count's own is read
    async def read_apart(*_: object) -> Any:
        raise AssertionError("read apart")

    monkeypatch.setattr(listing, "page", read_apart)
    monkeypatch.setattr(listing, "count_matching", read_apart)
    async with read_transaction(engine) as conn:
        records, more, total = await listing.page_and_count(conn, ClusterFilter(), Order(), None, 5)
    assert (len(records), more, total) == (5, True, 23)
    assert isinstance(records, Rows)


async def test_jsonb_values_written_and_read_back_are_the_same(new_engine: NewEngine) -> None:
    """PostgreSQL's JSONB goes through the text codec `models.engine` registers on each
    connection: what SQLAlchemy's JSON type writes is read back equal, by SQLAlchemy and as
    the server's own text."""
    engine = await new_engine()
    if engine.dialect.name != "postgresql":
        pytest.skip("JSONB and its codec are PostgreSQL's: runs in the PostgreSQL pass")
    values: list[Any] = [
        ["eu-west-1", "ap-南-1"],
        [],
        {"k": [1, 2.5, True, None], "é": {"nested": ["x"]}},
        "text",
        -(2**63),
        None,
    ]
    table = Table("j", MetaData(), Column("id", Integer), Column("v", JSONB(none_as_null=False)))
    async with engine.begin() as conn:
        await conn.run_sync(table.create)
        await conn.execute(table.insert(), [{"id": i, "v": v} for i, v in enumerate(values)])
        read = (await conn.execute(select(table.c.v).order_by(table.c.id))).scalars().all()
        texts = (await conn.exec_driver_sql("SELECT v::text FROM j ORDER BY id")).scalars()
        assert list(read) == values
        assert [orjson.loads(t) for t in texts] == values


async def test_what_a_codec_says_of_its_columns_holds_for_every_row(engine: AsyncEngine) -> None:
    """The planned executor checks nothing more of a column whose codec says its driver
    guarantees its values (`RowCodec.exact`: PostgreSQL's typed NOT NULL columns): every value
    of a page's clusters and of their nodes, as the driver returns them, is what it says."""
    records = await _fleet(engine)
    async with read_transaction(engine) as conn:
        page, _ = await listing.page(conn, ClusterFilter(), Order(), None, 100)
        nodes = await clusters.nodes_of(conn, [r.id for r in records])
    assert isinstance(page, Rows)
    node_rows = [n for of_one in nodes.values() for n in of_one]
    assert node_rows
    assert all(isinstance(of_one, Rows) for of_one in nodes.values())
    classes = {"str": str, "int": int, "int32": int, "bool": bool}
    postgresql = engine.dialect.name == "postgresql"
    for rows in (page, *nodes.values()):
        assert isinstance(rows, Rows)
        codec = rows.codec
        assert bool(codec.exact) is postgresql  # SQLite stores whatever it is given
        for row in rows.rows:
            for index, kind in codec.exact.items():
                convert = codec.converts[index]
                value = row[index] if convert is None else convert(row[index])
                assert value is not None, (index, row)
                if kind in classes:
                    assert value.__class__ is classes[kind], (index, kind, value)
                if kind == "int32":
                    assert -(2**31) <= value < 2**31
