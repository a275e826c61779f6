"""What a report may hold (SPEC §2 and §8)."""

MAX_NODES_PER_REPORT = 5000  # the largest cluster Kubernetes supports
MAX_CLUSTER_NAME = 253
MAX_PROVIDER = 64
MAX_TEXT = 253  # node names, hostnames, DNS names, versions, regions
MAX_REGIONS = 100
