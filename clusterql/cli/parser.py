"""The command line's arguments: one sub-parser per command, each running its module's function."""

from __future__ import annotations

import argparse
import importlib.metadata
from collections.abc import Callable
from typing import Any

from clusterql.cli import db, seed, serve, simulate, tokens, watch
from models import bindings
from models.errors import InvalidInput
from models.limits import MAX_NODES_PER_REPORT, MAX_TOKEN_NAME
from models.text import checked
from models.tokens import Permission

LOG_LEVELS = ("debug", "info", "warning", "error")


def _bounded(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low or (high is not None and value > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: {bounds}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} must be more than 0")
    return value


def _permission(text: str) -> Permission:
    for permission in Permission:
        if text.lower() == permission.value.lower():
            return permission
    raise argparse.ArgumentTypeError(f"{text!r} is not a permission: use Admin or Controller")


def _token_name(text: str) -> str:
    try:
        return checked("a token name", text, longest=MAX_TOKEN_NAME)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cluster_pattern(text: str) -> str:
    try:
        return bindings.pattern(text)
    except InvalidInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _cluster_flag(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument(
        "--cluster",
        action="append",
        default=[],
        type=_cluster_pattern,
        metavar="NAME_OR_GLOB",
        help=help,
    )


def _database_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help="SQLAlchemy async URL (env CLUSTERQL_DATABASE_URL; "
        "default sqlite+aiosqlite:///./clusterql.db)",
    )


def _add_serve(commands: Any) -> None:
    parser = commands.add_parser("serve", help="create or migrate the database, then serve")
    parser.add_argument("--host", help="address to listen on (env CLUSTERQL_HOST; 127.0.0.1)")
    parser.add_argument("--port", type=_bounded(0, 65535), help="(env CLUSTERQL_PORT; 8000)")
    parser.add_argument(
        "--workers", type=_bounded(1, 64), help="worker processes (env CLUSTERQL_WORKERS; 1)"
    )
    parser.add_argument("--log-level", choices=LOG_LEVELS, help="(env CLUSTERQL_LOG_LEVEL; info)")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="fill an empty database with a demo fleet and print an Admin token and examples",
    )
    parser.add_argument(
        "--migrate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="apply pending schema migrations before serving; --no-migrate refuses to start "
        "while some are pending (env CLUSTERQL_MIGRATE; default: migrate)",
    )
    _database_flag(parser)
    parser.set_defaults(run=serve.serve)


def _add_token(commands: Any) -> None:
    parser = commands.add_parser("token", help="create, list, bind or revoke API tokens")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token and print its secret (only)")
    create.add_argument("--name", required=True, type=_token_name, help="unique token name")
    create.add_argument(
        "--permission",
        required=True,
        action="append",
        type=_permission,
        metavar="Admin|Controller",
        help="a permission of the token (repeat for both)",
    )
    _cluster_flag(
        create,
        "a cluster name or glob pattern ('sim-*') a Controller token may report; repeat for "
        "more (a Controller token needs at least one)",
    )
    create.add_argument(
        "--expires-in-days", type=_bounded(1, 36_500), metavar="N", help="default: never"
    )
    create.set_defaults(run=tokens.create)
    listing = actions.add_parser("list", help="list tokens and their bindings (never secrets)")
    listing.set_defaults(run=tokens.list_)
    bind = actions.add_parser(
        "bind", help="change the cluster names and patterns a Controller token may report"
    )
    bind.add_argument("name", metavar="NAME")
    _cluster_flag(bind, "a cluster name or glob pattern; repeat for more (at least one)")
    bind.add_argument(
        "--add",
        action="store_true",
        help="add these to the token's binding instead of replacing it",
    )
    bind.set_defaults(run=tokens.bind)
    revoke = actions.add_parser("revoke", help="revoke a token: it fails from its next request")
    revoke.add_argument("name", metavar="NAME")
    revoke.set_defaults(run=tokens.revoke)
    for sub in (create, listing, bind, revoke):
        _database_flag(sub)


def _add_seed(commands: Any) -> None:
    parser = commands.add_parser("seed", help="insert bulk synthetic clusters")
    parser.add_argument("--clusters", required=True, type=_bounded(1), metavar="N")
    parser.add_argument(
        "--nodes-per-cluster",
        type=_bounded(0, MAX_NODES_PER_REPORT),
        default=20,
        metavar="M",
        help="default: 20",
    )
    _database_flag(parser)
    parser.set_defaults(run=seed.seed)


def _print_schema(args: argparse.Namespace) -> int:
    from graph.schema import schema  # imported here: only this command needs it

    print(schema.as_str())
    return 0


def _add_simulate(commands: Any) -> None:
    parser = commands.add_parser(
        "simulate", help="fake controllers reporting changing clusters to a running server"
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--token",
        help="the token every fake controller sends: an Admin token, or a Controller token "
        "bound to PREFIX-* (default: one Controller token per controller, bound to its "
        "cluster's name, made in the database of --database-url and revoked at the end)",
    )
    parser.add_argument("--controllers", type=_bounded(1, 10_000), default=10, metavar="K")
    parser.add_argument(
        "--interval", type=_positive_float, default=5.0, metavar="S", help="seconds between reports"
    )
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=None,
        metavar="D",
        help="seconds; default: forever",
    )
    parser.add_argument("--prefix", default="sim", help="cluster names are PREFIX-NNN")
    _database_flag(parser)
    parser.add_argument(
        "--silent",
        type=_bounded(0, 10_000),
        default=0,
        metavar="N",
        help="the first N controllers report once, then go silent (their clusters go stale)",
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="report the demo fleet's clusters (of `serve --demo`) instead of new ones",
    )
    parser.set_defaults(run=simulate.simulate_controllers)


def _add_watch(commands: Any) -> None:
    parser = commands.add_parser(
        "watch", help="print cluster changes as they happen (a subscription to a running server)"
    )
    parser.add_argument("--url", required=True, help="the server, e.g. http://127.0.0.1:8000")
    parser.add_argument("--token", required=True, help="an Admin token")
    parser.add_argument(
        "--filter",
        default=None,
        metavar="JSON",
        help='a ClusterFilter, e.g. \'{"providers": ["aws"]}\'',
    )
    parser.set_defaults(run=watch.watch)


def _add_db(commands: Any) -> None:
    parser = commands.add_parser("db", help="migrate the database schema, copy a database")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply pending schema migrations and list them")
    _database_flag(upgrade)
    upgrade.set_defaults(run=db.upgrade)
    copy = actions.add_parser(
        "copy",
        help="copy every row of a database into a new, empty one (e.g. SQLite to PostgreSQL), "
        "keeping every id",
    )
    copy.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="URL",
        help="the database to copy (read only)",
    )
    copy.add_argument(
        "--to",
        dest="target",
        required=True,
        metavar="URL",
        help="an empty database, migrated first",
    )
    copy.set_defaults(run=db.copy)


def installed_version() -> str:
    """The version of the installed distribution (what pip installed), not of a source tree."""
    try:
        return importlib.metadata.version("clusterql")
    except importlib.metadata.PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clusterql",
        description="Every monitored cluster and the health of its nodes, over GraphQL and REST.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_serve(commands)
    _add_token(commands)
    _add_seed(commands)
    commands.add_parser("schema", help="print the GraphQL schema (SDL)").set_defaults(
        run=_print_schema
    )
    _add_simulate(commands)
    _add_watch(commands)
    _add_db(commands)
    return parser
