"""A fleet of awkward clusters for comparing executors: seeded with the product's own storage
functions, then spoiled with SQL in ways no report can produce.

The spoilt values fail in two places. Some fail in Python before GraphQL sees them:
`Cluster.from_record` and `Node.from_record` build `ControllerStatus(...)` and `NodeStatus(...)`,
so an unknown status raises `ValueError` inside the resolver, and the error is masked as
INTERNAL_SERVER_ERROR. Others reach GraphQL and fail there: `regions` is a JSON column that
Strawberry passes through untouched, so a `null` in it is a null in a non-null list item (or in
the non-null list itself), and a number or an object in it is a value `String` must coerce or
refuse. On SQLite, whose columns take any type, integers too large for `Int` and text in an
integer column also reach GraphQL (PostgreSQL's columns cannot hold them).

Every timestamp is fixed, so that two databases seeded alike are alike to the microsecond.
`Seeded` is one such database, `Twins` two, one per executor, for operations that write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from graph.context import Context, build_context
from graph.cursors import CursorCodec
from graph.schema import schema
from models import seeding, tokens
from models.engine import create_engine, read_transaction, write_transaction
from models.records import ClusterState, ControllerStatus, NodeState, NodeStatus
from models.removal import remove_cluster
from models.tables import clusters, nodes
from models.tokens import Permission, Principal
from tests import factories
from tests.databases import migrated_database_url
from tests.graph.executors import (
    PRODUCT_EXECUTOR,
    STOCK_EXECUTOR,
    Answer,
    Executor,
    Request,
    Window,
    answer,
    answers_at_once,
    assert_same,
    compare,
    written_during,
)

SEEDED_AT = datetime(2024, 12, 31, 11, 32, 10, 367653, tzinfo=UTC)
LONG_REGIONS = [f"region-{i:02d}" for i in range(40)]
UNICODE_NAME = "Ünïcødé-集群-🚀-e\u0301"
CODEC = CursorCodec(b"awkward")
ADMIN = Principal(token_id=1, name="admin", permissions=frozenset({Permission.ADMIN}))


def _sensor(i: int) -> datetime | None:
    return None if i % 3 == 0 else SEEDED_AT - timedelta(days=i, microseconds=i)


def _many_nodes(count: int) -> list[NodeState]:
    return [
        factories.node(
            f"n-{i:03d}",
            list(NodeStatus)[i % len(NodeStatus)],
            sensor_last_updated=_sensor(i),
            sensor_version="" if i % 2 else "5.4.1",
            architecture="arm64" if i % 4 == 1 else "amd64",
        )
        for i in range(count)
    ]


def _blank_nodes() -> list[NodeState]:
    """Nodes whose optional texts are all empty strings, and one unicode-named node."""
    blank = {"region": "", "architecture": "", "internal_dns": "", "internal_ip": ""}
    return [
        factories.node("blank", NodeStatus.MONITORED, hostname="", **blank),
        factories.node("节点-ß", NodeStatus.DISABLED, hostname="hôte", sensor_version=""),
    ]


def _state(name: str, nodes_: list[NodeState], **fields: object) -> ClusterState:
    return factories.cluster(name, node_states=nodes_, **fields)  # type: ignore[arg-type]


# Ids follow this order. The well-formed clusters come first, so that small pages in id order
# are whole; the spoilt ones after them, named after what is wrong with them.
CLUSTERS: list[ClusterState] = [
    _state("alpha", factories.nodes(3), regions=["eu-west-1", "us-east-1"]),
    _state("empty", [], provider="gcp", regions=[]),
    _state("many", _many_nodes(60), provider="azure", regions=LONG_REGIONS),
    _state(UNICODE_NAME, _blank_nodes(), provider="kubernetes", regions=["ap-南-1"]),
    _state("Bravo", factories.nodes(2, prefix="b"), status=ControllerStatus.STOPPED),
    _state("far-times", factories.nodes(1, prefix="f"), provider="gcp"),
    _state("removed", factories.nodes(2, prefix="r")),
    _state("blank-texts", factories.nodes(1, prefix="e"), regions=["eu-west-1"]),
    _state("null-in-regions", factories.nodes(1, prefix="x")),
    _state("odd-regions", factories.nodes(1, prefix="o")),
    _state("null-regions", factories.nodes(2, prefix="nr")),
    _state("text-regions", factories.nodes(1, prefix="t")),
    _state("bad-controller", factories.nodes(1, prefix="c")),
    _state("bad-node", factories.nodes(3, prefix="bn")),
    _state("sqlite-oddities", factories.nodes(2, prefix="s")),
]
# JSON written into `regions` as is (the column is JSON on SQLite, JSONB on PostgreSQL).
_REGIONS_SQL = {
    "null-in-regions": '["eu-west-1", null, "us-east-1"]',
    "odd-regions": '["ok", 1, true, {"k": "v"}, ["x"], 2.5]',
    "null-regions": "null",
    "text-regions": '"eu-west-1"',
}


@dataclass(frozen=True, slots=True)
class Fleet:
    """What was seeded: ids by cluster name (the removed one included)."""

    ids: dict[str, int]
    sqlite: bool

    @property
    def removed_id(self) -> int:
        return self.ids["removed"]

    @property
    def names(self) -> list[str]:
        return list(self.ids)

    def id(self, name: str) -> str:
        """A cluster's id as GraphQL writes it."""
        return str(self.ids[name])


async def seed(engine: AsyncEngine) -> Fleet:
    """The awkward fleet, written to the empty database behind `engine`."""
    async with write_transaction(engine) as conn:
        cluster_ids = await seeding.insert_clusters(conn, CLUSTERS, SEEDED_AT)
        ids = {state.name: cid for state, cid in zip(CLUSTERS, cluster_ids, strict=True)}
        await _spoil(conn, ids)
        await remove_cluster(conn, ids["removed"], SEEDED_AT)
    return Fleet(ids=ids, sqlite=engine.dialect.name == "sqlite")


async def _spoil(conn: AsyncConnection, ids: dict[str, int]) -> None:
    postgres = conn.dialect.name == "postgresql"
    json_value = "CAST(:value AS JSONB)" if postgres else ":value"
    for name, value in _REGIONS_SQL.items():
        await conn.execute(
            text(f"UPDATE clusters SET regions = {json_value} WHERE id = :id"),
            {"value": value, "id": ids[name]},
        )
    await conn.execute(
        text("UPDATE clusters SET controller_status = 'exploded' WHERE id = :id"),
        {"id": ids["bad-controller"]},
    )
    await conn.execute(
        text("UPDATE nodes SET status = 'exploded' WHERE name = 'bn-1' AND cluster_id = :id"),
        {"id": ids["bad-node"]},
    )
    await conn.execute(
        text(
            "UPDATE clusters SET name = '', provider = '', controller_version = '' WHERE id = :id"
        ),
        {"id": ids["blank-texts"]},
    )
    far = ids["far-times"]
    await conn.execute(
        update(clusters)
        .where(clusters.c.id == far)
        .values(
            monitored_at=datetime(1, 1, 1, tzinfo=UTC),
            controller_last_updated=datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
            nodes_count=-1,
            failed_nodes_count=2**31 - 1,
        )
    )
    await conn.execute(
        update(nodes)
        .where(nodes.c.cluster_id == far)
        .values(sensor_last_updated=datetime(1, 1, 1, tzinfo=UTC))
    )
    if not postgres:
        await _spoil_sqlite(conn, ids["sqlite-oddities"])


async def _spoil_sqlite(conn: AsyncConnection, cluster_id: int) -> None:
    """Values only SQLite's typeless columns hold: GraphQL's scalars refuse them."""
    await conn.execute(
        text(
            "UPDATE clusters SET nodes_count = :big, running_nodes_count = 'lots', "
            "disabled_nodes_count = 2.5 WHERE id = :id"
        ),
        {"big": 2**40, "id": cluster_id},
    )
    await conn.execute(
        text("UPDATE nodes SET name = X'00ff', internal_ip = 7 WHERE name = 's-1'"),
    )


CURSOR_PAGES = """
query Cursors($orderBy: ClusterOrderField!, $direction: OrderDirection!, $filter: ClusterFilter) {
  clusters(limit: 2, orderBy: $orderBy, direction: $direction, filter: $filter) {
    pagination { nextKey }
  }
  clustersConnection(first: 1, orderBy: $orderBy, direction: $direction, filter: $filter) {
    pageInfo { startCursor endCursor }
  }
}
"""
_ORDERS = ["ID", "NAME", "MONITORED_AT", "CONTROLLER_LAST_UPDATED", "NODES_COUNT"]


@dataclass(frozen=True, slots=True)
class Seeded:
    """One database holding the awkward fleet."""

    engine: AsyncEngine
    fleet: Fleet

    def context(self, principal: Principal = ADMIN) -> Context:
        return build_context(self.engine, CODEC, principal, "test")

    async def compare(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        principal: Principal = ADMIN,
        product: Executor = PRODUCT_EXECUTOR,
    ) -> Answer:
        """The stock executor's answer, once the product's was found to be the same."""
        async with cleaned_up() as contexts:

            def context() -> Context:
                contexts.append(self.context(principal))
                return contexts[-1]

            return await compare(
                schema,
                document,
                variables=variables,
                operation_name=operation_name,
                context=context,
                product=product,
            )

    async def compare_at_once(
        self,
        requests: Sequence[tuple[str, Mapping[str, Any] | None, str | None]],
        expected: Sequence[Answer],
        *,
        principal: Principal = ADMIN,
        product: Executor = PRODUCT_EXECUTOR,
    ) -> None:
        """Each (document, variables, operation name) answers as `expected` (the stock answers)
        when the product's executor runs them all at once, twice each, as concurrent requests.

        Where an answer differs, the stock executor runs them all at once too, as often as
        `assert_same` asks: which root field's error reaches a null root first can depend on how
        concurrent requests interleave, which no request run alone shows. (An operation of
        `clusters` reading a count stored as text, on SQLite, and `nodes` with both `first` and
        `last`: alone, either executor answers `clusters`' error; two at once, each executor
        answers one with each field's error.)"""
        twice = [*requests, *requests]
        async with cleaned_up() as contexts:

            def request(document: str, variables: Any, operation_name: str | None) -> Request:
                contexts.append(self.context(principal))
                return Request(document, variables, operation_name, contexts[-1])

            got = await answers_at_once(schema, product, [request(*r) for r in twice])
            for index, (stock, ours) in enumerate(zip([*expected, *expected], got, strict=True)):
                document, variables, operation_name = twice[index]

                async def again(index: int = index) -> Answer:
                    stock_at_once = [request(*r) for r in twice]
                    return (await answers_at_once(schema, STOCK_EXECUTOR, stock_at_once))[index]

                await assert_same(
                    stock,
                    ours,
                    document=document,
                    variables=variables,
                    operation_name=operation_name,
                    product_executor=product,
                    again=again,
                )


@asynccontextmanager
async def cleaned_up() -> AsyncIterator[list[Context]]:
    """The contexts put in the list get their snapshots closed again at the end of the block,
    once the work their operations left running is done.

    When a null reaches the root while other fields are still at work, graphql-core answers and
    leaves that work running as tasks; a `Cluster.nodes` DataLoader batch among them then
    reopens the operation's closed snapshot, and that connection is never given back
    (tests/graph/test_snapshot_lifetime.py). Both executors do this, so it is no difference
    between them; closing it here keeps the leak from failing an unrelated later test when the
    garbage collector finds the connection.
    """
    before = asyncio.all_tasks()
    contexts: list[Context] = []
    try:
        yield contexts
    finally:
        for _ in range(100):  # 10 s at most
            left = [t for t in asyncio.all_tasks() - before if not t.done()]
            if not left:
                break
            await asyncio.wait(left, timeout=0.1)
        for context in contexts:
            await context.snapshot.close()


async def seeded_fleet(directory: Path) -> Seeded:
    """A new database in `directory` (or on the PostgreSQL test server), seeded."""
    engine = create_engine(await migrated_database_url(directory))
    fleet = await seed(engine)
    return Seeded(engine=engine, fleet=fleet)


async def cursors_of(seeded: Seeded) -> list[str]:
    """Cursors the service makes over the fleet, for some orders and filters, and spoilt copies
    of them (the same on twin databases: the data and the codec's key are the same)."""
    engine = seeded.engine
    found: list[str] = []
    for order in _ORDERS:
        for direction in ("ASC", "DESC"):
            for where in (None, {"providers": ["aws", "gcp"]}):
                variables = {"orderBy": order, "direction": direction, "filter": where}
                context = build_context(engine, CODEC, ADMIN, "test")
                got = await answer(
                    schema, STOCK_EXECUTOR, CURSOR_PAGES, variables=variables, context=context
                )
                found += _cursors_in(got.data)
    spoilt = [c[:-1] + ("A" if c[-1] != "A" else "B") for c in found[:3]]
    return sorted(set(found)) + spoilt + [found[0][:-5], "2" + found[0][1:], "1.e30.e30"]


def _cursors_in(value: Any) -> list[str]:
    if isinstance(value, str) and value.startswith("1."):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _cursors_in(v)]
    return []


async def principal(
    engine: AsyncEngine, *permissions: Permission, clusters: list[str] | None = None
) -> Principal:
    """The caller behind a new token with `permissions` (and a Controller token's binding), as
    authentication would find it."""
    secret = await factories.token(engine, *permissions, clusters=clusters)
    async with read_transaction(engine) as conn:
        found = await tokens.find_active(conn, tokens.digest(secret), datetime.now(UTC))
    assert found is not None
    return found[0]


@dataclass(frozen=True, slots=True)
class Twins:
    """Two databases seeded alike with the same tokens, one per executor. Each operation runs on
    both, so they change in lockstep and every run starts from the same state on both sides.

    What a run writes differs between the sides only by the timestamps taken during it
    (`controllerLastUpdated`, and `monitoredAt` of what it registered): answers are compared
    allowing exactly those (tests.graph.executors.written_during), whichever earlier run wrote
    them.
    """

    stock: Seeded
    product: Seeded
    admin: Principal
    controller: Principal
    stock_runs: list[Window] = field(default_factory=list)
    product_runs: list[Window] = field(default_factory=list)

    async def compare(
        self,
        document: str,
        variables: Mapping[str, Any] | None = None,
        *,
        operation_name: str | None = None,
        principal: Principal | None = None,
        product: Executor = PRODUCT_EXECUTOR,
    ) -> Answer:
        """The stock executor's answer on its side, once the product's was found the same."""
        caller = principal or self.admin
        got = []
        for executor, side, runs in (
            (STOCK_EXECUTOR, self.stock, self.stock_runs),
            (product, self.product, self.product_runs),
        ):
            start = datetime.now(UTC)
            async with cleaned_up() as contexts:
                contexts.append(side.context(caller))
                got.append(
                    await answer(
                        schema,
                        executor,
                        document,
                        variables=variables,
                        operation_name=operation_name,
                        context=contexts[0],
                    )
                )
            runs.append(Window(start, datetime.now(UTC)))
        await assert_same(
            *got,
            document=document,
            variables=variables,
            operation_name=operation_name,
            product_executor=product,
            same_leaf=written_during(self.stock_runs, self.product_runs),
        )
        return got[0]


async def twin_fleets(directory: Path) -> Twins:
    sides = []
    for side in ("stock", "product"):
        (directory / side).mkdir()
        sides.append(await seeded_fleet(directory / side))
    admins = [await principal(s.engine, Permission.ADMIN) for s in sides]
    # Bound to every name but those starting with "a": it reports most names, never "alpha".
    controllers = [
        await principal(s.engine, Permission.CONTROLLER, clusters=["[!a]*"]) for s in sides
    ]
    assert admins[0].token_id == admins[1].token_id
    assert controllers[0].token_id == controllers[1].token_id
    return Twins(sides[0], sides[1], admins[0], controllers[0])
