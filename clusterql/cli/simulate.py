"""`clusterql simulate`: fake controllers reporting to a running server (`clusterql.simulate`).

Without `--token`, it makes one Controller token per fake controller in the server's database
(`--database-url`), bound to that controller's cluster name, and revokes them when it ends.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime

from clusterql import simulate
from clusterql.cli.common import database, settings_from


async def _simulate(args: argparse.Namespace) -> simulate.Stats:
    options = {
        "controllers": args.controllers,
        "interval": args.interval,
        "duration": args.duration,
        "prefix": args.prefix,
        "silent": args.silent,
        "demo": args.demo,
    }
    if args.token is not None:
        return await simulate.run(args.url, args.token, **options)
    names = simulate.fleet_names(args.prefix, args.controllers, demo=args.demo)
    async with database(settings_from(args).database_url, migrate=False) as engine:
        made = await simulate.bound_tokens(engine, names, datetime.now(UTC))
        print(
            f"made {len(names)} Controller tokens, each bound to its cluster's name "
            f"({names[0]}, ...): revoked when the simulation ends",
            file=sys.stderr,
        )
        try:
            return await simulate.run(args.url, made.secrets, **options)
        finally:
            await simulate.revoke_tokens(engine, made.token_names)


def simulate_controllers(args: argparse.Namespace) -> int:
    stats = asyncio.run(_simulate(args))
    latencies = sorted(stats.latencies)
    p50 = f"{latencies[len(latencies) // 2] * 1000:.1f} ms" if latencies else "n/a"
    print(
        f"reports acknowledged {stats.acknowledged}, refused {stats.refused}, "
        f"failed {stats.failed}; median latency {p50}"
    )
    for error in stats.errors[:5]:
        print(f"  {error}", file=sys.stderr)
    return 0 if stats.refused == stats.failed == 0 else 1
