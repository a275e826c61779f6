"""Live updates: `clusterChanges` over a real websocket to a real `clusterql serve` process.

Given a server and subscribers connected with graphql-transport-ws, when controllers report
through the HTTP API, then each subscriber whose filter matches gets the change, carrying the
cluster as stored, within a second of the report's acknowledgement, and nobody gets an event for
a report that was refused. Connections authenticate in `connection_init`, are bounded per
token, and end when their token is revoked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from models.tokens import Permission
from tests import factories
from tests.databases import migrated_database_url
from tests.documents import REMOVE, REPORT
from tests.live_server import Server, serve_process, token_client
from tests.subscriptions import BIG_EVENTS, CHANGES, Stalled, big_report, connected

DELIVERY_S = 1.0


def report(name: str, provider: str = "aws", nodes: int = 3, status: str = "MONITORED") -> Any:
    return {
        "name": name,
        "provider": provider,
        "regions": ["eu-west-1"],
        "controllerVersion": "1.0.0",
        "controllerStatus": "RUNNING",
        "nodes": [
            {
                "name": f"n{i}",
                "hostname": f"{name}-n{i}",
                "status": status,
                "sensorInstalled": False,
            }
            for i in range(nodes)
        ],
    }


@dataclass
class Live:
    server: Server
    database_url: str
    admin: str
    controller: str
    output: Path

    def client(self, secret: str | None = None) -> httpx.AsyncClient:
        return token_client(self.server.url, secret or self.controller)

    async def report(self, state: Any, secret: str | None = None) -> tuple[dict[str, Any], float]:
        """The answer to a report, and when it was acknowledged (time.monotonic())."""
        async with self.client(secret) as client:
            response = await client.post(
                "/graphql", json={"query": REPORT, "variables": {"input": state}}
            )
        return response.json(), time.monotonic()


LIVE_ENV = {
    "CLUSTERQL_CONTROLLER_MAX_CLUSTERS": "100000",  # one controller reports every test's clusters
    "CLUSTERQL_SUBSCRIPTION_RECHECK": "0.5",
    "CLUSTERQL_SUBSCRIPTION_CONNECTIONS_PER_TOKEN": "3",
    "CLUSTERQL_SUBSCRIPTION_QUEUE": "4",
    # the throughput test's controllers report back to back: not throttled, not the point here
    "CLUSTERQL_RATE_LIMIT_CONTROLLER": "0",
}


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """One server for the module (each test reports clusters of its own names)."""
    tmp_path = tmp_path_factory.mktemp("live")
    database_url = asyncio.run(migrated_database_url(tmp_path))
    admin, controller = asyncio.run(factories.admin_and_controller(database_url))
    output = tmp_path / "server.log"
    env = {"CLUSTERQL_DATABASE_URL": database_url, **LIVE_ENV}
    with serve_process(env, output=output) as server:
        yield Live(server, database_url, admin, controller, output)


async def test_matching_subscribers_get_each_change_within_a_second_of_its_acknowledgement(
    live: Live,
) -> None:
    async with (
        connected(live.server.url, live.admin) as everything,
        connected(live.server.url, live.admin) as aws_only,
    ):
        await everything.subscribe()
        await aws_only.subscribe(variables={"filter": {"providers": ["aws"]}})
        await asyncio.sleep(0.2)  # the subscriptions are registered

        answer, acked = await live.report(report("live-gcp", provider="gcp"))
        gcp_id = answer["data"]["reportCluster"]["id"]
        event = await everything.event()
        assert time.monotonic() - acked < DELIVERY_S
        assert event["clusterChanges"] == {
            "kind": "REGISTERED",
            "clusterId": gcp_id,
            "cluster": {
                "id": gcp_id,
                "name": "live-gcp",
                "nodesCount": 3,
                "nodes": [{"name": f"n{i}", "status": "MONITORED"} for i in range(3)],
            },
        }

        answer, acked = await live.report(report("live-aws", nodes=2, status="FAILED"))
        aws_id = answer["data"]["reportCluster"]["id"]
        for subscriber in (aws_only, everything):  # aws_only's first event: gcp never came
            change = (await subscriber.event())["clusterChanges"]
            assert time.monotonic() - acked < DELIVERY_S
            assert (change["kind"], change["clusterId"]) == ("REGISTERED", aws_id)
            assert change["cluster"]["nodes"] == [
                {"name": "n0", "status": "FAILED"},
                {"name": "n1", "status": "FAILED"},
            ]

        await live.report(report("live-aws", nodes=1))
        for subscriber in (aws_only, everything):
            change = (await subscriber.event())["clusterChanges"]
            assert change["kind"] == "UPDATED"
            assert change["cluster"]["nodesCount"] == 1  # as stored after the change

        async with live.client(live.admin) as client:
            removed = await client.post(
                "/graphql", json={"query": REMOVE, "variables": {"id": aws_id}}
            )
        assert removed.json() == {"data": {"removeCluster": True}}
        for subscriber in (aws_only, everything):
            change = (await subscriber.event())["clusterChanges"]
            assert change == {"kind": "REMOVED", "clusterId": aws_id, "cluster": None}


async def test_a_refused_report_sends_no_event(live: Live) -> None:
    await live.report(report("owned"))
    other = await _token(live, Permission.CONTROLLER, clusters=["elsewhere-*"])
    async with connected(live.server.url, live.admin) as subscriber:
        await subscriber.subscribe()
        await asyncio.sleep(0.2)
        invalid = report("bad")
        invalid["nodes"][0]["internalIp"] = "not-an-address"
        answer, _ = await live.report(invalid)
        assert answer["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
        answer, _ = await live.report(report("owned", nodes=9), other)  # outside its binding
        assert answer["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        answer, _ = await live.report(report("fine"))
        change = (await subscriber.event())["clusterChanges"]
        assert change["cluster"]["name"] == "fine"  # the first event: none for the refused
        with pytest.raises(TimeoutError):
            await subscriber.event(within=0.5)


async def test_filters_follow_the_listing_filters(live: Live) -> None:
    async with connected(live.server.url, live.admin) as subscriber:
        filters = {
            "unhealthy": {"hasUnhealthyNodes": True},
            "named": {"name": "EU-"},
            "regions": {"regions": ["us-east-1"]},
        }
        ops = {
            await subscriber.subscribe(variables={"filter": f}): key for key, f in filters.items()
        }
        await asyncio.sleep(0.2)
        await live.report(report("prod-eu-1", status="FAILED"))  # unhealthy, named
        state = report("other")
        state["regions"] = ["us-east-1"]
        await live.report(state)  # regions only
        got: dict[str, list[str]] = {key: [] for key in filters}
        for _ in range(3):
            message = await subscriber.receive()
            got[ops[message["id"]]].append(
                message["payload"]["data"]["clusterChanges"]["cluster"]["name"]
            )
        assert got == {"unhealthy": ["prod-eu-1"], "named": ["prod-eu-1"], "regions": ["other"]}
        with pytest.raises(TimeoutError):
            await subscriber.receive(within=0.5)


async def _token(
    live: Live, *permissions: Permission, name: str | None = None, clusters: list[str] | None = None
) -> str:
    from models.engine import create_engine

    engine = create_engine(live.database_url)
    try:
        return await factories.token(engine, *permissions, name=name, clusters=clusters)
    finally:
        await engine.dispose()


async def test_connections_authenticate_in_connection_init(live: Live) -> None:
    url = live.server.url
    for secret, code in ((None, 4401), ("cql_" + "x" * 43, 4401), (live.controller, 4403)):
        async with connected(url, None, init=False) as conn:
            payload = {} if secret is None else {"Authorization": f"Bearer {secret}"}
            await conn.send({"type": "connection_init", "payload": payload})
            refused = await conn.closed(within=5)
            assert refused.code == code, refused
    async with connected(url, None, init=False) as conn:  # subscribing first is refused
        await conn.subscribe()
        assert (await conn.closed(within=5)).code == 4401
    async with connected(url, live.controller, init=False) as conn:
        await conn.send({"type": "connection_init", "payload": {"Authorization": "Bearer x"}})
        refused = await conn.closed(within=5)
        assert "connection_init" in refused.reason


async def test_a_revoked_tokens_subscriptions_end_within_seconds(live: Live) -> None:
    from datetime import UTC, datetime

    from models import tokens
    from models.engine import create_engine, write_transaction

    secret = await _token(live, Permission.ADMIN, name="soon-revoked")
    async with connected(live.server.url, secret) as subscriber:
        await subscriber.subscribe()
        await asyncio.sleep(0.2)
        await live.report(report("before-revocation"))
        assert (await subscriber.event())["clusterChanges"]["kind"] == "REGISTERED"
        engine = create_engine(live.database_url)
        try:
            async with write_transaction(engine) as conn:
                await tokens.revoke(conn, "soon-revoked", datetime.now(UTC))
        finally:
            await engine.dispose()
        revoked = time.monotonic()
        refused = await subscriber.closed(within=5)
        assert time.monotonic() - revoked < 3.0
        assert (refused.code, refused.reason) == (4403, "the token was revoked or has expired")


async def test_connections_are_bounded_per_token(live: Live) -> None:
    url = live.server.url
    async with (
        connected(url, live.admin),
        connected(url, live.admin),
        connected(url, live.admin),
        connected(url, None, init=False) as fourth,
    ):
        await fourth.send(
            {"type": "connection_init", "payload": {"Authorization": f"Bearer {live.admin}"}}
        )
        refused = await fourth.closed(within=5)
        assert refused.code == 4429
        assert "3 connections" in refused.reason
    async with connected(url, live.admin) as again:  # freed when they closed
        await again.subscribe(CHANGES)


BIG_REPORT_EVERY_S = 0.1
WRITER_WAIT_S = 10.0  # ten times the slowest answer seen here; a writer held by a reader gets none


async def _reports_until_cut_off(live: Live, big: Any, within: float = 60.0) -> list[float]:
    """Seconds each report took to be acknowledged: 3 controllers report 10-node clusters back
    to back and a fourth reports the big cluster ten times a second, until the server has logged
    a subscriber as too slow, and for one second after."""

    def cut_offs() -> int:
        return live.output.read_text().count("too slow")

    cut_before = cut_offs()
    deadline = time.monotonic() + within
    stop_at: float | None = None  # a second after the cut-off
    taken: list[float] = []

    def going() -> bool:
        nonlocal stop_at
        now = time.monotonic()
        if stop_at is None and cut_offs() > cut_before:
            stop_at = now + 1.0
        assert now < deadline, "the stalled subscriber was never cut off"
        return stop_at is None or now < stop_at

    async def post(client: httpx.AsyncClient, state: Any) -> None:
        started = time.monotonic()
        body = {"query": REPORT, "variables": {"input": state}}
        response = await client.post("/graphql", json=body, timeout=WRITER_WAIT_S * 2)
        assert "errors" not in response.json(), response.text
        taken.append(time.monotonic() - started)

    async def controller(c: int) -> None:
        async with live.client() as client:
            i = 0
            while going():
                await post(client, report(f"writer-{c}-{i % 5}", nodes=10))
                i += 1

    async def big_one() -> None:
        async with live.client() as client:
            while going():
                await post(client, big)
                await asyncio.sleep(BIG_REPORT_EVERY_S)

    await asyncio.gather(big_one(), *(controller(c) for c in range(3)))
    return taken


async def test_a_subscriber_that_never_reads_is_cut_off_and_writers_never_wait_for_it(
    live: Live,
) -> None:
    # given: a subscriber of a cluster whose events are big, that never reads what it is sent
    big = big_report("big-events")
    answer, _ = await live.report(big)
    big_id = answer["data"]["reportCluster"]["id"]
    stalled = Stalled(live.server.url, live.admin, BIG_EVENTS, {"filter": {"ids": [big_id]}})
    try:
        await asyncio.sleep(0.3)
        # when: controllers keep reporting, that cluster among them
        taken = await _reports_until_cut_off(live, big)
        # then: read what was buffered, then the end of a connection the server closed
        messages, code = await asyncio.to_thread(stalled.drain, 30.0)
    finally:
        stalled.sock.close()  # closed by drain already, unless the test failed
    assert code in (4413, None), code  # None: cut before its close frame got out
    assert messages < 40  # ack + what the buffers held + its queue, then it was cut off
    # and no report waited for it: each was acknowledged, before and after the cut-off. What a
    # stalled subscriber costs writers in CPU is measured by `bench.live` ("stalled").
    assert len(taken) > 10
    assert max(taken) < WRITER_WAIT_S, max(taken)


async def test_a_subscription_posted_over_http_is_refused_with_a_clear_message(live: Live) -> None:
    async with live.client(live.admin) as client:
        response = await client.post("/graphql", json={"query": CHANGES})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"] == "subscriptions are not allowed when using POST"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"


STALE_AFTER_S = 2.0
STALENESS = "subscription S($filter: ClusterFilter) { clusterChanges(filter: $filter) { kind clusterId cluster { name stale } } }"  # noqa: E501


async def test_a_cluster_whose_controller_falls_silent_is_announced_stale_once(
    tmp_path: Path,
) -> None:
    # given: a server whose clusters go stale 2 s after their last report
    database_url = await migrated_database_url(tmp_path)
    admin, controller = await factories.admin_and_controller(database_url)
    env = {
        "CLUSTERQL_DATABASE_URL": database_url,
        **LIVE_ENV,
        "CLUSTERQL_STALE_AFTER": str(STALE_AFTER_S),
    }
    with serve_process(env, output=tmp_path / "server.log") as server:
        live = Live(server, database_url, admin, controller, tmp_path / "server.log")
        async with (
            connected(server.url, admin) as subscriber,
            connected(server.url, admin) as stale_only,
        ):
            await subscriber.subscribe(STALENESS, {"filter": {"providers": ["gcp"]}})
            # judged when each change comes, not when it subscribed
            await stale_only.subscribe(STALENESS, {"filter": {"providers": ["gcp"], "stale": True}})
            await asyncio.sleep(0.2)
            # when: two controllers report once, then say nothing more
            answer, acked = await live.report(report("quiet-gcp", provider="gcp"))
            await live.report(report("quiet-aws"))  # filtered out: never heard of
            gcp_id = answer["data"]["reportCluster"]["id"]
            registered = (await subscriber.event())["clusterChanges"]
            assert registered == {
                "kind": "REGISTERED",
                "clusterId": gcp_id,
                "cluster": {"name": "quiet-gcp", "stale": False},
            }
            # then: STALE once its last report is older than the threshold (checked every
            # 0.5 s here), and nothing after it
            stale = (await subscriber.event(within=STALE_AFTER_S + 3))["clusterChanges"]
            assert time.monotonic() - acked >= STALE_AFTER_S
            assert stale == {
                "kind": "STALE",
                "clusterId": gcp_id,
                "cluster": {"name": "quiet-gcp", "stale": True},
            }
            assert (await stale_only.event(within=1))["clusterChanges"] == stale  # its first
            with pytest.raises(TimeoutError):
                await subscriber.event(within=1.5)
