"""The ClusterFilter input (SPEC §7) and its checks."""

from __future__ import annotations

from datetime import datetime

import strawberry

from graph.enums import ControllerStatus
from graph.scalars import parse_cluster_id
from models.errors import InvalidInput
from models.limits import MAX_FILTER_VALUES, MAX_PROVIDER, MAX_TEXT
from models.listing import ClusterFilter
from models.text import checked


def checked_values(field: str, values: list[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if not values:
        raise InvalidInput(f"filter {field} is an empty list: give at least one value, or omit it")
    if len(values) > MAX_FILTER_VALUES:
        raise InvalidInput(f"filter {field} has {len(values)} values; at most {MAX_FILTER_VALUES}")
    return tuple(sorted(set(values)))


def checked_texts(field: str, values: list[str] | None, longest: int) -> list[str] | None:
    """`values`, each kept to the text rules (a value no report could store matches nothing)."""
    if values is None or len(values) > MAX_FILTER_VALUES:
        return values  # checked_values says what is wrong with the list
    return [checked(f"filter {field}[{i}]", v, longest=longest) for i, v in enumerate(values)]


@strawberry.input(
    name="ClusterFilter", description="Conditions on clusters; every condition given must hold."
)
class ClusterFilterInput:
    ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="Only these cluster ids."
    )
    name: str | None = strawberry.field(
        default=None, description="Name contains this text, ignoring case."
    )
    providers: list[str] | None = strawberry.field(
        default=None, description='Provider is one of these, e.g. ["aws", "gcp"].'
    )
    controller_statuses: list[ControllerStatus] | None = strawberry.field(
        default=None, description="Controller status is one of these."
    )
    regions: list[str] | None = strawberry.field(
        default=None, description="The cluster is in at least one of these regions."
    )
    has_unhealthy_nodes: bool | None = strawberry.field(
        default=None,
        description=(
            "true: at least one node FAILED, INSTALLATION_FAILED or DISABLED; false: none."
        ),
    )

    stale: bool | None = strawberry.field(
        default=None,
        description=(
            "true: the last accepted report is older than CLUSTERQL_STALE_AFTER (the controller "
            "went silent); false: it is not."
        ),
    )

    def to_domain(self, stale_before: datetime) -> ClusterFilter:
        """The filter, with `stale` judged at `stale_before` (the request's instant)."""
        ids = checked_values("ids", [str(i) for i in self.ids] if self.ids is not None else None)
        parsed_ids = None
        if ids is not None:
            parsed = [parse_cluster_id(i) for i in ids]
            bad = [i for i, p in zip(ids, parsed, strict=True) if p is None]
            if bad:
                raise InvalidInput(f"filter ids: {bad[0]!r} is not a cluster id (a decimal string)")
            parsed_ids = tuple(sorted(p for p in parsed if p is not None))
        name = None if self.name is None else checked("filter name", self.name, longest=MAX_TEXT)
        statuses = self.controller_statuses
        return ClusterFilter(
            ids=parsed_ids,
            name=name,
            providers=checked_values(
                "providers", checked_texts("providers", self.providers, MAX_PROVIDER)
            ),
            controller_statuses=checked_values(
                "controller_statuses", [str(s) for s in statuses] if statuses is not None else None
            ),
            regions=checked_values("regions", checked_texts("regions", self.regions, MAX_TEXT)),
            has_unhealthy_nodes=self.has_unhealthy_nodes,
            stale=self.stale,
            stale_before=stale_before,
        )
