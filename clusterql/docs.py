"""`/docs`: `/openapi.json` rendered for people by Swagger UI, with no CDN (SPEC §10).

Swagger UI's two files are pinned, fetched and verified like GraphiQL's (`vendor_assets`) and
served from `/static/vendor`; the browser checks their digests again (`integrity`). The page's
one inline script is allowed by its digest in the Content-Security-Policy, which also forbids
framing. Swagger UI's "Authorize" keeps the token in the page's memory only
(`persistAuthorization` is off), and its validator badge, which would call a public service, is
off. Like the document, the page holds no data and needs no token.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from clusterql.openapi import OPENAPI_URL
from clusterql.pages import content_security_policy, url
from clusterql.vendor_assets import FETCH_COMMAND, SWAGGER_UI, missing

log = logging.getLogger("clusterql.docs")

DOCS_URL = "/docs"
_SCRIPT, _STYLE = SWAGGER_UI  # swagger-ui-bundle.js, swagger-ui.css

_START = f"""SwaggerUIBundle({{
        url: "{OPENAPI_URL}",
        dom_id: "#swagger-ui",
        deepLinking: false,
        persistAuthorization: false,
        validatorUrl: null,
        tryItOutEnabled: false,
        defaultModelsExpandDepth: 2,
      }});"""


def page() -> str:
    """The Swagger UI page for `/openapi.json`, or one saying how to install its files."""
    absent = missing(assets=SWAGGER_UI)
    if absent:
        names = ", ".join(a.relative for a in absent)
        log.warning("the files of /docs are missing (%s): run %s", names, FETCH_COMMAND)
        return _unavailable(f"Missing or damaged: {names}.")
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>clusterql REST API</title>
    <link rel="stylesheet" href="{url(_STYLE)}" integrity="sha384-{_STYLE.sha384}">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="{url(_SCRIPT)}" integrity="sha384-{_SCRIPT.sha384}"></script>
    <script>
      {_START}
    </script>
  </body>
</html>
"""


def _unavailable(reason: str) -> str:
    return f"""<!doctype html>
<html lang="en">
  <head><meta charset="utf-8"><title>/docs is not installed</title></head>
  <body>
    <h1>The REST API's documentation page is not installed on this server</h1>
    <p>{html.escape(reason)}</p>
    <p>Run <code>{FETCH_COMMAND}</code> where clusterql is installed, then restart it.</p>
    <p>The description itself is at <a href="{OPENAPI_URL}">{OPENAPI_URL}</a>.</p>
  </body>
</html>
"""


def endpoint() -> Callable[[Request], Awaitable[Response]]:
    """The endpoint serving the page, built once, with its Content-Security-Policy."""
    text = page()
    headers = {"Content-Security-Policy": content_security_policy(text)}

    async def docs(request: Request) -> Response:
        return HTMLResponse(text, headers=headers)

    return docs
