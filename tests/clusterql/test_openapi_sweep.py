"""A schemathesis sweep of the REST API from its own `/openapi.json`, against a live server: every
operation, with bodies and ids that fit the document (positive) and that break it (negative).
No answer is a 500, and every answer is one the document describes: its status, content type,
headers and body schema; what breaks the document is refused with a 4xx.

Bounded for CI's 2 cores: `EXAMPLES` cases per operation and mode, no shrinking, no database of
examples, and no case sent after `BUDGET_S` (about 180 cases take 10 to 30 s here).

Not checked: that every request the schema allows is accepted (schemathesis' positive data
acceptance); that a blank body is refused (its negative "random bytes" can be blank, which the
README documents as `{}`: such a case is not sent). Two rules of the contract are beyond JSON
Schema: `next_key` and `last_key`, if both are given, must be equal, and a key must be one this
service gave out (README, "The REST description").
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.config._checks import NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from models.engine import create_engine
from models.tokens import Permission
from tests import factories
from tests.databases import migrated_database_url
from tests.live_server import live_server

EXAMPLES = 15
BUDGET_S = 25.0
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


# What breaks the document is refused with any of schemathesis' statuses for it, or with 413: a
# body past the documented size limit (a list of more values than allowed can be one) is refused
# for its size before it is read.
REFUSED = [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, "413"]
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"negative_data_rejection": {"expected-statuses": REFUSED}}}
)


async def _seeded(tmp_path: Path) -> tuple[str, str]:
    url = await migrated_database_url(tmp_path)
    engine = create_engine(url)
    try:
        await factories.insert(engine, [factories.cluster(node_count=3) for _ in range(4)])
        secret = await factories.token(engine, Permission.ADMIN)
    finally:
        await engine.dispose()
    return url, secret


def test_a_schemathesis_sweep_of_every_operation_finds_nothing_undocumented(
    tmp_path: Path,
) -> None:
    url, secret = asyncio.run(_seeded(tmp_path))
    env = {"CLUSTERQL_DATABASE_URL": url, "CLUSTERQL_RATE_LIMIT_ADMIN": "0"}
    headers = {"Authorization": f"Bearer {secret}"}
    with live_server(env) as base_url:
        schema = schemathesis.openapi.from_url(
            f"{base_url}/openapi.json", config=CONFIG, timeout=30
        )
        operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
        assert len(operations) == 6
        strategies = [op.as_strategy(generation_mode=mode) for op in operations for mode in MODES]
        sent: Counter[tuple[str, int]] = Counter()
        deadline = time.monotonic() + BUDGET_S
        failures: dict[str, str] = {}

        @settings(
            max_examples=EXAMPLES * len(strategies),
            deadline=None,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def sweep(data: st.DataObject) -> None:
            case = data.draw(st.one_of(strategies))
            if time.monotonic() > deadline:
                return
            if isinstance(case.body, bytes) and not case.body.strip():
                return  # "random bytes" that are blank: a blank body is `{}`, as documented
            try:
                response = case.call_and_validate(
                    base_url=base_url, headers=headers, checks=CHECKS, timeout=30
                )
            except (Failure, FailureGroup) as exc:
                found = exc.exceptions if isinstance(exc, FailureGroup) else [exc]
                for failure in found:
                    failures.setdefault(failure.title, f"{case.operation.label}: {failure}")
                return
            sent[(case.operation.label, response.status_code)] += 1

        sweep()
        assert not failures, "\n\n".join(failures.values())
        statuses = {status for _, status in sent}
        assert {200, 400, 404} <= statuses, sent
        assert sum(sent.values()) >= EXAMPLES * len(operations)
