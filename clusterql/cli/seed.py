"""`clusterql seed`: bulk synthetic clusters, in write transactions of `CHUNK` clusters."""

from __future__ import annotations

import argparse
import asyncio
import secrets
import time
from datetime import UTC, datetime
from itertools import islice

from sqlalchemy.exc import IntegrityError

from clusterql.cli.common import CliError, database, progress, settings_from
from clusterql.fleet import plausible_fleet
from models.engine import write_transaction
from models.seeding import insert_clusters

CHUNK = 1_000  # clusters per write transaction: short lock holds, few commits


async def _seed(url: str, run_id: str, clusters: int, nodes_per_cluster: int) -> None:
    names = (f"seed-{run_id}-{n + 1}" for n in range(clusters))
    fleet = plausible_fleet(run_id, names, datetime.now(UTC), nodes_per_cluster)
    async with database(url) as engine:
        with progress() as bar:
            task = bar.add_task("seeding clusters", total=clusters)
            while chunk := list(islice(fleet, CHUNK)):
                try:
                    async with write_transaction(engine) as conn:
                        await insert_clusters(conn, chunk, datetime.now(UTC))
                except IntegrityError:
                    raise CliError(
                        f"a cluster named like seed-{run_id}-* exists already; run seed again"
                    ) from None
                bar.advance(task, len(chunk))


def seed(args: argparse.Namespace) -> int:
    url = settings_from(args).database_url
    run_id = secrets.token_hex(4)
    started = time.perf_counter()
    asyncio.run(_seed(url, run_id, args.clusters, args.nodes_per_cluster))
    elapsed = time.perf_counter() - started
    print(
        f"seeded {args.clusters} clusters with {args.nodes_per_cluster} nodes each "
        f"(names seed-{run_id}-1 to seed-{run_id}-{args.clusters}) in {elapsed:.1f} s"
    )
    return 0
