"""The `clusterql` command line, run as a real process against a fresh database of its own."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.fleet import DEMO_SIZE, demo_fleet, load_demo
from models import clusters as clusters_db
from models import listing, migrations
from models.engine import create_engine, read_transaction
from models.listing import ClusterFilter, Order
from models.records import ClusterRecord, NodeCounts
from models.tokens import looks_like_secret
from tests.databases import fresh_database_url

REPOSITORY = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


@pytest.fixture
async def database_url(tmp_path: Path) -> str:
    """An empty database (no tables): the commands create them."""
    return await fresh_database_url(tmp_path)


@pytest.fixture
def cli(
    run_isolated: Callable[..., subprocess.CompletedProcess[str]],
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs `clusterql ...` in a subprocess: no CLUSTERQL_* from outside, cwd a temp dir."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_isolated([sys.executable, "-m", "clusterql.cli", *args])

    return run


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrations.upgrade(engine)
    yield engine
    await engine.dispose()


def _user_error(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one-line message of a failed command, checked to be that and no traceback."""
    assert result.returncode == code, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    return result.stderr


async def _live_clusters(engine: AsyncEngine) -> tuple[list[ClusterRecord], dict[int, int]]:
    """Every live cluster and how many node rows each has."""
    async with read_transaction(engine) as conn:
        records, more = await listing.page(conn, ClusterFilter(), Order(), None, 100_000)
        assert not more
        nodes = await clusters_db.nodes_of(conn, [r.id for r in records])
        assert await listing.count_matching(conn, ClusterFilter()) == len(records)
    return records, {r.id: len(nodes.get(r.id, [])) for r in records}


# ---------------------------------------------------------------- token


def test_token_create_prints_only_the_secret(cli, database_url):
    result = cli(
        "token", "create", "--name", "ci", "--permission", "Admin", "--database-url", database_url
    )

    assert result.returncode == 0, result.stderr
    secret = result.stdout.removesuffix("\n")
    assert secret.startswith("cql_")
    assert len(secret) == 4 + 43
    assert looks_like_secret(secret)


def test_token_list_shows_the_name_and_never_the_secret(cli, database_url):
    secret = cli(
        "token",
        "create",
        "--name",
        "reporter-eu",
        "--permission",
        "Controller",
        "--permission",
        "Admin",
        "--expires-in-days",
        "30",
        "--database-url",
        database_url,
    ).stdout.strip()

    result = cli("token", "list", "--database-url", database_url)

    assert result.returncode == 0, result.stderr
    assert "reporter-eu" in result.stdout
    assert "Admin,Controller" in result.stdout
    assert secret not in result.stdout
    assert secret[4:12] not in result.stdout


def test_token_revoke_marks_the_token_revoked(cli, database_url):
    cli("token", "create", "--name", "old", "--permission", "Admin", "--database-url", database_url)

    result = cli("token", "revoke", "old", "--database-url", database_url)
    listing = cli("token", "list", "--database-url", database_url).stdout

    assert result.returncode == 0, result.stderr
    row = next(line for line in listing.splitlines() if line.startswith("old "))
    _name, _permissions, _created, expires, revoked, _last_used = row.split()
    assert revoked != "-"
    assert expires == "-"


def test_token_revoke_of_an_unknown_name_fails(cli, database_url):
    result = cli("token", "revoke", "nobody", "--database-url", database_url)

    assert "no token named 'nobody'" in _user_error(result)


def test_token_create_with_a_taken_name_fails(cli, database_url):
    cli("token", "create", "--name", "dup", "--permission", "Admin", "--database-url", database_url)

    result = cli(
        "token",
        "create",
        "--name",
        "dup",
        "--permission",
        "Controller",
        "--database-url",
        database_url,
    )

    assert "already exists" in _user_error(result)
    assert result.stderr.count("\n") == 1


def test_bad_arguments_exit_2_with_a_usage_message(cli, database_url):
    result = cli(
        "token", "create", "--name", "x", "--permission", "Root", "--database-url", database_url
    )

    assert "use Admin or Controller" in _user_error(result, code=2)


@pytest.mark.parametrize(
    "url", ["not a url", "sqlite:///sync-driver.db", "sqlite+aiosqlite:////no/such/dir/t.db"]
)
def test_an_unusable_database_is_one_line_without_traceback(cli, url):
    result = cli("token", "list", "--database-url", url)

    message = _user_error(result)
    assert message.startswith("clusterql: error: ")
    assert message.count("\n") == 1


# ---------------------------------------------------------------- seed


async def test_seed_inserts_exactly_n_clusters_of_m_nodes(cli, database_url, engine):
    first = cli(
        "seed", "--clusters", "1203", "--nodes-per-cluster", "3", "--database-url", database_url
    )
    second = cli(
        "seed", "--clusters", "5", "--nodes-per-cluster", "0", "--database-url", database_url
    )

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    records, node_rows = await _live_clusters(engine)
    assert len(records) == 1208
    assert len({r.name for r in records}) == 1208  # two runs, no name collision
    assert sorted(r.nodes_count for r in records) == [0] * 5 + [3] * 1203
    assert all(node_rows[r.id] == r.nodes_count for r in records)


async def test_seed_mixes_node_states(cli, database_url, engine):
    cli("seed", "--clusters", "300", "--database-url", database_url)

    records, _ = await _live_clusters(engine)

    assert all(r.nodes_count == 20 for r in records)
    assert sum(r.failed_nodes_count for r in records) > 0
    assert sum(r.failed_to_install_nodes_count for r in records) > 0
    assert sum(r.disabled_nodes_count for r in records) > 0
    assert sum(r.running_nodes_count for r in records) > 300 * 20 // 2


# ---------------------------------------------------------------- the demo fleet


def test_the_demo_fleet_is_deterministic():
    now = datetime.now(UTC)

    assert demo_fleet(now) == demo_fleet(now)


async def test_the_demo_fleet_is_dozens_of_realistic_clusters(engine):
    added = await load_demo(engine, datetime.now(UTC))

    records, node_rows = await _live_clusters(engine)
    assert added == len(records) == DEMO_SIZE
    assert 40 <= DEMO_SIZE <= 60
    assert {r.provider for r in records} == {"aws", "gcp", "azure", "kubernetes", "openshift"}
    assert {r.controller_status for r in records} == {"running", "stopped"}
    assert any(r.nodes_count == 0 for r in records)
    assert max(r.nodes_count for r in records) <= 40
    assert all(node_rows[r.id] == r.nodes_count for r in records)
    for count in ("running", "failed", "failed_to_install", "disabled"):
        assert any(getattr(r, f"{count}_nodes_count") > 0 for r in records), count


def test_demo_node_names_are_unique_per_cluster_and_states_add_up():
    for cluster in demo_fleet(datetime.now(UTC)):
        assert len({n.name for n in cluster.nodes}) == len(cluster.nodes)
        counts = NodeCounts.of([n.status for n in cluster.nodes])
        assert counts.running + counts.failed + counts.failed_to_install + counts.disabled == (
            counts.nodes
        )
        assert all(n.sensor_version == "" for n in cluster.nodes if not n.sensor_installed)


async def test_loading_the_demo_again_adds_nothing(engine):
    await load_demo(engine, datetime.now(UTC))

    assert await load_demo(engine, datetime.now(UTC)) == 0
    records, _ = await _live_clusters(engine)
    assert len(records) == DEMO_SIZE


# ---------------------------------------------------------------- serve --demo


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_healthy(base_url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    pytest.fail(f"serve --demo did not come up (exit {process.poll()}):\n{log.read_text()}")


def _curl_request(printed: str) -> httpx.Request:
    """The request the printed `curl` command sends, read the way a shell reads it."""
    command = printed[printed.index("curl ") :].replace("\\\n", " ")
    words = shlex.split(command)
    method, headers, body, url = "GET", {}, None, None
    pairs = iter(words[1:])
    for word in pairs:
        if word == "-X":
            method = next(pairs)
        elif word == "-H":
            name, _, value = next(pairs).partition(": ")
            headers[name] = value
        elif word == "-d":
            body = next(pairs)
            method = "POST" if method == "GET" else method
        elif not word.startswith("-"):
            url = word
    assert url is not None
    return httpx.Request(method, url, headers=headers, content=body)


def test_serve_demo_prints_a_token_graphiql_and_a_curl_that_works(tmp_path, database_url):
    port = _free_port()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERQL_")}
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "clusterql.cli",
                "serve",
                "--demo",
                "--port",
                str(port),
                "--database-url",
                database_url,
            ],
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=tmp_path,
            text=True,
        )
    try:
        _wait_healthy(f"http://127.0.0.1:{port}", process, err)
        printed = out.read_text()
        request = _curl_request(printed)
        with httpx.Client(timeout=10.0) as client:
            response = client.send(request)
    finally:
        process.terminate()
        process.wait(timeout=TIMEOUT_S)

    secret = request.headers["Authorization"].removeprefix("Bearer ")
    assert looks_like_secret(secret)
    assert f"Admin token (shown only once): {secret}" in printed
    assert f"http://127.0.0.1:{port}/graphql" in printed
    assert str(request.url) == f"http://127.0.0.1:{port}/runtime/api/v1/clusters"
    assert request.method == "POST"
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total_count"] == DEMO_SIZE
    assert len(body["clusters"]) == 5
    assert all("nodes" in c for c in body["clusters"])
    # SIGTERM: uvicorn shuts down gracefully, then exits by the signal (-15) as is conventional.
    assert "Application shutdown complete." in err.read_text()


# ---------------------------------------------------------------- schema


def test_the_committed_schema_is_what_the_code_prints(cli):
    result = cli("schema")

    assert result.returncode == 0, result.stderr
    committed = (REPOSITORY / "schema.graphql").read_text()
    assert committed == result.stdout, (
        "schema.graphql is stale: run `clusterql schema > schema.graphql` and commit it"
    )


# ---------------------------------------------------------------- --version


def test_version_prints_the_installed_version(run_isolated):
    # given: the console script pip installed, and the version this source tree declares
    script = Path(sys.executable).parent / "clusterql"
    declared = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["version"]
    # when
    result = run_isolated([str(script), "--version"])
    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"clusterql {declared}\n", "is the installed clusterql stale?"
    assert result.stderr == ""
