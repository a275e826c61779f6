#!/usr/bin/env python3
"""Checks a running clusterql the way its users reach it, over HTTP: the vendor's REST calls,
a GraphQL query, GraphiQL's page with its seven files, and the REST description (/openapi.json)
with its page (/docs) and Swagger UI's two files; every file must come from this server and match
its pinned digest. Standard library only: it runs outside any venv.

    scripts/smoke_check.py http://127.0.0.1:8000 "$ADMIN_TOKEN"

scripts/smoke-wheel and scripts/smoke-clone run it; it prints one line per check and exits 1
if any failed.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ASSETS_MODULE = Path(__file__).resolve().parents[1] / "clusterql" / "vendor_assets.py"
TIMEOUT_S = 30.0
GRAPHQL_QUERY = "{ clusters(limit: 2) { totalCount clusters { id name nodesCount } } }"
REMOTE_URL = re.compile(r"https?://[^\s\"'<>)]+", re.IGNORECASE)
DATA_URI = re.compile(r'"data:[^"]*"')
LINKED = re.compile(r'\b(?:src|href)="([^"]*)"')


class CheckFailed(Exception):
    """What a check saw that it did not expect."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            raise CheckFailed(f"not JSON: {self.body[:200]!r}") from None


@dataclass(slots=True)
class Server:
    url: str
    token: str
    cluster_id: str | None = None
    total_count: int | None = None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        token: bool = True,
    ) -> Answer:
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = "application/json"
        # S310: main() accepts http and https URLs only.
        request = urllib.request.Request(self.url + path, data, sent, method=method)  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:  # noqa: S310
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def ok(self, method: str, path: str, **kwargs: Any) -> Answer:
        answer = self.request(method, path, **kwargs)
        if answer.status != 200:
            raise CheckFailed(f"{method} {path}: HTTP {answer.status}: {answer.body[:300]!r}")
        return answer


def _assets() -> ModuleType:
    """clusterql/vendor_assets.py of this checkout, loaded by path (no venv needed)."""
    name = "_smoke_vendor_assets"
    spec = importlib.util.spec_from_file_location(name, ASSETS_MODULE)
    if spec is None or spec.loader is None:
        raise SystemExit(f"smoke_check: cannot load {ASSETS_MODULE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their class's module up there
    spec.loader.exec_module(module)
    return module


ASSETS = _assets()


def list_clusters(server: Server) -> str:
    # Get Clusters List as the vendor's client sends it.
    body = server.ok("POST", "/runtime/api/v1/clusters", body={"limit": 50}).json()
    clusters = body.get("clusters")
    if not isinstance(clusters, list) or not clusters:
        raise CheckFailed(f"no clusters in {body!r:.300}")
    total = body.get("total_count")
    if len(clusters) > 50 or not isinstance(total, int) or total < len(clusters):
        raise CheckFailed(f"{len(clusters)} clusters for a limit of 50, total_count {total!r}")
    server.cluster_id, server.total_count = str(clusters[0]["id"]), total
    return f"{len(clusters)} of {total} clusters"


def _cluster_id(server: Server) -> str:
    if server.cluster_id is None:
        raise CheckFailed("no cluster id: the list check failed")
    return server.cluster_id


def _one_cluster(answer: Answer, cluster_id: str) -> str:
    cluster = answer.json().get("cluster")
    if not isinstance(cluster, dict) or str(cluster.get("id")) != cluster_id:
        raise CheckFailed(f"not cluster {cluster_id}: {cluster!r:.300}")
    if not isinstance(cluster.get("nodes"), list):
        raise CheckFailed(f"cluster {cluster_id} has no nodes list")
    # What the vendor's own client requires of Get Cluster (SPEC §12): integer ids, and every
    # text field of a node a string (never null).
    texts = ("architecture", "hostname", "internal_dns", "internal_ip", "monitored_at", "name",
             "region", "sensor_last_updated", "sensor_version", "status")  # fmt: skip
    if type(cluster["id"]) is not int:
        raise CheckFailed(f"cluster id {cluster['id']!r} is not a JSON integer")
    for node in cluster["nodes"]:
        if type(node.get("id")) is not int or not all(isinstance(node.get(k), str) for k in texts):
            raise CheckFailed(f"a node the vendor's client would refuse: {node!r:.300}")
    return f"cluster {cluster_id}, {len(cluster['nodes'])} nodes"


def get_cluster_as_the_vendor_client(server: Server) -> str:
    # Its client sends a JSON content type and no body, to the plural path with a slash.
    cluster_id = _cluster_id(server)
    path = f"/runtime/api/v1/clusters/{cluster_id}/"
    answer = server.ok("GET", path, headers={"Content-Type": "application/json"})
    return _one_cluster(answer, cluster_id)


def get_cluster(server: Server) -> str:
    cluster_id = _cluster_id(server)
    return _one_cluster(server.ok("GET", f"/runtime/api/v1/cluster/{cluster_id}"), cluster_id)


def graphql_query(server: Server) -> str:
    body = server.ok("POST", "/graphql", body={"query": GRAPHQL_QUERY}).json()
    if body.get("errors") or not isinstance(body.get("data"), dict):
        raise CheckFailed(f"errors: {body!r:.300}")
    total = body["data"]["clusters"]["totalCount"]
    if server.total_count is not None and total != server.total_count:
        raise CheckFailed(f"totalCount {total}, but REST said {server.total_count}")
    return f"totalCount {total}"


def _local_page(server: Server, path: str, assets: Any) -> str:
    """The HTML page at `path` (no token), which loads exactly `assets`, from this server."""
    answer = server.ok("GET", path, headers={"Accept": "text/html"}, token=False)
    if not answer.headers.get("content-type", "").startswith("text/html"):
        raise CheckFailed(f"content-type {answer.headers.get('content-type')!r}")
    if "frame-ancestors 'none'" not in answer.headers.get("content-security-policy", ""):
        raise CheckFailed("no Content-Security-Policy with frame-ancestors 'none'")
    text = answer.body.decode()
    if "is not installed" in text:
        raise CheckFailed("the page says its files are not installed")
    remote = REMOTE_URL.findall(DATA_URI.sub('""', text))  # data: URIs name XML namespaces
    if remote:
        raise CheckFailed(f"the page names remote URLs: {sorted(set(remote))}")
    linked = set(LINKED.findall(text)) - {""}
    expected = {f"/static/vendor/{a.relative}" for a in assets}
    local = {link for link in linked if not link.startswith("data:")}
    if local != expected:
        raise CheckFailed(f"loads {sorted(local)}, expected {sorted(expected)}")
    return f"loads {len(local)} files from /static/vendor/, no remote URL"


def _files(server: Server, assets: Any) -> str:
    size = 0
    for asset in assets:
        answer = server.ok("GET", f"/static/vendor/{asset.relative}", token=False)
        if ASSETS.sha384(answer.body) != asset.sha384:
            raise CheckFailed(f"{asset.relative}: sha384 {ASSETS.sha384(answer.body)}")
        size += len(answer.body)
    return f"{len(assets)} files, {size:,} bytes, each matching its pinned sha384"


def graphiql_page(server: Server) -> str:
    return _local_page(server, "/graphql", ASSETS.GRAPHIQL)


def graphiql_files(server: Server) -> str:
    return _files(server, ASSETS.GRAPHIQL)


def openapi_document(server: Server) -> str:
    document = server.ok("GET", "/openapi.json", token=False).json()  # public: no token
    if document.get("openapi") != "3.1.0":
        raise CheckFailed(f"openapi {document.get('openapi')!r}, expected 3.1.0")
    paths = document.get("paths", {})
    for path, method in (
        ("/runtime/api/v1/clusters", "post"),
        ("/runtime/api/v1/cluster/{id}", "get"),
        ("/runtime/api/v1/clusters/{id}/", "get"),
    ):
        if method not in paths.get(path, {}):
            raise CheckFailed(f"{method.upper()} {path} is not described")
    scheme = document.get("components", {}).get("securitySchemes", {}).get("bearerAuth", {})
    if scheme.get("scheme") != "bearer":
        raise CheckFailed(f"no bearer security scheme: {scheme!r}")
    return f"OpenAPI 3.1.0, {len(paths)} paths, bearer scheme"


def docs_page(server: Server) -> str:
    return _local_page(server, "/docs", ASSETS.SWAGGER_UI)


def docs_files(server: Server) -> str:
    return _files(server, ASSETS.SWAGGER_UI)


CHECKS: tuple[tuple[str, Callable[[Server], str]], ...] = (
    ("Get Clusters List (POST /runtime/api/v1/clusters)", list_clusters),
    ("Get Cluster (GET /runtime/api/v1/clusters/{id}/)", get_cluster_as_the_vendor_client),
    ("Get Cluster (GET /runtime/api/v1/cluster/{id})", get_cluster),
    ("GraphQL query (POST /graphql)", graphql_query),
    ("GraphiQL page (GET /graphql, text/html)", graphiql_page),
    ("GraphiQL files (GET /static/vendor/...)", graphiql_files),
    ("REST description (GET /openapi.json)", openapi_document),
    ("REST description's page (GET /docs)", docs_page),
    ("/docs files (GET /static/vendor/...)", docs_files),
)


def wait_until_up(server: Server, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            if server.request("GET", "/healthz", token=False).status == 200:
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"smoke_check: {server.url}/healthz did not answer 200 in {seconds} s")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/smoke_check.py", description="Check a running clusterql as its users do."
    )
    parser.add_argument("url", help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("token", help="an Admin token")
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for /healthz")
    args = parser.parse_args(argv)
    if not args.url.startswith(("http://", "https://")):
        parser.error(f"not an http or https URL: {args.url}")
    server = Server(args.url.rstrip("/"), args.token)
    wait_until_up(server, args.wait)
    failed = 0
    for name, check in CHECKS:
        started = time.perf_counter()
        try:
            seen = check(server)
        except (CheckFailed, OSError, KeyError, TypeError, ValueError) as exc:
            failed += 1
            print(f"FAIL {name}: {exc}", flush=True)
        else:
            took = (time.perf_counter() - started) * 1000
            print(f"ok   {name}: {seen} ({took:.0f} ms)", flush=True)
    print(f"smoke_check: {len(CHECKS) - failed} of {len(CHECKS)} checks passed at {server.url}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
