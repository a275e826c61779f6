"""Live updates on PostgreSQL, across processes: a report through one `clusterql serve` reaches a
subscriber of another (LISTEN/NOTIFY), and after a PostgreSQL restart subscribers are told to
reconnect, do, and get events again from a working service.

Runs in both passes: the module starts a PostgreSQL server of its own, which it restarts.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tests import factories
from tests.clusterql.test_live_updates import DELIVERY_S, report
from tests.databases import migrated_database_on
from tests.documents import REPORT
from tests.live_server import serve_process, token_client
from tests.postgres_server import PostgresServer
from tests.subscriptions import Refused, connected


async def _report(base_url: str, secret: str, state: Any) -> tuple[str, float]:
    async with token_client(base_url, secret) as client:
        body = {"query": REPORT, "variables": {"input": state}}
        answer = (await client.post("/graphql", json=body)).json()
    assert "errors" not in answer, answer
    return answer["data"]["reportCluster"]["id"], time.monotonic()


async def test_a_report_through_one_process_reaches_a_subscriber_of_another(
    postgres: PostgresServer,
) -> None:
    database_url = await migrated_database_on(postgres.url)
    admin, controller = await factories.admin_and_controller(database_url)
    env = {"CLUSTERQL_DATABASE_URL": database_url}
    with serve_process(env) as one, serve_process(env) as other:
        async with connected(other.url, admin) as subscriber, connected(one.url, admin) as local:
            await subscriber.subscribe()
            await local.subscribe()
            await asyncio.sleep(0.3)
            cluster_id, acked = await _report(one.url, controller, report("across"))
            for where in (subscriber, local):
                change = (await where.event())["clusterChanges"]
                assert time.monotonic() - acked < DELIVERY_S
                assert (change["kind"], change["clusterId"]) == ("REGISTERED", cluster_id)
                assert change["cluster"]["nodesCount"] == 3


async def _subscribed_again(base_url: str, secret: str, within: float) -> Any:
    """Connect and subscribe, again and again (what a client does) until it works: the server
    refuses connections (4503) until it hears changes again."""
    deadline = time.monotonic() + within
    while True:
        try:
            manager = connected(base_url, secret)
            live = await manager.__aenter__()
        except (Refused, OSError) as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not subscribe again: {exc}") from None
            await asyncio.sleep(0.5)
            continue
        await live.subscribe()
        return manager, live


async def test_after_a_postgresql_restart_subscribers_reconnect_to_a_working_service(
    postgres: PostgresServer,
) -> None:
    database_url = await migrated_database_on(postgres.url)
    admin, controller = await factories.admin_and_controller(database_url)
    env = {
        "CLUSTERQL_DATABASE_URL": database_url,
        "CLUSTERQL_DATABASE_CONNECT_TIMEOUT": "2",
        "CLUSTERQL_DATABASE_POOL_TIMEOUT": "2",
    }
    with serve_process(env) as server:
        async with connected(server.url, admin) as subscriber:
            await subscriber.subscribe()
            await asyncio.sleep(0.3)
            await _report(server.url, controller, report("before-restart"))
            assert (await subscriber.event())["clusterChanges"]["kind"] == "REGISTERED"
            await asyncio.to_thread(postgres.stop)
            refused = await subscriber.closed(within=15)
        assert refused.code == 4503, refused
        assert "reconnect" in refused.reason or "connect again" in refused.reason
        await asyncio.to_thread(postgres.start)
        manager, again = await _subscribed_again(server.url, admin, within=30)
        try:
            cluster_id, _ = await _report(server.url, controller, report("after-restart"))
            change = (await again.event(within=10))["clusterChanges"]
            assert (change["kind"], change["clusterId"]) == ("REGISTERED", cluster_id)
        finally:
            await manager.__aexit__(None, None, None)
