"""A raw-driver floor for `POST /runtime/api/v1/clusters`: what the page costs without the product.

One Starlette route, served by the same uvicorn as `clusterql serve`, that answers
`{"limit": N, "return_nodes": B}` (first page, default order, no filter) with the same bytes as
clusterql's REST answer, sharing no code with the product (none of `models`, `graph`,
`rest_shim` or `clusterql`): its SQL is written by hand, its drivers used directly, its JSON
built with plain dicts and orjson. bench/README.md says what it checks and how it reads.

    python bench/floor.py --database-url postgresql://user@127.0.0.1:5432/db --port 8001
    python bench/floor.py --database-url sqlite:///path/to/clusterql.db --port 8002
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import re
import sqlite3
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import anyio.to_thread
import asyncpg
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

PATH = "/runtime/api/v1/clusters"
SECRET = re.compile(r"cql_[A-Za-z0-9_-]{43}")
TOUCH_EVERY = timedelta(minutes=1)

_CLUSTER = (
    "id, name, monitored_at, controller_version, controller_status, controller_last_updated, "
    "provider, regions, nodes_count, running_nodes_count, failed_nodes_count, "
    "failed_to_install_nodes_count, disabled_nodes_count"
)
_NODE = (
    "id, cluster_id, monitored_at, name, sensor_installed, sensor_last_updated, sensor_version, "
    "region, architecture, hostname, internal_dns, internal_ip, status"
)
_LIVE_TOKEN = (
    "SELECT id, permissions, last_used_at FROM api_tokens WHERE secret_digest = {digest} "
    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > {now})"
)
_COUNT = "SELECT count(*) FROM clusters WHERE removed_at IS NULL"
# The page with the count of all live clusters as one more column (computed once), as clusterql
# reads them; an empty page carries no count, which `_COUNT` then gives.
_PAGE = (
    f"SELECT {_CLUSTER}, ({_COUNT}) FROM clusters WHERE removed_at IS NULL "
    "ORDER BY id LIMIT {limit}"
)
_NODES = f"SELECT {_NODE} FROM nodes WHERE cluster_id {{ids}} ORDER BY cluster_id, id"
_TOUCH = "UPDATE api_tokens SET last_used_at = {now} WHERE id = {id}"


@dataclass(slots=True)
class Read:
    """What one request read, in one transaction. `token` is None for an unknown token."""

    token: tuple[int, Any, Any] | None
    clusters: list[Any]
    total: int
    nodes: list[Any]


# --- PostgreSQL: asyncpg ---------------------------------------------------------------------


async def _no_reset(_conn: asyncpg.Connection) -> None:
    """Nothing to reset: the floor sets no session state (asyncpg's default costs a round trip)."""


class Postgres:
    """Timestamps come back as naive UTC datetimes, JSONB as its text."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def read(self, digest: str, now: datetime, limit: int, with_nodes: bool) -> Read:
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            token = await conn.fetchrow(
                _LIVE_TOKEN.format(digest="$1", now="$2"), digest, now.replace(tzinfo=None)
            )
            if token is None:
                return Read(None, [], 0, [])
            clusters = await conn.fetch(_PAGE.format(limit="$1"), limit + 1)
            total = clusters[0][-1] if clusters else await conn.fetchval(_COUNT)
            nodes = []
            if with_nodes and clusters:
                ids = [row[0] for row in clusters[:limit]]
                nodes = await conn.fetch(_NODES.format(ids="= ANY($1::bigint[])"), ids)
        return Read(tuple(token), clusters, total, nodes)

    async def touch(self, token_id: int, now: datetime) -> None:
        async with self.pool.acquire() as conn:
            await conn.execute(_TOUCH.format(now="$1", id="$2"), now.replace(tzinfo=None), token_id)

    def timestamp(self, value: datetime) -> str:
        return value.isoformat(timespec="microseconds") + "Z"

    regions = permissions = staticmethod(orjson.loads)

    def last_used(self, value: datetime | None) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


# --- SQLite: the sqlite3 module ----------------------------------------------------------------


class Sqlite:
    """One connection per worker thread. Timestamps are stored as `2024-12-31 11:32:10.367653`
    (UTC, always with microseconds), JSON as text, booleans as 0 and 1."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._local = threading.local()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # isolation_level=None: the module issues no BEGIN of its own; we do.
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 30000")
            self._local.conn = conn
        return conn

    @staticmethod
    def _stored(now: datetime) -> str:
        return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _read(self, digest: str, now: datetime, limit: int, with_nodes: bool) -> Read:
        conn = self._conn()
        conn.execute("BEGIN")  # deferred: the snapshot of its first read, kept to the end
        try:
            token = conn.execute(
                _LIVE_TOKEN.format(digest="?", now="?"), (digest, self._stored(now))
            ).fetchone()
            if token is None:
                return Read(None, [], 0, [])
            clusters = conn.execute(_PAGE.format(limit="?"), (limit + 1,)).fetchall()
            total = clusters[0][-1] if clusters else conn.execute(_COUNT).fetchone()[0]
            nodes = []
            if with_nodes and clusters:
                ids = [row[0] for row in clusters[:limit]]
                marks = f"IN ({', '.join('?' * len(ids))})"
                nodes = conn.execute(_NODES.format(ids=marks), ids).fetchall()
        finally:
            conn.execute("ROLLBACK")
        return Read(token, clusters, total, nodes)

    async def read(self, digest: str, now: datetime, limit: int, with_nodes: bool) -> Read:
        return await anyio.to_thread.run_sync(self._read, digest, now, limit, with_nodes)

    def _touch(self, token_id: int, now: datetime) -> None:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(_TOUCH.format(now="?", id="?"), (self._stored(now), token_id))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    async def touch(self, token_id: int, now: datetime) -> None:
        await anyio.to_thread.run_sync(self._touch, token_id, now)

    def timestamp(self, value: str) -> str:
        return value.replace(" ", "T", 1) + "Z"

    regions = permissions = staticmethod(orjson.loads)

    def last_used(self, value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


# --- the page ----------------------------------------------------------------------------------


def _page(db: Postgres | Sqlite, read: Read, limit: int, with_nodes: bool) -> dict[str, Any]:
    ts = db.timestamp
    by_cluster: dict[int, list[dict[str, Any]]] = {}
    for n in read.nodes:
        by_cluster.setdefault(n[1], []).append(
            {
                "id": n[0],
                "monitored_at": ts(n[2]),
                "name": n[3],
                "sensor_installed": bool(n[4]),
                "sensor_last_updated": "" if n[5] is None else ts(n[5]),
                "sensor_version": n[6],
                "region": n[7],
                "architecture": n[8],
                "hostname": n[9],
                "internal_dns": n[10],
                "internal_ip": n[11],
                "status": n[12],
            }
        )
    clusters = []
    for c in read.clusters[:limit]:
        cluster = {
            "monitored_at": ts(c[2]),
            "id": c[0],
            "name": c[1],
            "controller_version": c[3],
            "controller_status": c[4],
            "controller_last_updated": ts(c[5]),
            "provider": c[6],
            "regions": db.regions(c[7]),
            "nodes_count": c[8],
            "running_nodes_count": c[9],
            "failed_nodes_count": c[10],
            "failed_to_install_nodes_count": c[11],
            "disabled_nodes_count": c[12],
        }
        if with_nodes:
            cluster["nodes"] = by_cluster.get(c[0], [])
        clusters.append(cluster)
    pagination: dict[str, Any] = {"limit": limit}
    if len(read.clusters) > limit:
        pagination["next_key"] = str(read.clusters[limit - 1][0])
    return {"total_count": read.total, "pagination": pagination, "clusters": clusters}


def _error(status: int, message: str) -> Response:
    return Response(orjson.dumps({"error": message}), status, media_type="application/json")


def _arguments(body: bytes) -> tuple[int, bool] | str:
    """(limit, return_nodes) of a first-page request, or what is wrong with it."""
    try:
        data = orjson.loads(body or b"{}")
    except orjson.JSONDecodeError:
        return "the body is not JSON"
    if not isinstance(data, dict) or set(data) - {"limit", "return_nodes"}:
        return "this floor answers only {limit, return_nodes}"
    limit, nodes = data.get("limit", 10), data.get("return_nodes", False)
    if type(limit) is not int or not 1 <= limit <= 100 or type(nodes) is not bool:
        return "limit must be an integer from 1 to 100, return_nodes a boolean"
    return limit, nodes


async def list_clusters(request: Request) -> Response:
    db: Postgres | Sqlite = request.app.state.db
    scheme, _, secret = request.headers.get("authorization", "").partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not SECRET.fullmatch(secret):
        return _error(401, "authentication required")
    arguments = _arguments(await request.body())
    if isinstance(arguments, str):
        return _error(400, arguments)
    limit, with_nodes = arguments
    now = datetime.now(UTC)
    read = await db.read(hashlib.sha256(secret.encode()).hexdigest(), now, limit, with_nodes)
    if read.token is None:
        return _error(401, "authentication required")
    token_id, permissions, last_used = read.token
    if "Admin" not in db.permissions(permissions):
        return _error(403, "this token lacks the Admin permission")
    used = db.last_used(last_used)
    if used is None or now - used >= TOUCH_EVERY:
        await db.touch(token_id, now)
    return Response(orjson.dumps(_page(db, read, limit, with_nodes)), media_type="application/json")


def build_app(database_url: str) -> Starlette:
    """The floor for `database_url`: `postgresql://...` or `sqlite:///path` (a driver suffix such
    as `+asyncpg` or `+aiosqlite` is ignored, so clusterql's URLs work as they are)."""
    url = urlsplit(database_url)
    backend = url.scheme.split("+")[0]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if backend == "sqlite":
            # sqlite:///relative.db and sqlite:////absolute.db, as SQLAlchemy reads them
            app.state.db = Sqlite(url.path[1:])
            yield
            return
        if backend != "postgresql":
            raise SystemExit(f"not a PostgreSQL or SQLite URL: {database_url}")
        dsn = url._replace(scheme="postgresql").geturl()
        pool = await asyncpg.create_pool(
            dsn,
            min_size=2,
            max_size=10,
            reset=_no_reset,
            server_settings={"application_name": "bench-floor"},
        )
        app.state.db = Postgres(pool)
        try:
            yield
        finally:
            await pool.close()

    return Starlette(
        routes=[
            Route(PATH, list_clusters, methods=["POST"]),
            Route("/healthz", lambda _: PlainTextResponse("ok")),
        ],
        lifespan=lifespan,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        build_app(args.database_url),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
