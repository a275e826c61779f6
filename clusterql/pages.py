"""What the HTML pages with third-party files (GraphiQL, `/docs`) share: where those files are
served, and the pages' Content-Security-Policy (SPEC §10)."""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.staticfiles import StaticFiles

from clusterql.vendor_assets import VENDOR_DIR, Asset

STATIC_URL = "/static/vendor"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.S)


def url(asset: Asset) -> str:
    """Where this server serves `asset`."""
    return f"{STATIC_URL}/{asset.relative}"


def content_security_policy(page_html: str) -> str:
    """A page's Content-Security-Policy: its own files, its inline scripts by their digest
    (nothing injected runs), no framing (`frame-ancestors 'none'`), requests to this origin only.
    GraphiQL, its explorer and Swagger UI set inline styles, so styles may be inline."""
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
