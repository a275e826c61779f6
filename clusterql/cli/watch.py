"""`clusterql watch`: print cluster changes as they happen (`clusterql.watch`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from clusterql import watch as watching
from clusterql.cli.common import CliError


def watch(args: argparse.Namespace) -> int:
    try:
        where = None if args.filter is None else json.loads(args.filter)
    except json.JSONDecodeError as exc:
        raise CliError(f"--filter is not JSON: {exc}") from None
    try:
        why = asyncio.run(
            watching.watch(args.url, args.token, where, lambda line: print(line, flush=True))
        )
    except OSError as exc:
        raise CliError(f"cannot connect to {args.url}: {exc}") from None
    print(why, file=sys.stderr)
    return 1
