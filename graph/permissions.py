"""Permission checks, attached to the fields that resolve data (aliases and fragments included)."""

from __future__ import annotations

from typing import Any, ClassVar

from strawberry.permission import BasePermission

from graph.context import Info
from graph.errors import Code
from models.tokens import Permission


class _Requires(BasePermission):
    required: ClassVar[frozenset[Permission]]
    error_extensions: ClassVar[dict[str, Any]] = {"code": Code.FORBIDDEN}  # type: ignore[misc]

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        return any(info.context.principal.may(p) for p in self.required)


class IsAdmin(_Requires):
    """Reading and removing clusters."""

    required = frozenset({Permission.ADMIN})
    message = "this token lacks the Admin permission"


class IsController(_Requires):
    """Reporting clusters (a controller, or an administrator acting as one)."""

    required = frozenset({Permission.CONTROLLER, Permission.ADMIN})
    message = "this token lacks the Controller permission"
