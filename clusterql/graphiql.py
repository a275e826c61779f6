"""GraphiQL with no CDN: Strawberry's page, served with its seven files from `/static/vendor`.

Strawberry's page loads React, GraphiQL and its explorer plugin from a public CDN, so with no
internet it stays at "Loading..." (Strawberry's maintainers declined to bundle them). We take the
very same files from the npm registry with `npm pack` at install time, check each against the
`integrity` digest the page itself pins, and rewrite the page to point at our copies; the
browser checks the digests again. Newer graphiql (5.x) is ESM-only and React 19 has no UMD build,
so these versions are the ones that work with plain script tags. Nothing third-party is committed.

    python -m clusterql.graphiql fetch
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import html
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from starlette.staticfiles import StaticFiles
from strawberry.http.ides import get_graphql_ide_html

log = logging.getLogger("clusterql.graphiql")

FETCH_COMMAND = "python -m clusterql.graphiql fetch"
STATIC_URL = "/static/vendor"
VENDOR_DIR = Path(__file__).parent / "static" / "vendor"
NPM_TIMEOUT_S = 300


@dataclass(frozen=True, slots=True)
class Asset:
    """One file of an npm package, pinned by the SHA-384 digest of its bytes."""

    package: str
    version: str
    path: str  # inside the package
    sha384: str  # base64, as in an `integrity` attribute

    @property
    def spec(self) -> str:
        return f"{self.package}@{self.version}"

    @property
    def relative(self) -> str:
        """Where the file lives under `VENDOR_DIR`, and the tail of its URL on the CDN and here."""
        return f"{self.spec}/{self.path}"


# Copied from strawberry/static/graphiql.html (strawberry-graphql 0.341.2), digests included.
ASSETS = (
    Asset(
        "react",
        "18.2.0",
        "umd/react.production.min.js",
        "tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    ),
    Asset(
        "react-dom",
        "18.2.0",
        "umd/react-dom.production.min.js",
        "bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
    Asset(
        "js-cookie",
        "3.0.5",
        "dist/js.cookie.min.js",
        "/vxhYfM1LENRhdpZ8dwEsQn/X4VhpbEZSiU4m/FwR+PVpzar4fkEOw8FP9Y+OfQN",
    ),
    Asset(
        "graphiql",
        "3.8.3",
        "graphiql.min.css",
        "Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    Asset(
        "graphiql",
        "3.8.3",
        "graphiql.min.js",
        "HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    Asset(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "dist/style.css",
        "5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
    ),
    Asset(
        "@graphiql/plugin-explorer",
        "1.0.2",
        "dist/index.umd.js",
        "2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
    ),
)


class AssetError(Exception):
    """A file could not be fetched, did not match its digest, or the page did not name it."""


def sha384(data: bytes) -> str:
    """The base64 SHA-384 digest of `data`, as written in an `integrity` attribute."""
    return base64.b64encode(hashlib.sha384(data).digest()).decode()


def missing(root: Path = VENDOR_DIR) -> list[Asset]:
    """The assets that are absent from `root` or do not match their digest."""
    return [a for a in ASSETS if not _verified(root / a.relative, a)]


def fetch(root: Path = VENDOR_DIR) -> list[Asset]:
    """Fetch and verify the missing assets into `root`; returns those fetched (none: no-op).

    A file is written only once its digest matches; a stale or corrupt file is removed first.
    """
    todo = missing(root)
    if not todo:
        return []
    for asset in todo:
        (root / asset.relative).unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tarballs = _npm_pack(sorted({a.spec for a in todo}), Path(tmp))
        for asset in todo:
            data = _member(tarballs[asset.spec], asset)
            if sha384(data) != asset.sha384:
                raise AssetError(
                    f"{asset.relative}: sha384 {sha384(data)} does not match the pinned "
                    f"{asset.sha384}; nothing was written for it"
                )
            _write(root / asset.relative, data)
    return todo


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


class _VendorFiles(StaticFiles):
    async def check_config(self) -> None:
        if VENDOR_DIR.is_dir():  # before a fetch: plain 404s, not Starlette's 500
            await super().check_config()


def vendor_files() -> StaticFiles:
    """The ASGI app serving `VENDOR_DIR`, to mount at `STATIC_URL`; it starts without the files."""
    return _VendorFiles(directory=VENDOR_DIR, check_dir=False)


def _verified(path: Path, asset: Asset) -> bool:
    try:
        return sha384(path.read_bytes()) == asset.sha384
    except FileNotFoundError:
        return False


def _npm_pack(specs: Sequence[str], dest: Path) -> dict[str, Path]:
    """Download the tarballs of `specs` with npm (its own configured registry), by spec."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError("npm is not installed: run scripts/system-deps")
    command = [npm, "pack", "--json", "--ignore-scripts", "--pack-destination", str(dest), *specs]
    try:
        done = subprocess.run(  # noqa: S603 (fixed arguments: our own pinned specs)
            command,
            cwd=dest,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=NPM_TIMEOUT_S,
            check=True,
        )
        packed = json.loads(done.stdout)
        tarballs = {f"{p['name']}@{p['version']}": dest / p["filename"] for p in packed}
    except subprocess.CalledProcessError as exc:
        raise AssetError(f"npm pack {' '.join(specs)} failed:\n{exc.stderr.strip()}") from exc
    except (subprocess.TimeoutExpired, ValueError, KeyError, TypeError) as exc:
        raise AssetError(f"npm pack {' '.join(specs)} failed: {exc!r}") from exc
    absent = set(specs) - tarballs.keys()
    if absent:
        raise AssetError(f"npm pack did not produce {', '.join(sorted(absent))}")
    return tarballs


def _member(tarball: Path, asset: Asset) -> bytes:
    """The bytes of `asset.path` in an npm tarball (whose files are under `package/`)."""
    with tarfile.open(tarball, "r:gz") as tar:
        try:
            member = tar.extractfile(f"package/{asset.path}")
        except KeyError:
            member = None
        if member is None:
            raise AssetError(f"{asset.spec} has no regular file {asset.path}")
        with member:
            return member.read()


def _write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically: a reader sees the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; the server may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clusterql.graphiql", description="GraphiQL's files, served offline."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("fetch", help="fetch and verify the files with npm (no-op when present)")
    parser.parse_args(argv)
    try:
        fetched = fetch()
    except AssetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if fetched:
        print(f"fetched and verified {len(fetched)} files into {VENDOR_DIR}")
    else:
        print(f"all {len(ASSETS)} files present and verified in {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
