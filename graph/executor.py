"""Which executor runs operations: ours, or Strawberry's stock one when ours cannot be trusted.

`graph.execution` (and the input hook of `graph.inputs`) use internals of Strawberry and
graphql-core that change without notice between their releases. pyproject.toml bounds both to the
band the tests ran on (`TESTED_BANDS`), but an installer can still force another version; then the
product must not fail every operation. So before our executor is used, the installed versions are
checked against the band and the internals it overrides are looked up; if anything is off, the
stock executor answers (slower, the same results) and one warning says why.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping
from functools import cache
from importlib import metadata
from typing import Any

from packaging.version import InvalidVersion, Version

log = logging.getLogger("clusterql.graph")

# distribution -> (lowest tested, first untested): keep in step with pyproject.toml.
TESTED_BANDS: Mapping[str, tuple[str, str]] = {
    "strawberry-graphql": ("0.341.2", "0.342"),
    "graphql-core": ("3.3.2", "3.4"),
}
# graphql-core's executor methods we override, with the parameters we rely on.
_OVERRIDDEN = {
    "execute_field": ("self", "parent_type", "source", "field_details_list", "path"),
}


def _installed(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def version_problem(installed: Callable[[str], str | None] = _installed) -> str | None:
    """Why the installed Strawberry or graphql-core is outside the tested band, or None."""
    for distribution, (lowest, first_untested) in TESTED_BANDS.items():
        found = installed(distribution)
        try:
            ok = found is not None and Version(lowest) <= Version(found) < Version(first_untested)
        except InvalidVersion:
            ok = False
        if not ok:
            return (
                f"{distribution} {found or '(not installed)'} is outside the tested band "
                f">={lowest},<{first_untested}"
            )
    return None


def internals_problem() -> str | None:
    """Why the internals our executor overrides are not what it was written against, or None."""
    try:
        from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
    except ImportError as exc:
        return f"Strawberry's executor class is gone ({exc})"
    for name, expected in _OVERRIDDEN.items():
        method = getattr(StrawberryGraphQLCoreExecutionContext, name, None)
        if method is None:
            return f"graphql-core's executor has no {name}()"
        params = tuple(inspect.signature(method).parameters)
        if params[: len(expected)] != expected:
            return f"graphql-core's {name}() takes {params}, not {expected}"
    return None


def problem() -> str | None:
    """Why our executor must not run here, or None when it may."""
    return version_problem() or internals_problem()


@cache
def executor_class() -> type[Any] | None:
    """Our executor, or None for Strawberry's stock one (with one warning saying why)."""
    why = problem()
    if why is None:
        try:
            from graph.execution import PlannedExecutor
        except Exception as exc:  # a renamed internal that the checks above did not cover
            why = f"graph.execution cannot be imported ({exc!r})"
        else:
            return PlannedExecutor
    log.warning("using Strawberry's stock GraphQL executor (slower, same answers): %s", why)
    return None
