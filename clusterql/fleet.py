"""Plausible clusters, the one generator of them: for `seed`, the deterministic demo fleet of
`serve --demo`, the fake controllers of `simulate`, the tests and the benchmarks.

Names, regions, hostnames, DNS names and addresses follow what each provider really hands out
(EKS nodes are named after their private DNS name, GKE nodes after their node pool, AKS nodes after
their scale set), so that the demo reads like a real estate of clusters.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from models import listing, tokens
from models.bindings import binding, literal
from models.engine import write_transaction
from models.listing import ClusterFilter
from models.records import ClusterState, ControllerStatus, NodeState, NodeStatus
from models.seeding import insert_clusters
from models.tokens import Permission

DEMO_SEED = 20241225
DEMO_SIZE = 48
MAX_DEMO_NODES = 40

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_CONTROLLER_VERSIONS = ("1.31.2", "1.31.2", "1.31.2", "1.31.1", "1.30.4", "1.29.7")
_SENSOR_VERSIONS = ("1.31.2", "1.31.2", "1.31.2", "1.31.1", "1.30.4")

# (name, weight, status weights in `_STATUSES` order): how the nodes of one cluster are doing.
_STATUSES = (
    NodeStatus.MONITORED_WITH_SENSOR,
    NodeStatus.MONITORED,
    NodeStatus.FAILED,
    NodeStatus.INSTALLATION_FAILED,
    NodeStatus.DISABLED,
)
_HEALTH_PROFILES: tuple[tuple[str, float, tuple[float, ...]], ...] = (
    ("healthy", 0.50, (0.92, 0.08, 0.0, 0.0, 0.0)),
    ("agentless", 0.10, (0.15, 0.85, 0.0, 0.0, 0.0)),
    ("degraded", 0.18, (0.70, 0.05, 0.15, 0.04, 0.06)),
    ("rolling-out", 0.12, (0.50, 0.10, 0.04, 0.36, 0.0)),
    ("maintenance", 0.10, (0.60, 0.05, 0.03, 0.0, 0.32)),
)
# How likely a node that changes state moves to each state.
_CHANGE_WEIGHTS = {
    NodeStatus.MONITORED_WITH_SENSOR: 0.5,
    NodeStatus.MONITORED: 0.3,
    NodeStatus.FAILED: 0.1,
    NodeStatus.INSTALLATION_FAILED: 0.05,
    NodeStatus.DISABLED: 0.05,
}
_SENSOR_INSTALLED = frozenset(
    {NodeStatus.MONITORED_WITH_SENSOR, NodeStatus.FAILED, NodeStatus.DISABLED}
)


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """How one node is called and reached."""

    name: str
    hostname: str
    internal_dns: str
    internal_ip: str


@dataclass(frozen=True, slots=True)
class ClusterPlan:
    """Per-cluster choices that every node of the cluster shares."""

    cluster: str
    provider: str
    regions: list[str]
    salt: int  # varies addresses and generated name parts between clusters
    arm_share: float


NamingScheme = Callable[[ClusterPlan, str, int], NodeIdentity]


def _base36(number: int, width: int) -> str:
    digits = []
    for _ in range(width):
        number, digit = divmod(number, 36)
        digits.append(_BASE36[digit])
    return "".join(reversed(digits))


def _private_ip(first: str, salt: int, index: int) -> str:
    """A distinct address per node index (up to 64,000 nodes) inside one cluster's range."""
    return f"{first}.{salt % 250}.{index // 250}.{index % 250 + 4}"


def _aws_node(plan: ClusterPlan, region: str, index: int) -> NodeIdentity:
    ip = _private_ip("10", plan.salt, index)
    domain = "ec2.internal" if region == "us-east-1" else f"{region}.compute.internal"
    dns = f"ip-{ip.replace('.', '-')}.{domain}"
    return NodeIdentity(name=dns, hostname=dns, internal_dns=dns, internal_ip=ip)


def _gcp_node(plan: ClusterPlan, region: str, index: int) -> NodeIdentity:
    pool = _base36(plan.salt * 7919, 8)
    # 7919 is prime to 36**4, so distinct indexes get distinct suffixes.
    name = f"gke-{plan.cluster[:24]}-default-pool-{pool}-{_base36(index * 7919 + plan.salt, 4)}"
    zone = f"{region}-{'abc'[index % 3]}"
    project = f"{plan.cluster.split('-')[0]}-platform-{plan.salt % 1000:03d}"
    ip = f"10.{128 + plan.salt % 32}.{index // 250}.{index % 250 + 2}"
    return NodeIdentity(name, name, f"{name}.{zone}.c.{project}.internal", ip)


def _azure_node(plan: ClusterPlan, region: str, index: int) -> NodeIdentity:
    name = f"aks-nodepool1-{plan.salt % 10**8:08d}-vmss{_base36(index, 6)}"
    dns = f"{name}.{_base36(plan.salt, 6)}.{region[:2]}.internal.cloudapp.net"
    return NodeIdentity(name, name, dns, f"10.224.{index // 250}.{index % 250 + 4}")


def _kubernetes_node(plan: ClusterPlan, region: str, index: int) -> NodeIdentity:
    name = f"k8s-cp-{index + 1:02d}" if index < 3 else f"k8s-worker-{index - 2:02d}"
    dns = f"{name}.{plan.cluster}.{region or 'lab'}.corp.internal"
    ip = f"192.168.{(plan.salt + index // 250) % 256}.{index % 250 + 4}"
    return NodeIdentity(name, name, dns, ip)


def _openshift_node(plan: ClusterPlan, region: str, index: int) -> NodeIdentity:
    name = f"master-{index}" if index < 3 else f"worker-{index - 3}"
    fqdn = f"{name}.{plan.cluster}.ocp.corp.internal"
    return NodeIdentity(name, fqdn, fqdn, _private_ip("10", plan.salt + 100, index))


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    suffix: str  # what platform teams append to cluster names
    regions: tuple[str, ...]
    naming: NamingScheme
    regionless_share: float = 0.0  # self-managed clusters often report no region at all


PROVIDERS: tuple[Provider, ...] = (
    Provider(
        "aws",
        "eks",
        (
            "us-east-1",
            "us-east-2",
            "us-west-2",
            "eu-west-1",
            "eu-central-1",
            "ap-southeast-2",
            "ap-northeast-1",
        ),
        _aws_node,
    ),
    Provider(
        "gcp",
        "gke",
        ("us-central1", "us-east4", "europe-west1", "europe-west4", "asia-southeast1"),
        _gcp_node,
    ),
    Provider(
        "azure",
        "aks",
        ("eastus", "eastus2", "westeurope", "northeurope", "uksouth", "southeastasia"),
        _azure_node,
    ),
    Provider(
        "kubernetes",
        "k8s",
        ("dc-fra1", "dc-ams2", "dc-nyc3", "onprem-lon1"),
        _kubernetes_node,
        regionless_share=0.3,
    ),
    Provider(
        "openshift",
        "ocp",
        ("us-east-1", "eu-central-1", "dc-fra1", "dc-ams2"),
        _openshift_node,
        regionless_share=0.2,
    ),
)
_PROVIDER_WEIGHTS = (0.34, 0.2, 0.2, 0.16, 0.1)

_ENVIRONMENTS = ("prod", "prod", "staging", "dev", "qa", "sandbox")
_WORKLOADS = (
    "payments",
    "checkout",
    "search",
    "catalog",
    "identity",
    "billing",
    "data-platform",
    "ml-training",
    "observability",
    "edge-gateway",
    "web",
    "mobile-api",
    "analytics",
    "ci-runners",
    "batch",
    "streaming",
    "risk",
    "ledger",
    "notifications",
    "inventory",
)


def _plan(rng: random.Random, name: str, provider: Provider) -> ClusterPlan:
    if rng.random() < provider.regionless_share:
        regions: list[str] = []
    else:
        regions = rng.sample(provider.regions, rng.choices((1, 2, 3), (0.75, 0.18, 0.07))[0])
    arm_share = rng.choices((0.0, 0.3, 1.0), (0.7, 0.2, 0.1))[0]
    return ClusterPlan(name, provider.name, regions, rng.randrange(1, 10**9), arm_share)


def _sensor(
    rng: random.Random, status: NodeStatus, now: datetime
) -> tuple[bool, str, datetime | None]:
    """Whether a node in `status` has its sensor installed, its version and its last update."""
    if status not in _SENSOR_INSTALLED:
        return False, "", None
    version = rng.choice(_SENSOR_VERSIONS)
    return True, version, now - timedelta(seconds=rng.randrange(5, 3 * 86400))


def _node(
    rng: random.Random,
    plan: ClusterPlan,
    provider: Provider,
    index: int,
    status: NodeStatus,
    now: datetime,
) -> NodeState:
    region = plan.regions[index % len(plan.regions)] if plan.regions else ""
    who = provider.naming(plan, region, index)
    installed, version, updated = _sensor(rng, status, now)
    return NodeState(
        name=who.name,
        hostname=who.hostname,
        status=status,
        sensor_installed=installed,
        sensor_version=version,
        sensor_last_updated=updated,
        region=region,
        architecture="arm64" if rng.random() < plan.arm_share else "amd64",
        internal_dns=who.internal_dns,
        internal_ip=who.internal_ip,
    )


def changed(rng: random.Random, node: NodeState, now: datetime) -> NodeState:
    """`node` moved to another state, as a real one does now and then (mostly a healthy one)."""
    others = [s for s in _STATUSES if s != node.status]
    status = rng.choices(others, [_CHANGE_WEIGHTS[s] for s in others])[0]
    installed, version, updated = _sensor(rng, status, now)
    return replace(
        node,
        status=status,
        sensor_installed=installed,
        sensor_version=version,
        sensor_last_updated=updated,
    )


def plausible_cluster(
    rng: random.Random, name: str, node_count: int, now: datetime, provider: Provider | None = None
) -> ClusterState:
    """One cluster of `node_count` nodes whose provider, regions and node states `rng` picks."""
    provider = provider or rng.choices(PROVIDERS, _PROVIDER_WEIGHTS)[0]
    plan = _plan(rng, name, provider)
    weights = rng.choices([p[2] for p in _HEALTH_PROFILES], [p[1] for p in _HEALTH_PROFILES])[0]
    statuses = rng.choices(_STATUSES, weights, k=node_count)
    return ClusterState(
        name=name,
        provider=provider.name,
        regions=plan.regions,
        controller_version=rng.choice(_CONTROLLER_VERSIONS),
        controller_status=(
            ControllerStatus.STOPPED if rng.random() < 0.1 else ControllerStatus.RUNNING
        ),
        nodes=[_node(rng, plan, provider, i, s, now) for i, s in enumerate(statuses)],
    )


def _demo_names(rng: random.Random) -> list[tuple[str, Provider]]:
    """DEMO_SIZE distinct names such as `prod-payments-eks`, each with its provider."""
    chosen: dict[str, Provider] = {}
    while len(chosen) < DEMO_SIZE:
        provider = rng.choices(PROVIDERS, _PROVIDER_WEIGHTS)[0]
        name = f"{rng.choice(_ENVIRONMENTS)}-{rng.choice(_WORKLOADS)}-{provider.suffix}"
        chosen.setdefault(name, provider)
    return list(chosen.items())


def demo_fleet(now: datetime) -> list[ClusterState]:
    """The demo fleet: always the same clusters and nodes (only timestamps follow `now`)."""
    rng = random.Random(DEMO_SEED)
    fleet = []
    for position, (name, provider) in enumerate(_demo_names(rng)):
        # One cluster whose controller has registered but not yet reported any node.
        count = 0 if position == 5 else rng.randint(1, MAX_DEMO_NODES)
        fleet.append(plausible_cluster(rng, name, count, now, provider))
    return fleet


def plausible_fleet(
    seed: int | str, names: Iterable[str], now: datetime, nodes: int | tuple[int, int]
) -> Iterator[ClusterState]:
    """One plausible cluster per name, the same ones for the same seed; each with `nodes`
    nodes, or a number from `nodes[0]` to `nodes[1]`."""
    rng = random.Random(seed)
    for name in names:
        count = nodes if isinstance(nodes, int) else rng.randint(*nodes)
        yield plausible_cluster(rng, name, count, now)


def controller_token_name(cluster_name: str) -> str:
    """The name of the demo's Controller token of one cluster (token names are shorter)."""
    return f"demo-controller-{cluster_name}"


async def load_demo(engine: AsyncEngine, now: datetime) -> int:
    """Fill an empty database with the demo fleet; returns how many clusters were added.

    Each cluster is provisioned as the README says: held by a Controller token of its own,
    bound to its name (their secrets are not kept: `clusterql token create` one with the same
    binding to report as that cluster's controller). The emptiness check and the inserts share
    one write transaction, so two processes started together cannot both fill the database.
    """
    async with write_transaction(engine) as conn:
        if await listing.count_matching(conn, ClusterFilter()) > 0:
            return 0
        fleet = demo_fleet(now)
        specs = [
            (controller_token_name(c.name), [Permission.CONTROLLER], binding([literal(c.name)]))
            for c in fleet
        ]
        issued = await tokens.insert_each(conn, specs, now=now)
        await insert_clusters(conn, fleet, now, [token_id for token_id, _ in issued])
    return len(fleet)
