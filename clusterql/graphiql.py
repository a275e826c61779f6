"""GraphiQL with no CDN: Strawberry's page, served with its seven files from `/static/vendor`.

Strawberry's page loads React, GraphiQL and its explorer plugin from a public CDN, so with no
internet it stays at "Loading..." (Strawberry's maintainers declined to bundle them). We take the
very same files from the npm registry with `npm pack` when the package is built (setup.py and
`graphiql_assets`), check each against the `integrity` digest the page itself pins, and rewrite
the page to point at our copies; the browser checks the digests again. Newer graphiql (5.x) is
ESM-only and React 19 has no UMD build, so these versions are the ones that work with plain
script tags. Nothing third-party is committed; the wheel carries the files.

    python -m clusterql.graphiql fetch
"""

from __future__ import annotations

import base64
import hashlib
import html
import logging
import re
import sys
from pathlib import Path

from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

from clusterql.graphiql_assets import ASSETS, FETCH_COMMAND, VENDOR_DIR, AssetError, main, missing

log = logging.getLogger("clusterql.graphiql")

STATIC_URL = "/static/vendor"


def page(root: Path = VENDOR_DIR) -> str:
    """Strawberry's GraphiQL page loading our copies, or a page saying how to install them."""
    absent = missing(root)
    if absent:
        names = ", ".join(a.relative for a in absent)
        log.warning("GraphiQL's files are missing (%s): run %s", names, FETCH_COMMAND)
        return _unavailable(f"Missing or damaged: {names}.")
    try:
        return local_page()
    except AssetError as exc:
        log.error("GraphiQL is unavailable: %s", exc)
        return _unavailable(str(exc))


def local_page() -> str:
    """Strawberry's page with each CDN URL replaced by ours; the `integrity` attributes stay."""
    text = get_graphql_ide_html("graphiql")
    for asset in ASSETS:
        cdn_url = re.compile(r'"https?://[^"\s]+/' + re.escape(asset.relative) + '"')
        text, found = cdn_url.subn(f'"{STATIC_URL}/{asset.relative}"', text)
        if found != 1:
            raise AssetError(f"Strawberry's GraphiQL page no longer loads {asset.relative}")
    # Headers hold the bearer secret: none may reach the browser's storage or come from the URL.
    text = _once(text, "shouldPersistHeaders: true,", HEADERLESS_PROPS)
    text = _once(text, "function GraphiQLWithExplorer() {", HEADERLESS_STORAGE + "\n      $0")
    text = _once(
        text, "React.useState(parameters.headers)", "React.useState(undefined)"
    )  # a link must not carry a token into the page (nor a shared URL out of it)
    remote = re.search(r'(?:src|href)="(https?://[^"]+)"', text)
    if remote:  # a newer Strawberry loads another file: pin it in ASSETS
        raise AssetError(f"Strawberry's GraphiQL page loads a file we do not pin: {remote[1]}")
    return text


# GraphiQL 3.8.3 keeps the headers of every query it runs in its history (localStorage
# "graphiql:queries"), whatever `shouldPersistHeaders` says, so a reload and a click on a history
# entry put the token back. Its `storage` prop takes a Storage-like object: this one is
# localStorage with every "headers" value nulled before it is written, and nothing kept under a
# key that names headers.
HEADERLESS_STORAGE = """// clusterql: never store request headers (they hold the bearer token).
      const headerlessStorage = (function () {
        const namespace = "graphiql:";
        function withoutHeaders(value) {
          if (Array.isArray(value)) return value.map(withoutHeaders);
          if (value === null || typeof value !== "object") return value;
          const out = {};
          for (const [key, item] of Object.entries(value)) {
            out[key] = key === "headers" ? null : withoutHeaders(item);
          }
          return out;
        }
        function ownKeys() {
          const keys = [];
          for (let i = 0; i < localStorage.length; i++) {
            const key = localStorage.key(i);
            if (key.indexOf(namespace) === 0) keys.push(key);
          }
          return keys;
        }
        return {
          getItem: (key) => localStorage.getItem(key),
          removeItem: (key) => localStorage.removeItem(key),
          setItem(key, value) {
            if (/headers/i.test(key)) {
              localStorage.removeItem(key);
              return;
            }
            let text = String(value);
            try {
              text = JSON.stringify(withoutHeaders(JSON.parse(text)));
            } catch (notJson) {}
            localStorage.setItem(key, text);
          },
          get length() {
            return ownKeys().length;
          },
          clear() {
            ownKeys().forEach((key) => localStorage.removeItem(key));
          },
        };
      })();"""
HEADERLESS_PROPS = "shouldPersistHeaders: false,\n          storage: headerlessStorage,"


def _once(text: str, old: str, new: str) -> str:
    """`text` with `old` replaced by `new` (`$0` standing for `old`), if `old` occurs once."""
    if text.count(old) != 1:
        raise AssetError(f"Strawberry's GraphiQL page changed: {old!r} is no longer found once")
    return text.replace(old, new.replace("$0", old))


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def content_security_policy(page_html: str) -> str:
    """The page's Content-Security-Policy: its own files, its inline scripts by their digest
    (nothing injected runs), no framing (`frame-ancestors 'none'`), requests to this origin only.
    GraphiQL and its explorer set inline styles, so styles may be inline."""
    digests = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()}'"
        for body in _INLINE_SCRIPT.findall(page_html)
    )
    return (
        f"default-src 'self'; script-src 'self' {digests}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    )


class _VendorFiles(StaticFiles):
    async def check_config(self) -> None:
        if VENDOR_DIR.is_dir():  # before a fetch: plain 404s, not Starlette's 500
            await super().check_config()


def vendor_files() -> StaticFiles:
    """The ASGI app serving `VENDOR_DIR`, to mount at `STATIC_URL`; it starts without the files."""
    return _VendorFiles(directory=VENDOR_DIR, check_dir=False)


def _unavailable(reason: str) -> str:
    return f"""<!doctype html>
<html>
  <head><meta charset="utf-8"><title>GraphiQL is not installed</title></head>
  <body>
    <h1>GraphiQL is not installed on this server</h1>
    <p>{html.escape(reason)}</p>
    <p>Run <code>{FETCH_COMMAND}</code> where clusterql is installed, then restart it.</p>
    <p>The API itself works: <code>POST /graphql</code> with
      <code>Authorization: Bearer &lt;token&gt;</code>.</p>
  </body>
</html>
"""


if __name__ == "__main__":
    sys.exit(main())
