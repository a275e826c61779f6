"""GraphiQL at GET /graphql works offline: a real Chromium, a real server, the real editors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from clusterql import vendor_assets
from models.engine import create_engine
from models.tokens import Permission
from tests import factories
from tests.browser import OfflineGuard, chromium
from tests.databases import migrated_database_url
from tests.documents import REPORT
from tests.live_server import live_server, token_client

pytestmark = pytest.mark.browser

CLUSTER_NAMES = ["alpha-prod", "bravo-staging", "charlie-dev"]
QUERY = "{ clusters(limit: 5) { totalCount clusters { name } } }"
TIMEOUT_MS = 20_000


async def _seed(database_url: str) -> str:
    """An Admin token and three clusters, written with the product's own functions."""
    engine = create_engine(database_url)
    try:
        secret = await factories.token(engine, Permission.ADMIN, name="graphiql-test")
        await factories.insert(engine, [factories.cluster(name) for name in CLUSTER_NAMES])
    finally:
        await engine.dispose()
    return secret


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return asyncio.run(migrated_database_url(tmp_path))


@pytest.fixture
def secret(database_url: str) -> str:
    return asyncio.run(_seed(database_url))


@pytest.fixture
def server(database_url: str, secret: str) -> Iterator[str]:
    with live_server({"CLUSTERQL_DATABASE_URL": database_url}) as base_url:
        yield base_url


@pytest.fixture
def browser(server: str) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def _type_into(page: Page, editor: str, text: str) -> None:
    """Replace the content of a CodeMirror editor by typing, as a user would."""
    page.locator(f"{editor} .CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(text)
    # CodeMirror closes brackets and quotes as one types: check that what stands is what we meant.
    typed = page.locator(f"{editor} .CodeMirror").evaluate("e => e.CodeMirror.getValue()")
    assert typed == text


def _run_with_token(page: Page, secret: str) -> None:
    """Once GraphiQL is up: the token in the Headers tab, QUERY in the editor, then run."""
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Headers", exact=True).click()
    headers = json.dumps({"Authorization": f"Bearer {secret}"})
    _type_into(page, ".graphiql-editor-tool .graphiql-editor:not(.hidden)", headers)
    _type_into(page, ".graphiql-query-editor", QUERY)
    page.locator(".graphiql-execute-button").click()


def test_graphiql_runs_a_query_with_no_internet(server: str, secret: str, browser: Browser) -> None:
    # given: the assets installed, an Admin token and three clusters, a live server
    assert not vendor_assets.missing(), (
        f"GraphiQL's files are missing: run {vendor_assets.FETCH_COMMAND}"
    )
    guard = OfflineGuard(server)
    context = browser.new_context()
    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.on("websocket", lambda ws: guard.on_websocket(ws.url))
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Security Policy" in m.text else None)

    # when: a user opens GraphiQL, sets the token header, types the query and runs it
    opened = page.goto(f"{server}/graphql")
    assert opened is not None
    policy = opened.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy  # and it runs under it: no violation below
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    assert guard.blocked == [], "the page tried to load files from other hosts"
    _run_with_token(page, secret)

    # then: the result pane shows the seeded clusters, and nothing left the machine
    result = page.locator(".graphiql-response")
    expect(result).to_contain_text('"totalCount": 3', timeout=TIMEOUT_MS)
    for name in CLUSTER_NAMES:
        expect(result).to_contain_text(name)
    context.close()
    assert guard.blocked == []
    assert errors == []


STORED = """async () => {
  const entries = (s) => Array.from({length: s.length}, (_, i) => [s.key(i), s.getItem(s.key(i))]);
  const databases = indexedDB.databases ? await indexedDB.databases() : [];
  return {local: entries(localStorage), session: entries(sessionStorage),
          indexedDB: databases.map((d) => d.name), cookies: document.cookie};
}"""
EDITORS = (
    "() => Array.from(document.querySelectorAll('.CodeMirror'), (e) => e.CodeMirror.getValue())"
)


def test_graphiql_keeps_no_token_in_the_browser(server: str, secret: str, browser: Browser) -> None:
    # given: a user who ran a query with the token in the Headers tab
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{server}/graphql")
    _run_with_token(page, secret)
    expect(page.locator(".graphiql-response")).to_contain_text('"totalCount": 3')
    page.wait_for_timeout(1500)  # GraphiQL writes its tabs after a 500 ms debounce

    # then: the browser's storage holds the query (history works) but never the secret
    stored = page.evaluate(STORED)
    assert any(QUERY in value for _, value in stored["local"]), stored
    assert secret not in json.dumps(stored), stored

    # when: the page is reloaded, and the query taken back from the history
    page.reload()
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Headers", exact=True).click()
    assert all(secret not in value for value in page.evaluate(EDITORS))
    page.get_by_role("button", name="Show History").click()
    page.locator(".graphiql-history-item-label").first.click()

    # then: the query is back, the Headers tab stays empty, and nothing was stored since
    values = page.evaluate(EDITORS)
    assert QUERY in values
    assert all(secret not in value for value in values), values  # the Headers tab is empty
    page.wait_for_timeout(1000)
    assert secret not in json.dumps(page.evaluate(STORED))
    context.close()


def test_graphiql_takes_no_headers_from_its_url(server: str, secret: str, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    smuggled = json.dumps({"Authorization": f"Bearer {secret}"})
    page.goto(f"{server}/graphql?headers={smuggled}&q={QUERY}")
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible(timeout=TIMEOUT_MS)
    values = page.evaluate(EDITORS)
    assert QUERY in values  # the query may be shared by link
    assert all(secret not in value for value in values), values
    context.close()


SUBSCRIPTION = "subscription { clusterChanges { kind cluster { name nodesCount } } }"
NAMED_SUBSCRIPTION = "subscription Watch { clusterChanges { kind cluster { name } } }"


@pytest.mark.parametrize("document", [SUBSCRIPTION, NAMED_SUBSCRIPTION], ids=["anonymous", "named"])
def test_graphiql_runs_a_subscription(
    server: str, secret: str, database_url: str, browser: Browser, document: str
) -> None:
    # given: GraphiQL with the token in its Headers tab, running a subscription
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Security Policy" in m.text else None)
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(f"{server}/graphql")
    expect(page.locator(".graphiql-query-editor .CodeMirror")).to_be_visible(timeout=TIMEOUT_MS)
    page.get_by_role("button", name="Headers", exact=True).click()
    headers = json.dumps({"Authorization": f"Bearer {secret}"})
    _type_into(page, ".graphiql-editor-tool .graphiql-editor:not(.hidden)", headers)
    _type_into(page, ".graphiql-query-editor", document)
    page.locator(".graphiql-execute-button").click()  # at once: GraphiQL's own parse may lag
    expect(page.locator(".graphiql-execute-button")).to_have_attribute(
        "aria-label", "Stop query (Ctrl-Enter)"
    )  # subscribed: GraphiQL offers to stop it
    page.wait_for_timeout(500)

    # when: a controller reports a new cluster
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's loop
        name = f"delta-{len(document)}"  # a new cluster for each case
        thread.submit(asyncio.run, _report_new_cluster(server, database_url, name)).result()

    # then: the event shows in the result pane, over a websocket to this server
    result = page.locator(".graphiql-response")
    expect(result).to_contain_text('"kind": "REGISTERED"', timeout=TIMEOUT_MS)
    expect(result).to_contain_text(name)
    assert [urlsplit(url).netloc for url in sockets] == [urlsplit(server).netloc]
    assert errors == []
    context.close()


async def _report_new_cluster(server: str, database_url: str, name: str) -> None:
    engine = create_engine(database_url)
    try:
        controller = await factories.token(engine, Permission.CONTROLLER)
    finally:
        await engine.dispose()
    state = {
        "name": name,
        "provider": "aws",
        "regions": ["eu-west-1"],
        "controllerVersion": "1",
        "controllerStatus": "RUNNING",
        "nodes": [],
    }
    async with token_client(server, controller) as client:
        body = {"query": REPORT, "variables": {"input": state}}
        assert "errors" not in (await client.post("/graphql", json=body)).json()
