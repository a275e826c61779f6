"""The one settings class: every option is a `CLUSTERQL_*` environment variable."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from clusterql.live import LiveLimits
from clusterql.rate_limit import Rate, RateLimits
from graph.operation_limits import DEFAULT_LIMITS, OperationLimits
from models.engine import EngineOptions
from models.limits import CONTROLLER_MAX_CLUSTERS, DEFAULT_STALE_AFTER

_ENGINE = EngineOptions()  # the database defaults have one home: the engine's options

_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")


class Settings(BaseSettings):
    """Validated configuration with safe defaults. Tests build their own instances."""

    model_config = SettingsConfigDict(env_prefix="CLUSTERQL_", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./clusterql.db",
        description="SQLAlchemy async URL: sqlite+aiosqlite:///file.db or postgresql+asyncpg://...",
    )
    database_pool_size: int = Field(
        default=_ENGINE.pool_size,
        ge=1,
        le=1000,
        description="PostgreSQL connections each process keeps open (one per concurrent request).",
    )
    database_max_overflow: int = Field(
        default=_ENGINE.max_overflow,
        ge=0,
        le=1000,
        description="PostgreSQL connections a process may open beyond the pool under bursts.",
    )
    database_pool_timeout: float = Field(
        default=_ENGINE.pool_timeout_s,
        gt=0,
        description="Seconds a request waits for a free connection before it gets 503.",
    )
    database_connect_timeout: float = Field(
        default=_ENGINE.connect_timeout_s,
        gt=0,
        description="Seconds to open a PostgreSQL connection before the request gets 503.",
    )
    database_statement_timeout: float = Field(
        default=_ENGINE.statement_timeout_s,
        gt=0,
        description="Seconds a statement may run (PostgreSQL) or wait for the write lock "
        "(SQLite) before the request gets 503.",
    )
    host: str = Field(default="127.0.0.1", description="Address `serve` listens on.")
    port: int = Field(default=8000, ge=0, le=65535, description="Port `serve` listens on.")
    workers: int = Field(default=1, ge=1, le=64, description="Worker processes for `serve`.")
    max_body_bytes: int = Field(
        default=64 * 1024, ge=1024, description="Largest REST request body (413 beyond)."
    )
    max_graphql_body_bytes: int = Field(
        default=8 * 1024 * 1024,
        ge=64 * 1024,
        description="Largest /graphql request body: a 5,000-node report needs a few MiB.",
    )
    log_level: str = Field(default="info", description="debug, info, warning or error.")
    metrics: Literal["admin", "public", "off"] = Field(
        default="admin",
        description="Who may read GET /metrics: `admin` (a token with Admin), `public` (anyone "
        "who reaches the port: for a scraper on a trusted network), or `off` (no /metrics and "
        "nothing counted).",
    )
    graphiql: bool = Field(default=True, description="Serve GraphiQL at GET /graphql.")
    migrate: bool = Field(
        default=True,
        description="Apply pending schema migrations at start; false: refuse to start while "
        "some are pending (`clusterql db upgrade` applies them).",
    )

    stale_after: timedelta = Field(
        default=timedelta(minutes=15),
        description="A cluster whose last accepted report is older than this is stale: seconds "
        "(900) or an ISO 8601 duration (PT15M).",
    )

    # Cost limits of one GraphQL operation (SPEC §6; graph/cost.py says how each is measured).
    graphql_max_tokens: int = Field(
        default=DEFAULT_LIMITS.max_tokens,
        ge=200,
        description="Tokens of a GraphQL document, comments included (the REST operations have "
        "154, GraphiQL's introspection 183); larger inputs go in variables.",
    )
    graphql_max_characters: int = Field(
        default=DEFAULT_LIMITS.max_characters,
        ge=4096,
        description="Characters of a GraphQL document (the REST operations have 1,103).",
    )
    graphql_max_depth: int = Field(
        default=DEFAULT_LIMITS.max_depth,
        ge=5,
        description="Levels of nested fields (data needs at most 5, introspection 15).",
    )
    graphql_max_aliases: int = Field(
        default=DEFAULT_LIMITS.max_aliases,
        ge=15,
        description="Aliases in one operation, counted where fragments are spread (REST: 15).",
    )
    graphql_max_root_fields: int = Field(
        default=DEFAULT_LIMITS.max_root_fields,
        ge=1,
        description="Fields at the root of one operation, counted where fragments are spread.",
    )
    graphql_max_nodes: int = Field(
        default=DEFAULT_LIMITS.max_nodes,
        ge=500_100,
        description="Nodes one operation may return, counted as GitHub does (REST's largest "
        "request, 100 clusters with all their nodes, is 500,100).",
    )
    graphql_timeout: float = Field(
        default=DEFAULT_LIMITS.timeout_s,
        gt=0,
        description="Seconds one GraphQL operation may run before it is cancelled (503).",
    )
    # Rate limits (SPEC §10), per process: token buckets of `rate` requests a second, `burst`
    # at once; a rate of 0 turns that limit off.
    rate_limit_admin: float = Field(
        default=50.0, ge=0, description="Requests a second per token with Admin."
    )
    rate_limit_admin_burst: int = Field(default=100, ge=1, description="Burst per Admin token.")
    rate_limit_controller: float = Field(
        default=100.0, ge=0, description="Requests a second per token with only Controller."
    )
    rate_limit_controller_burst: int = Field(
        default=200, ge=1, description="Burst per Controller token."
    )
    rate_limit_address: float = Field(
        default=2.0,
        ge=0,
        description="Failed authentications a second per client address (before the token is "
        "checked, so guessing tokens is throttled).",
    )
    rate_limit_address_burst: int = Field(
        default=20, ge=1, description="Failed authentications at once per client address."
    )
    rate_limit_keys: int = Field(
        default=10_000,
        ge=100,
        description="Tokens and addresses each limiter remembers (least recently seen dropped).",
    )
    controller_max_clusters: int = Field(
        default=CONTROLLER_MAX_CLUSTERS,
        ge=1,
        description="Live clusters one Controller token may hold (SPEC §3): a controller "
        "reports one cluster, a token bound to a fleet's pattern up to this many.",
    )
    # Connections (SPEC §10), per process: clusterql/connections.py applies them under uvicorn.
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections per process; beyond, a new one is answered 503 and "
        "closed before anything is read.",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=4096,
        le=1024 * 1024,
        description="Bytes of a request's line and headers; beyond, 431 and the connection closes.",
    )
    header_timeout: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="Seconds a request's line and headers may take to arrive, from their first "
        "byte (from the connection's opening for its first request); then it closes.",
    )
    body_timeout: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="Seconds a request's body may take to arrive after its headers (an 8 MiB "
        "report needs 280 KB/s); then the connection closes.",
    )
    keep_alive_timeout: int = Field(
        default=5,
        ge=1,
        le=300,
        description="Seconds an idle keep-alive connection stays open after a response.",
    )
    max_in_flight: int = Field(
        default=64,
        ge=0,
        description="API requests one process serves at once; beyond, 503 at once (0: no bound).",
    )
    # Live updates (SPEC §11), per process.
    subscription_connections_per_token: int = Field(
        default=10, ge=1, description="Websocket connections one token may hold open at once."
    )
    subscriptions_per_token: int = Field(
        default=100, ge=1, description="Subscriptions one token may run at once."
    )
    subscription_queue: int = Field(
        default=100,
        ge=1,
        description="Events waiting for one subscriber; past it the subscriber is too slow and "
        "its connection is closed.",
    )
    subscription_recheck: float = Field(
        default=2.0,
        gt=0,
        le=60,
        description="Seconds between checks that the tokens of open connections are still "
        "live: a revoked token's connections close within about this long.",
    )

    @field_validator("stale_after", mode="before")
    @classmethod
    def _seconds_or_iso_8601(cls, value: Any) -> Any:
        # An environment variable is text: "900" means seconds, as a JSON number would.
        if isinstance(value, str) and _SECONDS.fullmatch(value.strip()):
            return float(value)
        return value

    @field_validator("stale_after")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be a positive duration, e.g. 900 or PT15M")
        return value

    def operation_limits(self) -> OperationLimits:
        return OperationLimits(
            max_tokens=self.graphql_max_tokens,
            max_characters=self.graphql_max_characters,
            max_depth=self.graphql_max_depth,
            max_aliases=self.graphql_max_aliases,
            max_root_fields=self.graphql_max_root_fields,
            max_nodes=self.graphql_max_nodes,
            timeout_s=self.graphql_timeout,
        )

    def rate_limits(self) -> RateLimits:
        return RateLimits(
            admin=Rate(self.rate_limit_admin, self.rate_limit_admin_burst),
            controller=Rate(self.rate_limit_controller, self.rate_limit_controller_burst),
            address=Rate(self.rate_limit_address, self.rate_limit_address_burst),
            keys=self.rate_limit_keys,
        )

    def live_limits(self) -> LiveLimits:
        return LiveLimits(
            connections_per_token=self.subscription_connections_per_token,
            subscriptions_per_token=self.subscriptions_per_token,
            queue=self.subscription_queue,
            recheck_s=self.subscription_recheck,
            stale_after=_stale_after(getattr(self, "stale_after", None)),
        )

    def engine_options(self) -> EngineOptions:
        """The database settings, as the engine takes them."""
        return EngineOptions(
            pool_size=self.database_pool_size,
            max_overflow=self.database_max_overflow,
            pool_timeout_s=self.database_pool_timeout,
            connect_timeout_s=self.database_connect_timeout,
            statement_timeout_s=self.database_statement_timeout,
        )


def _stale_after(value: object) -> timedelta:
    """The staleness threshold, however the setting that holds it is typed (SPEC §11: seconds
    or ISO 8601, 15 minutes by default)."""
    if isinstance(value, timedelta) and value > timedelta(0):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return timedelta(seconds=value)
    return DEFAULT_STALE_AFTER
