"""`/docs` renders the REST API's description offline: a real Chromium, a real server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from clusterql import vendor_assets
from models.engine import create_engine
from models.tokens import Permission
from tests import factories
from tests.browser import OfflineGuard, chromium
from tests.databases import migrated_database_url
from tests.live_server import live_server

pytestmark = pytest.mark.browser

TIMEOUT_MS = 20_000


async def _seed(database_url: str) -> str:
    engine = create_engine(database_url)
    try:
        secret = await factories.token(engine, Permission.ADMIN, name="docs-test")
        await factories.insert(engine, [factories.cluster("alpha-prod", node_count=2)])
    finally:
        await engine.dispose()
    return secret


@pytest.fixture
def secret_and_server(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = asyncio.run(migrated_database_url(tmp_path))
    secret = asyncio.run(_seed(url))
    with live_server({"CLUSTERQL_DATABASE_URL": url}) as base_url:
        yield secret, base_url


@pytest.fixture
def browser(secret_and_server: tuple[str, str]) -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


def _watched(browser: Browser, server: str) -> tuple[Page, OfflineGuard, list[str]]:
    guard = OfflineGuard(server)
    context = browser.new_context()
    context.route("**/*", guard)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if "Security Policy" in m.text else None)
    return page, guard, errors


def test_docs_renders_both_endpoints_offline(
    secret_and_server: tuple[str, str], browser: Browser
) -> None:
    # given: the files installed and a live server
    _, server = secret_and_server
    assert not vendor_assets.missing(assets=vendor_assets.SWAGGER_UI), (
        f"the files of /docs are missing: run {vendor_assets.FETCH_COMMAND}"
    )
    page, guard, errors = _watched(browser, server)

    # when: a person opens /docs
    opened = page.goto(f"{server}/docs")

    # then: it runs under its policy, and shows both endpoints in all their path forms
    assert opened is not None
    assert opened.status == 200
    policy = opened.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in policy
    assert "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0]
    paths = page.locator(".opblock-summary-path")
    expect(paths).to_have_count(6)
    shown = {" ".join(p.split()) for p in paths.all_inner_texts()}
    assert {
        "/runtime/api/v1/clusters",
        "/runtime/api/v1/clusters/",
        "/runtime/api/v1/cluster/{id}",
        "/runtime/api/v1/clusters/{id}/",
    } <= shown, shown
    summaries = page.locator(".opblock-summary-description").all_inner_texts()
    assert {"Get Clusters List", "Get Cluster"} <= set(summaries), summaries
    expect(page.locator(".scheme-container .authorize")).to_be_visible()
    assert guard.blocked == [], "the page tried to load files from other hosts"
    assert errors == []


def test_docs_tries_get_clusters_list_with_a_token(
    secret_and_server: tuple[str, str], browser: Browser
) -> None:
    # given: a person who opened /docs and gave the token to "Authorize"
    secret, server = secret_and_server
    page, guard, errors = _watched(browser, server)
    page.goto(f"{server}/docs")
    page.locator(".scheme-container .authorize").click()
    page.locator(".auth-container input").fill(secret)
    page.locator(".auth-btn-wrapper .authorize").click()
    page.locator(".btn-done").click()

    # when: they try Get Clusters List with its first example body
    operation = page.locator("#operations-clusters-listClusters")
    operation.locator(".opblock-summary").click()
    operation.locator(".try-out__btn").click()
    operation.locator(".execute").click()

    # then: the answer is the seeded cluster, fetched from this server under the page's policy
    response = operation.locator(".live-responses-table .response")
    expect(response.locator(".response-col_status")).to_contain_text("200")
    expect(response.locator(".response-col_description")).to_contain_text("alpha-prod")
    assert guard.blocked == []
    assert errors == []
    stored = page.evaluate("() => JSON.stringify(Object.entries(localStorage))")
    assert secret not in stored  # persistAuthorization is off
