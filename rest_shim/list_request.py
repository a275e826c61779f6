"""The Get Clusters List body (SPEC §4, §7): a pydantic model that both checks every request and
describes the body in `/openapi.json`, so the document and the checks cannot disagree.

Every check says what to fix in the words of the contract (`limit: must be from 1 to 100, got
0`), not in pydantic's: each field's validator turns any failure of its own into one message
(`_refusing`), and `explain` prefixes it with where it happened. The model validates what
`rest_shim.body` decoded (strictly, so the JSON itself is already checked) in strict mode: no
coercion beyond the tolerances the contract names (`limit` as a string, an integer `next_key`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from models.limits import DEFAULT_PAGE, MAX_FILTER_VALUES, MAX_PAGE, MAX_TEXT
from rest_shim.problems import RestError

OrderBy = Literal[
    "id", "name", "monitored_at", "controller_last_updated", "nodes_count", "failed_nodes_count"
]
Direction = Literal["asc", "desc"]
ControllerStatus = Literal["running", "stopped"]
ORDERS: tuple[str, ...] = get_args(OrderBy)
DIRECTIONS: tuple[str, ...] = get_args(Direction)
CONTROLLER_STATUSES: tuple[str, ...] = get_args(ControllerStatus)
_PROBLEM = "rest_body"  # the type of the errors whose message is ours
# A string `limit` as the vendor's example sends it: at most 10 digits, worth 1 to MAX_PAGE.
# (tests/rest_shim/test_list_body.py checks that it matches exactly the strings worth 1 to MAX_PAGE)
_LIMIT_TEXT = r"^0*(100|[1-9][0-9]?)$"
_MAX_LIMIT_DIGITS = 10
_DECIMAL_ID = r"^(0|[1-9][0-9]*)$"


_SHOWN_CHARS = 80


def _shown(value: Any) -> str:
    """`value` as the caller wrote it, cut short: a message quotes it, not a whole body."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else f"{text[: _SHOWN_CHARS - 5]}...{text[-1]}"


def _problem(text: str) -> PydanticCustomError:
    # The message travels as context, so that braces in a quoted value are not a template.
    return PydanticCustomError(_PROBLEM, "{problem}", {"problem": text})


def _refusing(problem: Callable[[Any], str]) -> WrapValidator:
    """Any failure of the field's own checks becomes `problem(value)`."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError as exc:
            if all(e["type"] == _PROBLEM for e in exc.errors()):
                raise  # a part's own message (a list's item, an object's field) says it best
            raise _problem(problem(value)) from None

    return WrapValidator(validate)


def _limit_problem(value: Any) -> str:
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return f"must be from 1 to {MAX_PAGE}, got {value}"
    return f"must be an integer from 1 to {MAX_PAGE}, got {_shown(value)}"


def _key_problem(value: Any) -> str:
    return f"must be a string (the previous page's next_key), got {_shown(value)}"


def _one_of(allowed: tuple[str, ...]) -> Callable[[Any], str]:
    return lambda value: f"must be one of {', '.join(allowed)}; got {_shown(value)}"


def _values(what: str) -> Callable[[Any], str]:
    def problem(value: Any) -> str:
        if isinstance(value, list) and not value:
            return "is an empty list: give at least one value, or leave the key out"
        if isinstance(value, list) and len(value) > MAX_FILTER_VALUES:
            return f"has {len(value)} values; at most {MAX_FILTER_VALUES}"
        return f"must be a list of {what}, got {_shown(value)}"

    return problem


def _boolean(value: Any) -> str:
    return f"must be true or false, got {_shown(value)}"


def _name_problem(value: Any) -> str:
    if isinstance(value, str):
        return f"must be 1 to {MAX_TEXT} characters, got {len(value)}"
    return f"must be a string, got {_shown(value)}"


def _id_problem(value: Any) -> str:
    return f"must hold cluster ids (numbers or decimal strings), got {_shown(value)}"


def _status_problem(value: Any) -> str:
    return f"{_shown(value)} is not one of {', '.join(CONTROLLER_STATUSES)}"


Limit = Annotated[
    Annotated[int, Field(ge=1, le=MAX_PAGE)]
    | Annotated[str, Field(pattern=_LIMIT_TEXT, max_length=_MAX_LIMIT_DIGITS)],
    _refusing(_limit_problem),
]
# Answers carry ids as JSON numbers and next_key as a string, and the vendor's ids were integers
# in places: a non-negative integer is taken as its decimal string.
PageKey = Annotated[str | Annotated[int, Field(ge=0)] | None, _refusing(_key_problem)]
ClusterId = Annotated[
    Annotated[int, Field(ge=0)] | Annotated[str, Field(pattern=_DECIMAL_ID)],
    _refusing(_id_problem),
]
Status = Annotated[ControllerStatus, _refusing(_status_problem)]


ClusterIds = Annotated[
    Annotated[list[ClusterId], Field(min_length=1, max_length=MAX_FILTER_VALUES)] | None,
    _refusing(_values("cluster ids")),
]
Strings = Annotated[
    Annotated[list[str], Field(min_length=1, max_length=MAX_FILTER_VALUES)] | None,
    _refusing(_values("strings")),
]
Statuses = Annotated[
    Annotated[list[Status], Field(min_length=1, max_length=MAX_FILTER_VALUES)] | None,
    _refusing(_values("statuses")),
]


def _object_or_null(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if value is not None and not isinstance(value, dict):
        raise _problem(f"must be an object, got {_shown(value)}")
    return handler(value)


_KINDS = {type(None): "null", list: "an array", str: "a string", bool: "a boolean"}


class _Body(BaseModel):
    """A JSON object with only the keys it lists: anything else is named in the message."""

    model_config = ConfigDict(strict=True, extra="forbid")
    what: ClassVar[str]  # what an unknown key is called in messages
    kind: ClassVar[str]  # what this object is called in messages

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            got = _KINDS.get(type(value), type(value).__name__)
            raise _problem(f"{cls.kind} must be a JSON object, got {got}")
        unknown = sorted(set(value) - set(cls.model_fields))
        if unknown:
            raise _problem(
                f"unknown {cls.what}(s) {', '.join(map(_shown, unknown))}; "
                f"accepted: {', '.join(cls.model_fields)}"
            )
        return value


class ListFilters(_Body):
    """Conditions on clusters; every condition given must hold. `null` means no condition."""

    what: ClassVar[str] = "filter"
    kind: ClassVar[str] = "filters"

    ids: ClusterIds = Field(
        None, description="Only clusters with one of these ids (numbers or decimal strings)."
    )
    name: Annotated[
        Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] | None, _refusing(_name_problem)
    ] = Field(None, description="The name contains this text, ignoring case (ASCII letters).")
    providers: Strings = Field(
        None, description='The provider is one of these, e.g. `["aws", "gcp"]`.'
    )
    controller_statuses: Statuses = Field(
        None, description="The controller is in one of these states."
    )
    regions: Strings = Field(None, description="The cluster is in at least one of these regions.")
    has_unhealthy_nodes: Annotated[bool | None, _refusing(_boolean)] = Field(
        None,
        description=(
            "`true`: some node failed, failed to install or is disabled; `false`: none is."
        ),
    )
    stale: Annotated[bool | None, _refusing(_boolean)] = Field(
        None,
        description=(
            "`true`: the controller has not reported for longer than `CLUSTERQL_STALE_AFTER`; "
            "`false`: it has."
        ),
    )


class ListClustersBody(_Body):
    """The body of Get Clusters List. An empty body means `{}`; every field is optional."""

    what: ClassVar[str] = "field"
    kind: ClassVar[str] = "the body"

    limit: Limit = Field(
        DEFAULT_PAGE,
        description=(
            f"Clusters per page, 1 to {MAX_PAGE}. A JSON string holding such an integer "
            '(`"50"`, as the vendor\'s own example sends) is taken as that integer.'
        ),
    )
    next_key: PageKey = Field(
        None,
        description=(
            "Where the page starts: the previous page's `pagination.next_key`, unchanged. "
            '`""` or `null` (or no key): the first page. A non-negative JSON integer is taken '
            "as its decimal string. With the default order and no filter it is a cluster id "
            '(`"10"`: a removed cluster\'s id continues after it, an id never assigned is 404); '
            "otherwise an opaque cursor, valid only with the same filters and order."
        ),
        examples=["10"],
    )
    last_key: PageKey = Field(
        None,
        description=(
            "A synonym of `next_key` (the vendor's example uses it); if both are given they "
            "must be equal."
        ),
    )
    return_nodes: Annotated[bool, _refusing(_boolean)] = Field(
        False, description="Each cluster then carries `nodes`: all its nodes, ordered by id."
    )
    filters: Annotated[ListFilters | None, WrapValidator(_object_or_null)] = Field(
        None, description="Only the clusters that meet every condition given."
    )
    order_by: Annotated[OrderBy, _refusing(_one_of(ORDERS))] = Field(
        "id", description="The order of the walk; ties break by id, in the same direction."
    )
    direction: Annotated[Direction, _refusing(_one_of(DIRECTIONS))] = Field(
        "asc", description="`asc` or `desc`."
    )

    @model_validator(mode="after")
    def _one_key(self) -> ListClustersBody:
        keys = {self.page_key(k) for k in ("next_key", "last_key") if k in self.model_fields_set}
        if len(keys) > 1:
            raise _problem("next_key and last_key are synonyms but differ: send one of them")
        return self

    def page_key(self, name: str = "next_key") -> str:
        value = getattr(self, name)
        return "" if value is None else str(value)


@dataclass(slots=True, frozen=True)
class ListRequest:
    """What the body asks for, as the variables of the GraphQL operation."""

    limit: int = DEFAULT_PAGE
    next_key: str | None = None
    return_nodes: bool = False
    filter: dict[str, Any] = field(default_factory=dict)  # GraphQL ClusterFilter variables
    order_by: str = "ID"  # GraphQL enum names
    direction: str = "ASC"


# REST filter key -> GraphQL ClusterFilter field
_GRAPHQL_FILTER = {
    "ids": "ids",
    "name": "name",
    "providers": "providers",
    "controller_statuses": "controllerStatuses",
    "regions": "regions",
    "has_unhealthy_nodes": "hasUnhealthyNodes",
    "stale": "stale",
}


def _graphql_filter(filters: ListFilters | None) -> dict[str, Any]:
    if filters is None:
        return {}
    out: dict[str, Any] = {}
    for name, value in filters:
        if value is None:
            continue
        if name == "ids":
            value = [str(v) for v in value]
        elif name == "controller_statuses":
            value = [v.upper() for v in value]
        out[_GRAPHQL_FILTER[name]] = value
    return out


def _where(loc: tuple[int | str, ...]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)[1:]


def explain(exc: ValidationError) -> str:
    """The first problem of `exc` as one message: where, then what to fix."""
    error = exc.errors(include_url=False)[0]
    where = _where(error["loc"])
    message = error["msg"] if error["type"] == _PROBLEM else f"{error['msg']} ({error['type']})"
    return f"{where}: {message}" if where else message


# The keys of a body `_common` reads, and the values of those that name one of a few.
_COMMON_KEYS = frozenset({"limit", "next_key", "last_key", "return_nodes", "order_by", "direction"})
_ORDER_NAMES = {name: name.upper() for name in ORDERS}
_DIRECTION_NAMES = {name: name.upper() for name in DIRECTIONS}


def _common(body: Any) -> ListRequest | None:
    """The request of a body of the common kind, as the model reads it; None for any other.

    Validating a small body through the model costs about as much, in a whole request, as
    reading it (pydantic's validators are cold by the time the next body comes). The common
    body (`{"limit": 100, "next_key": "10"}`: an integer limit in range, at most one page key,
    a string or null, a boolean `return_nodes`, an order and a direction by their names, no
    filters) needs none of the model's tolerances or messages, so this reads it directly. It
    takes only what the model accepts, and reads it as the model does (a test compares them
    on generated bodies); everything else goes to the model, which says what is wrong.
    """
    if body.__class__ is not dict or not _COMMON_KEYS.issuperset(body):
        return None
    limit = body.get("limit", DEFAULT_PAGE)
    if limit.__class__ is not int or not 1 <= limit <= MAX_PAGE:
        return None
    if "next_key" in body and "last_key" in body:
        return None
    key = body.get("next_key", body.get("last_key"))
    if key is not None and key.__class__ is not str:
        return None
    return_nodes = body.get("return_nodes", False)
    order_by, direction = body.get("order_by", "id"), body.get("direction", "asc")
    if (
        (return_nodes is not True and return_nodes is not False)
        or order_by.__class__ is not str
        or direction.__class__ is not str
        or order_by not in _ORDER_NAMES
        or direction not in _DIRECTION_NAMES
    ):
        return None
    return ListRequest(
        limit=limit,
        next_key=key or None,
        return_nodes=return_nodes,
        order_by=_ORDER_NAMES[order_by],
        direction=_DIRECTION_NAMES[direction],
    )


def parse_list_request(body: Any) -> ListRequest:
    """Check every field of the body; the first problem found is the 400's message. A body of
    the common kind is read directly (`_common`), as the model would read it."""
    common = _common(body)
    if common is not None:
        return common
    try:
        checked = ListClustersBody.model_validate(body)
    except ValidationError as exc:
        raise RestError(400, explain(exc)) from None
    keys = [checked.page_key(k) for k in ("next_key", "last_key") if k in checked.model_fields_set]
    return ListRequest(
        limit=int(checked.limit),
        next_key=next(iter(keys), "") or None,
        return_nodes=checked.return_nodes,
        filter=_graphql_filter(checked.filters),
        order_by=checked.order_by.upper(),
        direction=checked.direction.upper(),
    )
