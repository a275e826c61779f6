"""The tables. Ids come from AUTOINCREMENT (SQLite) or identity sequences: none is reused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, ForeignKey, Index, Integer, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from models.limits import MAX_CLUSTER_NAME, MAX_PROVIDER, MAX_TEXT, MAX_TOKEN_NAME

_LIVE = text("removed_at IS NULL")
# BIGINT on PostgreSQL; SQLite needs exactly INTEGER for its rowid alias and AUTOINCREMENT.
_ID = BigInteger().with_variant(Integer(), "sqlite")
_JSON = JSON().with_variant(JSONB(), "postgresql")


class UtcDateTime(TypeDecorator[datetime]):
    """UTC instants stored without a zone; aware in Python, naive never leaves this layer."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else _naive_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)

    def bind_processor(self, dialect: Dialect) -> Any:
        # SQLite: SQLAlchemy's text of the instant (`2024-12-31 11:32:10.367653`, as its DATETIME
        # writes it from a mapping of the fields) in one C call, from the aware value
        if dialect.name == "sqlite":
            return _sqlite_text
        return super().bind_processor(dialect)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        # SQLite keeps SQLAlchemy's text (`2024-12-31 11:32:10.367653`): read it as UTC in one
        # C call, rather than a regular expression, a datetime and a second one with a zone.
        if dialect.name == "sqlite":
            return _sqlite_utc
        return super().result_processor(dialect, coltype)


def _naive_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None)


def _sqlite_text(value: datetime | None) -> str | None:
    return None if value is None else _naive_utc(value).isoformat(" ", "microseconds")


def _sqlite_utc(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value + "+00:00")


def _id_column() -> Any:
    return Field(default=None, sa_column=Column(_ID, primary_key=True, autoincrement=True))


class ClusterRow(SQLModel, table=True):
    """A cluster; removal keeps the row as a tombstone (removed_at set, nodes deleted)."""

    __tablename__ = "clusters"
    __table_args__ = (
        # Names are unique among live clusters only: a removed name may register again.
        Index(
            "ux_clusters_live_name",
            "name",
            unique=True,
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        # Covers count(*) of live clusters and the id-ordered walk over them.
        Index("ix_clusters_live_id", "id", sqlite_where=_LIVE, postgresql_where=_LIVE),
        # One per sort order: a keyset page costs the same at any depth, in either direction.
        *(
            Index(
                f"ix_clusters_live_{column}_id",
                column,
                "id",
                sqlite_where=_LIVE,
                postgresql_where=_LIVE,
            )
            for column in (
                "name",
                "monitored_at",
                "controller_last_updated",
                "nodes_count",
                "failed_nodes_count",
            )
        ),
        # Counts the live clusters a token holds (its cap, SPEC §3).
        Index(
            "ix_clusters_live_owner_token_id",
            "owner_token_id",
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        Index(
            "ix_clusters_live_provider_id",
            "provider",
            "id",
            sqlite_where=_LIVE,
            postgresql_where=_LIVE,
        ),
        {"sqlite_autoincrement": True},
    )

    id: int | None = _id_column()
    # Byte order on both databases, so that `order_by: name` means the same everywhere.
    name: str = Field(
        sa_type=String(MAX_CLUSTER_NAME).with_variant(
            String(MAX_CLUSTER_NAME, collation="C"), "postgresql"
        )
    )
    monitored_at: datetime = Field(sa_type=UtcDateTime)
    controller_version: str
    controller_status: str = Field(max_length=16)
    controller_last_updated: datetime = Field(sa_type=UtcDateTime)
    provider: str = Field(max_length=MAX_PROVIDER)
    regions: list[str] = Field(sa_type=_JSON)
    nodes_count: int = 0
    running_nodes_count: int = 0
    failed_nodes_count: int = 0
    failed_to_install_nodes_count: int = 0
    disabled_nodes_count: int = 0
    owner_token_id: int | None = Field(default=None, sa_type=_ID, foreign_key="api_tokens.id")
    removed_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


NODE_SEARCH_INDEXED = ("status", "sensor_installed", "sensor_version", "internal_ip")


class NodeRow(SQLModel, table=True):
    """A node of a cluster; (cluster_id, name) is how reports match nodes."""

    __tablename__ = "nodes"
    __table_args__ = (
        Index("ux_nodes_cluster_id_name", "cluster_id", "name", unique=True),
        # One range scan per cluster gives its nodes already in id order.
        Index("ix_nodes_cluster_id_id", "cluster_id", "id"),
        # Node search (models.node_search): counts by these, and "where is 10.0.1.7" in id order.
        *(Index(f"ix_nodes_{c}_id", c, "id") for c in NODE_SEARCH_INDEXED),
        {"sqlite_autoincrement": True},
    )

    id: int | None = _id_column()
    cluster_id: int = Field(
        sa_column=Column(_ID, ForeignKey("clusters.id", ondelete="CASCADE"), nullable=False)
    )
    monitored_at: datetime = Field(sa_type=UtcDateTime)
    name: str = Field(max_length=MAX_TEXT)
    sensor_installed: bool
    sensor_last_updated: datetime | None = Field(default=None, sa_type=UtcDateTime)
    sensor_version: str = ""
    region: str = ""
    architecture: str = ""
    hostname: str = ""
    internal_dns: str = ""
    internal_ip: str = ""
    status: str = Field(max_length=32)


class TokenRow(SQLModel, table=True):
    """An API token: only the SHA-256 digest of its secret is kept."""

    __tablename__ = "api_tokens"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = _id_column()
    name: str = Field(max_length=MAX_TOKEN_NAME, unique=True)
    permissions: list[str] = Field(sa_type=_JSON)
    secret_digest: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_type=UtcDateTime)
    expires_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    last_used_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    # A Controller token's cluster names and glob patterns (models.bindings); empty otherwise.
    binding: list[str] = Field(
        default_factory=list,
        sa_column=Column(_JSON, nullable=False, server_default=text("'[]'")),
    )


clusters = ClusterRow.__table__  # type: ignore[attr-defined]
nodes = NodeRow.__table__  # type: ignore[attr-defined]
api_tokens = TokenRow.__table__  # type: ignore[attr-defined]
metadata = SQLModel.metadata


class ServiceKeyRow(SQLModel, table=True):
    """A secret the service made for itself (e.g. the key that signs pagination cursors)."""

    __tablename__ = "service_keys"

    name: str = Field(primary_key=True, max_length=64)
    secret: str = Field(max_length=128)  # hex


service_keys = ServiceKeyRow.__table__  # type: ignore[attr-defined]


class FleetCountRow(SQLModel, table=True):
    """How many live clusters of one provider and controller status, or how many of their
    nodes, have one value of one attribute (`models.fleet_counts`), kept in the same
    transactions as the rows it counts."""

    __tablename__ = "fleet_counts"

    provider: str = Field(primary_key=True, max_length=MAX_PROVIDER)
    controller_status: str = Field(primary_key=True, max_length=16)
    kind: str = Field(primary_key=True, max_length=32)
    key: str = Field(primary_key=True, max_length=MAX_TEXT)
    count: int = Field(sa_type=BigInteger)


fleet_counts = FleetCountRow.__table__  # type: ignore[attr-defined]
