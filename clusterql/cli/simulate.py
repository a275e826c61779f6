"""`clusterql simulate`: fake controllers reporting to a running server (`clusterql.simulate`)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from clusterql import simulate


def simulate_controllers(args: argparse.Namespace) -> int:
    stats = asyncio.run(
        simulate.run(
            args.url,
            args.token,
            controllers=args.controllers,
            interval=args.interval,
            duration=args.duration,
            prefix=args.prefix,
            demo=args.demo,
        )
    )
    latencies = sorted(stats.latencies)
    p50 = f"{latencies[len(latencies) // 2] * 1000:.1f} ms" if latencies else "n/a"
    print(
        f"reports acknowledged {stats.acknowledged}, refused {stats.refused}, "
        f"failed {stats.failed}; median latency {p50}"
    )
    for error in stats.errors[:5]:
        print(f"  {error}", file=sys.stderr)
    return 0 if stats.refused == stats.failed == 0 else 1
