"""What the product accepts and stores, at most (SPEC §2, §4, §6, §8): the one place for each
limit, read by the columns' widths (`models.tables`) and by the GraphQL and REST checks."""

from datetime import timedelta

MAX_NODES_PER_REPORT = 5000  # the largest cluster Kubernetes supports
MAX_NODES_FIRST = MAX_NODES_PER_REPORT  # `nodes(first:)`: a whole cluster at most
MAX_CLUSTER_NAME = 253
MAX_PROVIDER = 64
MAX_TEXT = 253  # node names, hostnames, DNS names, versions, regions
MAX_REGIONS = 100
MAX_FILTER_VALUES = 1000  # values of one list in a filter
MAX_PAGE = 100  # clusters per page: REST `limit`, GraphQL `limit`, `first` and `last`
DEFAULT_PAGE = 10  # when the caller gives no page size
MAX_TOKEN_NAME = 100
MAX_BINDING_PATTERNS = 1000  # names and glob patterns one Controller token is bound to
# Live clusters one Controller token may hold (SPEC §3): CLUSTERQL_CONTROLLER_MAX_CLUSTERS
CONTROLLER_MAX_CLUSTERS = 100
MAX_ADDRESS_ZONE = 64  # the zone of an IPv6 address (`fe80::1%eth0`): an interface name or index
MAX_SENSOR_VERSIONS = 1000  # `fleetSummary { sensorVersions(first:) }`
# How many providers `fleetSummary { clustersByProvider }` is counted at by the cost limits
# (providers are free text; a fleet has a handful).
COUNTED_PROVIDERS = 1000
# A cluster whose last report is older than this is stale (SPEC §11): CLUSTERQL_STALE_AFTER
DEFAULT_STALE_AFTER = timedelta(minutes=15)
