"""A schemathesis sweep of `/graphql` (hypothesis-graphql writes the operations from the served
schema's introspection) against a live server: whatever it sends, no answer is a 500.

Bounded for CI's 2 cores: `EXAMPLES` operations for each root field, no shrinking database.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from models.engine import create_engine
from models.tokens import Permission
from tests import factories
from tests.databases import migrated_database_url
from tests.live_server import live_server

EXAMPLES = 25


async def _seeded(tmp_path: Path) -> tuple[str, str]:
    url = await migrated_database_url(tmp_path)
    engine = create_engine(url)
    try:
        await factories.insert(engine, [factories.cluster(node_count=4) for _ in range(5)])
        secret = await factories.token(engine, Permission.ADMIN)
    finally:
        await engine.dispose()
    return url, secret


def test_a_schemathesis_sweep_of_every_root_field_finds_no_500(tmp_path: Path) -> None:
    url, secret = asyncio.run(_seeded(tmp_path))
    env = {"CLUSTERQL_DATABASE_URL": url, "CLUSTERQL_RATE_LIMIT_ADMIN": "0"}
    headers = {"Authorization": f"Bearer {secret}"}
    with live_server(env) as base_url:
        schema = schemathesis.graphql.from_url(f"{base_url}/graphql", headers=headers, timeout=30)
        # an Err (an operation schemathesis cannot build) fails here, as it should
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert {op.label for op in operations} >= {
            "Query.clusters",
            "Query.clustersConnection",
            "Query.cluster",
            "Mutation.reportCluster",
            "Mutation.removeCluster",
        }
        statuses: set[int] = set()

        @settings(
            max_examples=EXAMPLES * len(operations),
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def sweep(data: st.DataObject) -> None:
            operation = data.draw(st.sampled_from(operations))
            case = data.draw(operation.as_strategy())
            response = case.call(headers=headers, timeout=30)
            statuses.add(response.status_code)
            assert response.status_code < 500, (case.body, response.text)
            body = response.json()
            assert "data" in body or "errors" in body, body

        sweep()
        assert 200 in statuses
