"""The `clusterql` command line, run as a real process against a fresh database of its own."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from clusterql.fleet import DEMO_SIZE, demo_fleet
from models import migrations
from models.engine import create_engine
from models.tokens import looks_like_secret
from tests import factories
from tests.clusterql.conftest import Cli
from tests.live_server import running, serve_command

REPOSITORY = Path(__file__).resolve().parents[2]
TIMEOUT_S = 60.0


@pytest.fixture
def cli(run_isolated: Cli) -> Cli:
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


# ---------------------------------------------------------------- token


def test_token_create_prints_only_the_secret(cli: Cli, database_url: str) -> None:
    result = cli(
        "token", "create", "--name", "ci", "--permission", "Admin", "--database-url", database_url
    )

    assert result.returncode == 0, result.stderr
    secret = result.stdout.removesuffix("\n")
    assert secret.startswith("cql_")
    assert len(secret) == 4 + 43
    assert looks_like_secret(secret)


def test_token_list_shows_the_name_and_never_the_secret(cli: Cli, database_url: str) -> None:
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


def test_token_revoke_marks_the_token_revoked(cli: Cli, database_url: str) -> None:
    cli("token", "create", "--name", "old", "--permission", "Admin", "--database-url", database_url)

    result = cli("token", "revoke", "old", "--database-url", database_url)
    listing = cli("token", "list", "--database-url", database_url).stdout

    assert result.returncode == 0, result.stderr
    row = next(line for line in listing.splitlines() if line.startswith("old "))
    _name, _permissions, _created, expires, revoked, _last_used, clusters = row.split()
    assert revoked != "-"
    assert expires == "-"
    assert clusters == "*"  # an Admin reports any cluster


def test_token_revoke_of_an_unknown_name_fails(cli: Cli, database_url: str) -> None:
    result = cli("token", "revoke", "nobody", "--database-url", database_url)

    assert "no token named 'nobody'" in _user_error(result)


def test_token_create_with_a_taken_name_fails(cli: Cli, database_url: str) -> None:
    cli("token", "create", "--name", "dup", "--permission", "Admin", "--database-url", database_url)

    result = cli(
        "token",
        "create",
        "--name",
        "dup",
        "--permission",
        "Controller",
        "--cluster",
        "prod-eu",
        "--database-url",
        database_url,
    )

    assert "already exists" in _user_error(result)
    assert result.stderr.count("\n") == 1


def _bindings(cli: Cli, database_url: str) -> dict[str, str]:
    """`token list`'s CLUSTERS column, by token name."""
    lines = cli("token", "list", "--database-url", database_url).stdout.splitlines()
    return {line.split()[0]: line.split()[-1] for line in lines[1:]}


def test_a_controller_token_is_bound_at_creation_and_rebound_later(
    cli: Cli, database_url: str
) -> None:
    # Given a Controller token bound to one name and one pattern
    created = cli(
        "token",
        "create",
        "--name",
        "eu",
        "--permission",
        "Controller",
        "--cluster",
        "prod-eu",
        "--cluster",
        "sim-*",
        "--database-url",
        database_url,
    )
    assert created.returncode == 0, created.stderr
    assert looks_like_secret(created.stdout.strip())
    assert _bindings(cli, database_url) == {"eu": "prod-eu,sim-*"}

    # When an Admin widens it, then replaces it
    added = cli(
        "token", "bind", "eu", "--add", "--cluster", "edge-?", "--database-url", database_url
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout == "token 'eu' is bound to prod-eu, sim-*, edge-?\n"
    assert _bindings(cli, database_url) == {"eu": "prod-eu,sim-*,edge-?"}
    replaced = cli("token", "bind", "eu", "--cluster", "prod-us", "--database-url", database_url)

    # Then `token list` shows the binding stored
    assert replaced.returncode == 0, replaced.stderr
    assert _bindings(cli, database_url) == {"eu": "prod-us"}


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["create", "--name", "c", "--permission", "Controller"], "at least one --cluster"),
        (
            ["create", "--name", "a", "--permission", "Admin", "--cluster", "x"],
            "an Admin token reports any cluster",
        ),
        (["bind", "nobody", "--cluster", "x"], "no token named 'nobody'"),
        (["bind", "admin", "--cluster", "x"], "an Admin token reports any cluster"),
        (["bind", "admin"], "give the names or patterns to bind with --cluster"),
    ],
)
def test_bindings_the_contract_does_not_allow_are_refused_in_one_line(
    cli: Cli, database_url: str, arguments: list[str], words: str
) -> None:
    cli(
        "token",
        "create",
        "--name",
        "admin",
        "--permission",
        "Admin",
        "--database-url",
        database_url,
    )

    result = cli("token", *arguments, "--database-url", database_url)

    assert words in _user_error(result)
    assert result.stderr.count("\n") == 1
    assert set(_bindings(cli, database_url)) == {"admin"}  # nothing was created


@pytest.mark.parametrize("pattern", ["", " prod", "prod\x1b[31m", "p" * 254])
def test_a_cluster_pattern_that_no_name_could_match_is_a_usage_error(
    cli: Cli, database_url: str, pattern: str
) -> None:
    result = cli(
        "token",
        "create",
        "--name",
        "c",
        "--permission",
        "Controller",
        "--cluster",
        pattern,
        "--database-url",
        database_url,
    )

    assert "--cluster" in _user_error(result, code=2)


def test_bad_arguments_exit_2_with_a_usage_message(cli: Cli, database_url: str) -> None:
    result = cli(
        "token", "create", "--name", "x", "--permission", "Root", "--database-url", database_url
    )

    assert "use Admin or Controller" in _user_error(result, code=2)


@pytest.mark.parametrize(
    "url", ["not a url", "sqlite:///sync-driver.db", "sqlite+aiosqlite:////no/such/dir/t.db"]
)
def test_an_unusable_database_is_one_line_without_traceback(cli: Cli, url: str) -> None:
    result = cli("token", "list", "--database-url", url)

    message = _user_error(result)
    assert message.startswith("clusterql: error: ")
    assert message.count("\n") == 1


# ---------------------------------------------------------------- seed


async def test_seed_inserts_exactly_n_clusters_of_m_nodes(
    cli: Cli, database_url: str, engine: AsyncEngine
) -> None:
    first = cli(
        "seed", "--clusters", "1203", "--nodes-per-cluster", "3", "--database-url", database_url
    )
    second = cli(
        "seed", "--clusters", "5", "--nodes-per-cluster", "0", "--database-url", database_url
    )

    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    records, node_rows = await factories.live_clusters(engine)
    assert len(records) == 1208
    assert len({r.name for r in records}) == 1208  # two runs, no name collision
    assert sorted(r.nodes_count for r in records) == [0] * 5 + [3] * 1203
    assert all(node_rows[r.id] == r.nodes_count for r in records)


async def test_seed_mixes_node_states(cli: Cli, database_url: str, engine: AsyncEngine) -> None:
    cli("seed", "--clusters", "300", "--database-url", database_url)

    records, _ = await factories.live_clusters(engine)

    assert all(r.nodes_count == 20 for r in records)
    assert sum(r.failed_nodes_count for r in records) > 0
    assert sum(r.failed_to_install_nodes_count for r in records) > 0
    assert sum(r.disabled_nodes_count for r in records) > 0
    assert sum(r.running_nodes_count for r in records) > 300 * 20 // 2


# ---------------------------------------------------------------- serve --demo


def _curl_request(printed: str) -> httpx.Request:
    """The request the printed `curl` command sends, read the way a shell reads it."""
    lines = printed[printed.index("curl ") :].splitlines()
    end = next(i for i, line in enumerate(lines) if not line.endswith("\\"))
    command = " ".join(line.removesuffix("\\") for line in lines[: end + 1])
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


def test_serve_demo_prints_a_token_graphiql_and_a_curl_that_works(
    tmp_path: Path, database_url: str
) -> None:
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERQL_")}
    command = serve_command("--demo", "--database-url", database_url)
    with running(command, output=err, stdout=out, base_env=env, cwd=tmp_path) as server:
        port = server.url.rsplit(":", 1)[1]
        printed = out.read_text()
        request = _curl_request(printed)
        with httpx.Client(timeout=10.0) as client:
            response = client.send(request)

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


def _printed_command(printed: str, name: str) -> list[str]:
    """The `clusterql NAME ...` line the banner prints, as arguments for this interpreter."""
    line = next(
        line for line in printed.splitlines() if line.strip().startswith(f"clusterql {name}")
    )
    return [sys.executable, "-m", "clusterql.cli", *shlex.split(line)[1:]]


def test_serve_demo_prints_a_watch_and_a_simulate_that_show_the_fleet_change(
    tmp_path: Path, database_url: str
) -> None:
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLUSTERQL_")}
    command = serve_command("--demo", "--database-url", database_url)
    with running(command, output=err, stdout=out, base_env=env, cwd=tmp_path) as server:
        printed = out.read_text()
        assert "subscription { clusterChanges" in printed  # for GraphiQL
        with subprocess.Popen(
            _printed_command(printed, "watch"), stdout=subprocess.PIPE, text=True, env=env
        ) as watcher:
            time.sleep(3.0)  # connected and subscribed (it starts a Python interpreter)
            simulated = subprocess.run(
                [*_printed_command(printed, "simulate"), "--controllers", "5", "--duration", "4"],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=False,
            )
            time.sleep(1.0)
            watcher.terminate()
            shown, _ = watcher.communicate(timeout=15)
        assert server.process.poll() is None
    assert simulated.returncode == 0, simulated.stderr
    events = [json.loads(line)["clusterChanges"] for line in shown.splitlines()]
    assert len(events) >= 5
    assert {e["kind"] for e in events} == {"UPDATED"}
    demo_names = {c.name for c in demo_fleet(datetime.now(UTC))[:5]}
    assert {e["cluster"]["name"] for e in events} == demo_names


# ---------------------------------------------------------------- schema


def test_the_committed_schema_is_what_the_code_prints(cli: Cli) -> None:
    result = cli("schema")

    assert result.returncode == 0, result.stderr
    committed = (REPOSITORY / "schema.graphql").read_text()
    assert committed == result.stdout, (
        "schema.graphql is stale: run `clusterql schema > schema.graphql` and commit it"
    )


# ---------------------------------------------------------------- --version


def test_version_prints_the_installed_version(run_isolated: Cli) -> None:
    # given: the console script pip installed, and the version this source tree declares
    script = Path(sys.executable).parent / "clusterql"
    declared = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]["version"]
    # when
    result = run_isolated([str(script), "--version"])
    # then
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"clusterql {declared}\n", "is the installed clusterql stale?"
    assert result.stderr == ""
