"""The `clusterql` command line (SPEC §9): serve, token, seed, schema, simulate, db, --version.

One module per command (`serve`, `tokens`, `seed`, `db`, `simulate`), the arguments in `parser`,
what they share in `common`. Flags override settings by setting their `CLUSTERQL_*` environment
variable, so that `Settings` stays the one source of configuration, also in the worker processes
uvicorn starts. Mistakes of the user end in one line on stderr and exit code 1 (2 for bad
arguments).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from clusterql.cli.common import CliError
from clusterql.cli.parser import build_parser
from models.errors import DomainError


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
    except (CliError, DomainError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    sys.exit(code)
