"""The pages' third-party files (GraphiQL's seven, Swagger UI's two): pinned by digest, fetched
with npm, verified, bundled. None is committed.

Standard library only: the build hook in `setup.py` loads this file by its path, in pip's isolated
build environment where clusterql's dependencies are not installed, so that every wheel carries
the verified files. `clusterql.graphiql` and `clusterql.docs` serve them.

    python -m clusterql.vendor_assets fetch
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

FETCH_COMMAND = "python -m clusterql.vendor_assets fetch"
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
GRAPHIQL = (
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
# `/docs` (clusterql.docs). The digests are those of the files in the package npm verified against
# the registry's own integrity (sha512 of the tarball) when they were pinned; a new version is
# pinned the same way: `npm pack swagger-ui-dist@VERSION`, then the sha384 of each file.
SWAGGER_UI = (
    Asset(
        "swagger-ui-dist",
        "5.35.0",
        "swagger-ui-bundle.js",
        "gjRm0bEPMeTmMh5jT2cHccIwCUZSTd8YC+j0d0sXw0MdGEfScduGpSyF3ZSSLkX9",
    ),
    Asset(
        "swagger-ui-dist",
        "5.35.0",
        "swagger-ui.css",
        "WlYgdmXYOOBWL5apwjDEZwN+U3HmXSSu5R6V5aGxEcf7z+KuRNwBhoxKVN1i3D5I",
    ),
)
ASSETS = GRAPHIQL + SWAGGER_UI


class AssetError(Exception):
    """A file could not be fetched, did not match its digest, or the page did not name it."""


def sha384(data: bytes) -> str:
    """The base64 SHA-384 digest of `data`, as written in an `integrity` attribute."""
    return base64.b64encode(hashlib.sha384(data).digest()).decode()


def missing(root: Path = VENDOR_DIR, assets: Sequence[Asset] | None = None) -> list[Asset]:
    """The assets (all of them by default) absent from `root` or not matching their digest."""
    chosen = ASSETS if assets is None else assets
    return [a for a in chosen if not _verified(root / a.relative, a)]


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


def bundle(dest: Path, source: Path = VENDOR_DIR) -> list[Asset]:
    """Put every asset, verified, into `dest` (a build); returns those fetched with npm.

    Files that verify in `source` (the source tree) are copied, so npm is needed only for the
    others. Nothing reaches `dest` unless it matches its pinned digest.
    """
    for asset in missing(dest):
        try:
            data = (source / asset.relative).read_bytes()
        except FileNotFoundError:
            continue
        if sha384(data) == asset.sha384:
            _write(dest / asset.relative, data)
    fetched = fetch(dest)
    unverified = missing(dest)
    if unverified:  # only if something changed the files under our feet
        raise AssetError(f"not verified in {dest}: {', '.join(a.relative for a in unverified)}")
    return fetched


def _verified(path: Path, asset: Asset) -> bool:
    try:
        return sha384(path.read_bytes()) == asset.sha384
    except FileNotFoundError:
        return False


def _npm_pack(specs: Sequence[str], dest: Path) -> dict[str, Path]:
    """Download the tarballs of `specs` with npm (its own configured registry), by spec."""
    npm = shutil.which("npm")
    if npm is None:
        raise AssetError(
            f"npm is not installed, and it is needed to fetch {', '.join(specs)}: install npm "
            "(Debian and Ubuntu: apt-get install npm; scripts/system-deps does it), then try again"
        )
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m clusterql.vendor_assets",
        description="The third-party files of GraphiQL and /docs, served offline.",
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
