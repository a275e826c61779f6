"""What one operation did, noted for whoever watches requests (the composition root's access log
and metrics, `clusterql.access`): graph only notes, it knows nothing of logs or Prometheus.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from graphql import GraphQLError, OperationDefinitionNode

TIMEOUT = "timeout"  # the `limit` of an operation cancelled after its time limit


@dataclass(frozen=True, slots=True)
class Report:
    """One `reportCluster` that ran: applied or not, and how long it took."""

    applied: bool
    seconds: float


@dataclass(slots=True)
class Outcome:
    """The operation's name and type (None: the document had no operation to run), the codes of
    its errors, the cost or time limit that refused it, and the reports it applied or not."""

    name: str | None = None
    type: str | None = None
    codes: list[str] = field(default_factory=list)
    limit: str | None = None
    reports: list[Report] = field(default_factory=list)

    def operation(self, node: OperationDefinitionNode) -> None:
        self.name = node.name.value if node.name else None
        self.type = node.operation.value

    def finished(self, errors: Sequence[GraphQLError] | None, *, timed_out: bool = False) -> None:
        """Note the (coded) errors of the result, and which limit refused it if one did."""
        for error in errors or ():
            extensions = error.extensions or {}
            self.codes.append(str(extensions.get("code")))
            if self.limit is None and "limit" in extensions:
                self.limit = str(extensions["limit"])
        if timed_out:
            self.limit = TIMEOUT

    @contextmanager
    def report(self) -> Iterator[None]:
        """Times one report: applied if the block returns, not applied if it raises."""
        started = time.perf_counter()
        try:
            yield
        except BaseException:
            self.reports.append(Report(False, time.perf_counter() - started))
            raise
        self.reports.append(Report(True, time.perf_counter() - started))
