"""Debian's headless Chromium, driven by Playwright, for the tests of the pages (GraphiQL, /docs),
and a guard that keeps a page off every host but the server under test."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Route, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
# From the stack notes: without the background-networking flags Chromium keeps trying to reach
# the internet. Playwright adds a fresh --user-data-dir itself (it refuses one in `args`).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium; start it after the server, as Playwright's sync API keeps an event
    loop running."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/system-deps (as root) to install it")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class OfflineGuard:
    """Lets requests to the server under test through; aborts and records every other one."""

    def __init__(self, base_url: str) -> None:
        self.origin = urlsplit(base_url).netloc
        self.blocked: list[str] = []

    def __call__(self, route: Route) -> None:
        url = route.request.url
        if urlsplit(url).netloc == self.origin:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def on_websocket(self, url: str) -> None:  # page.route does not see WebSockets
        if urlsplit(url).netloc != self.origin:
            self.blocked.append(url)
