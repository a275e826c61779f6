"""GraphiQL with no CDN: Strawberry's page, served with its seven files from `/static/vendor`.

Strawberry's page loads React, GraphiQL and its explorer plugin from a public CDN, so with no
internet it stays at "Loading..." (Strawberry's maintainers declined to bundle them). We take the
very same files from the npm registry with `npm pack` when the package is built (setup.py and
`vendor_assets`), check each against the `integrity` digest the page itself pins, and rewrite
the page to point at our copies; the browser checks the digests again. Newer graphiql (5.x) is
ESM-only and React 19 has no UMD build, so these versions are the ones that work with plain
script tags. Nothing third-party is committed; the wheel carries the files.

    python -m clusterql.vendor_assets fetch
"""

from __future__ import annotations

import html
import logging
import re
import sys
from pathlib import Path

from strawberry.http.ides import get_graphql_ide_html

from clusterql.pages import url
from clusterql.vendor_assets import FETCH_COMMAND, GRAPHIQL, VENDOR_DIR, AssetError, main, missing

log = logging.getLogger("clusterql.graphiql")


def page(root: Path = VENDOR_DIR) -> str:
    """Strawberry's GraphiQL page loading our copies, or a page saying how to install them."""
    absent = missing(root, GRAPHIQL)
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
    for asset in GRAPHIQL:
        cdn_url = re.compile(r'"https?://[^"\s]+/' + re.escape(asset.relative) + '"')
        text, found = cdn_url.subn(f'"{url(asset)}"', text)
        if found != 1:
            raise AssetError(f"Strawberry's GraphiQL page no longer loads {asset.relative}")
    # Headers hold the bearer secret: none may reach the browser's storage or come from the URL.
    text = _once(text, "shouldPersistHeaders: true,", HEADERLESS_PROPS)
    text = _once(text, "function GraphiQLWithExplorer() {", HEADERLESS_STORAGE + "\n      $0")
    text = _once(
        text, "React.useState(parameters.headers)", "React.useState(undefined)"
    )  # a link must not carry a token into the page (nor a shared URL out of it)
    text = _once(
        text,
        "const fetcher = GraphiQL.createFetcher({",
        "const stockFetcher = GraphiQL.createFetcher({",
    )
    text = _once(text, "function GraphiQLWithExplorer() {", ROUTING_FETCHER + "\n      $0")
    remote = re.search(r'(?:src|href)="(https?://[^"]+)"', text)
    if remote:  # a newer Strawberry loads another file: pin it in GRAPHIQL
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
# GraphiQL's fetcher sends an operation over its websocket only when the editor's last parse
# (`documentAST`) says it is a subscription, and only under the operation name it was given. Run
# right after typing, that parse is still the previous document's, and a named subscription sent
# without `operationName` does not match: the subscription went out as a POST, which the server
# refuses. This fetcher parses the document as sent (with GraphiQL's own graphql-js), names the
# operation when the document holds just one, and lets the stock fetcher route from that.
ROUTING_FETCHER = """// clusterql: route each operation by the document actually sent.
      function fetcher(params, options) {
        let documentAST;
        try {
          documentAST = GraphiQL.GraphQL.parse(params.query);
        } catch (error) {
          return stockFetcher(params, options);  // the server explains the syntax error
        }
        const operations = documentAST.definitions.filter(
          (definition) => definition.kind === "OperationDefinition",
        );
        if (!params.operationName && operations.length === 1 && operations[0].name) {
          params = Object.assign({}, params, { operationName: operations[0].name.value });
        }
        return stockFetcher(params, Object.assign({}, options, { documentAST }));
      }"""
HEADERLESS_PROPS = "shouldPersistHeaders: false,\n          storage: headerlessStorage,"


def _once(text: str, old: str, new: str) -> str:
    """`text` with `old` replaced by `new` (`$0` standing for `old`), if `old` occurs once."""
    if text.count(old) != 1:
        raise AssetError(f"Strawberry's GraphiQL page changed: {old!r} is no longer found once")
    return text.replace(old, new.replace("$0", old))


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
