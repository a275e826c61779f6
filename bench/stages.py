"""Where one REST page's time goes, stage by stage, with the caches as cold as `bench.honest`
leaves them: `python -m bench.stages [--nodes] [--quick]`.

In one process (as `bench.inprocess`), on one seeded SQLite database, the floor's page and
clusterql's REST page are called in turn, each after the process slept `--pause-ms` (10) and
copied `--sweep-mb` (32) megabytes: between two requests to one server of `bench.honest`, the
other servers and the client run, and what this process had in the CPU's caches is gone. Each
named function of clusterql's path (`MARKS`) is wrapped to take a timestamp when it is entered
and when it returns (a wrapped call takes 1.3 to 1.7 us more, warm, for its two marks); the
table gives the median gap between consecutive timestamps over the rounds, up to the answer's
last byte, and after it. The floor's median to its answer is given beside clusterql's, as the
reference.

The marks name the product's functions by module and attribute: a renamed one stops this run
(`scripts/bench-quick` runs it), rather than leaving a stage out unseen.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import inspect
import itertools
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.honest import Variant, require
from bench.inprocess import seeded_apps
from bench.measure import load_average
from tests import asgi

# (module, attribute (a dotted path below it), the stage it starts): where each is looked up
# when called. Entered and returned, in the order a REST page reaches them.
MARKS = (
    ("clusterql.edge", "Edge.__call__", "edge"),
    ("clusterql.api_gate", "ApiGate.__call__", "API gate"),
    ("clusterql.api_gate", "caller", "token check"),
    ("models.snapshot", "open_snapshot", "snapshot checkout and BEGIN"),
    ("models.tokens", "find_active", "token read"),
    ("rest_shim.routes", "RestShim.list_clusters", "REST route"),
    ("rest_shim.routes", "read_json", "body"),
    ("rest_shim.routes", "parse_list_request", "list request"),
    ("graph.schema", "admitted", "admission"),
    ("graph.schema", "ClusterqlSchema._execute_admitted", "execution"),
    ("graph.execution", "PlannedExecutor.build", "executor build"),
    ("graphql.execution.executor", "get_variable_values", "variables"),
    ("graphql.execution.executor", "Executor.execute_operation", "operation"),
    ("graph.query", "_domain", "page resolver"),
    ("graph.pagination", "clusters_page", "page"),
    ("models.listing", "page_and_count", "page read"),
    ("graph.loaders", "nodes_of", "nodes read"),
    ("graph.execution", "_from_rows", "rows into dicts"),
    ("graph.page_plan", "_page_data", "page's dicts"),  # a page the plan answers
    ("graph.execution", "PlannedExecutor.build_response", "response"),
    ("rest_shim.routes", "rest_page", "REST reshaping"),
    ("rest_shim.routes", "_json", "answer bytes"),
)
ANSWER = "answer sent"


class Marks:
    """Timestamps of the current request, by wrapped function."""

    def __init__(self) -> None:
        self.taken: list[tuple[str, float]] = []

    def take(self, name: str) -> None:
        self.taken.append((name, time.perf_counter()))

    def wrap(self, function: Callable[..., Any], stage: str) -> Callable[..., Any]:
        take = self.take
        if asyncio.iscoroutinefunction(function):

            @functools.wraps(function)
            async def entered(*args: Any, **kwargs: Any) -> Any:
                take(f"{stage} >")
                try:
                    return await function(*args, **kwargs)
                finally:
                    take(f"{stage} <")

            return entered

        @functools.wraps(function)
        def called(*args: Any, **kwargs: Any) -> Any:
            take(f"{stage} >")
            try:
                return function(*args, **kwargs)
            finally:
                take(f"{stage} <")

        return called

    def install(self) -> None:
        for module_name, attribute, stage in MARKS:
            owner: Any = importlib.import_module(module_name)
            *path, name = attribute.split(".")
            for step in path:
                owner = getattr(owner, step)
            function = inspect.getattr_static(owner, name, None)  # a classmethod as it is
            require(
                callable(function) or isinstance(function, classmethod),
                f"{module_name}.{attribute} is gone: update MARKS",
            )
            if isinstance(function, classmethod):
                wrapped: Any = classmethod(self.wrap(function.__func__, stage))
            else:
                wrapped = self.wrap(function, stage)
            setattr(owner, name, wrapped)


def collapsed(points: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """`points` with each run of one stage entered again as soon as it returned (the nodes of
    each cluster of a page made into dicts) made one: its first entry, its last return."""
    kept: list[tuple[str, float]] = []
    for name, at in points:
        if kept and name.endswith(" >") and kept[-1][0] == name[:-1] + "<":
            kept.pop()  # and this entry: the stage goes on
            continue
        kept.append((name, at))
    return kept


class Sweeper:
    """Copies `megabytes` between two buffers: what the caches held is gone."""

    def __init__(self, megabytes: int) -> None:
        self._source = bytearray(megabytes << 20)
        self._target = bytearray(megabytes << 20)

    def __call__(self) -> None:
        self._target[:] = self._source


async def measure(
    args: argparse.Namespace,
) -> tuple[list[tuple[str, str]], list[list[float]], list[float]]:
    """The consecutive marks of clusterql's page, the gaps between them (microseconds, a list
    per pair, in order), and the floor's times to its answer (milliseconds)."""
    marks = Marks()
    marks.install()
    sweep = Sweeper(args.sweep_mb)
    seeded = seeded_apps(args.clusters, args.nodes, prefix="clusterql-stages-")
    async with seeded as (floor_app, clusterql_app, token):
        apps = {
            "floor": (floor_app, Variant("floor", "sqlite", args.with_nodes)),
            "rest": (clusterql_app, Variant("rest", "sqlite", args.with_nodes)),
        }
        gaps: list[list[float]] = []
        floor: list[float] = []
        sequence: list[str] | None = None
        order = list(apps)
        for round_ in range(args.warmup_rounds + args.rounds):
            random.shuffle(order)
            for system in order:
                app, variant = apps[system]
                # The whole process idle, its loop included: not an await, on purpose.
                time.sleep(args.pause_ms / 1000)  # noqa: ASYNC251
                sweep()
                marks.taken.clear()
                started = time.perf_counter()
                answer = await asgi.post_timed(app, *variant.request(), token)
                require(answer.status == 200, f"{system}: HTTP {answer.status}")
                assert answer.answered_s is not None  # an answer ends with its last body
                assert answer.answered_at is not None
                if round_ < args.warmup_rounds:
                    continue
                if system == "floor":
                    floor.append(answer.answered_s * 1000)
                    continue
                taken = sorted([*marks.taken, (ANSWER, answer.answered_at)],
                               key=lambda mark: mark[1])  # fmt: skip
                points = collapsed([("request", started), *taken])
                names = [name for name, _ in points]
                sequence = sequence or names
                require(names == sequence, f"another path: {sequence}, then {names}")
                pairs = list(itertools.pairwise(points))
                gaps = gaps or [[] for _ in pairs]
                for found, ((_, at), (_, bt)) in zip(gaps, pairs, strict=True):
                    found.append((bt - at) * 1e6)
    require(sequence is not None, "no page was timed")
    assert sequence is not None
    return list(itertools.pairwise(sequence)), gaps, floor


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--with-nodes", action="store_true", help="the page with its nodes")
    parser.add_argument("--clusters", type=int, default=10_000)
    parser.add_argument("--nodes", type=int, default=20, help="nodes per seeded cluster")
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--warmup-rounds", type=int, default=20)
    parser.add_argument("--pause-ms", type=float, default=10.0)
    parser.add_argument("--sweep-mb", type=int, default=32)
    parser.add_argument("--quick", action="store_true", help="a small database, a few rounds")
    args = parser.parse_args()
    if args.quick:
        args.clusters, args.nodes, args.rounds, args.warmup_rounds = 300, 5, 5, 2
        args.pause_ms, args.sweep_mb = 1.0, 1
    return args


def main() -> None:
    args = parse_args()
    started = load_average()
    pairs, gaps, floor = asyncio.run(measure(args))
    print(f"load average (1, 5, 15 min): at the start {started}, at the end {load_average()}")
    page = "with" if args.with_nodes else "without"
    print(f"REST page {page} nodes, {args.rounds} rounds, each after {args.pause_ms:g} ms asleep")
    print(f"and {args.sweep_mb} MB copied; medians of the gaps between marks:\n")
    print("| from | to | median |\n|---|---|---:|")
    to_answer = 0.0
    answered = False
    for (start, end), values in zip(pairs, gaps, strict=True):
        median = statistics.median(values)
        if not answered:
            to_answer += median
        answered = answered or end == ANSWER
        print(f"| {start} | {end} | {median:.0f} us |")
    print(f"\nclusterql to the answer, the sum of its gaps: {to_answer / 1000:.3f} ms;")
    print(f"the floor's page to its answer: {statistics.median(floor):.3f} ms (median)")


if __name__ == "__main__":
    main()
