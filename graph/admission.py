"""What an operation must pass before any resolver runs: its cost limits, then validation.

`OperationGate` replaces Strawberry's `ParserCache` and `ValidationCache`, which keep up to 256
documents each whatever their size (an 8 MB document stayed resident with its tokens), and
validate before anything bounds the work: graphql-core's OverlappingFieldsCanBeMerged compares
repeated fields pairwise, so 500 copies of `nodes { id }` took 1.4 s to validate. Here, per
document:

1. it is refused unread past its length in characters (graphql-core scans a document for its
   line breaks to locate any error in it, and lexes whitespace one character at a time), then
   parsed with the token limit (the parser stops at the limit, comments counted);
2. its operation is measured (`graph.cost`), once per document, and refused when it exceeds a
   limit: BAD_USER_INPUT errors naming each limit, before validation and before any database
   statement;
3. it is validated once per document, with graphql-core's comparison budget lowered to
   `VALIDATION_BUDGET` (the heaviest legitimate document spends 3 of it).

Documents, measures and validation results are kept together in one LRU bounded both in entries
and in weight (an estimate of the bytes a parsed document holds), so what an attacker sends
cannot stay resident; a document too heavy for the cache is parsed again each time.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import graphql.validation.rules.overlapping_fields_can_be_merged as overlapping
from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    OperationDefinitionNode,
    get_operation_ast,
    specified_rules,
)
from graphql.language.parser import Parser, nested_too_deeply_error
from graphql.validation.validate import ValidationAbortedError
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from graph.cost import (
    Measure,
    introspection_sizes,
    measure,
    refusal,
    refusals,
    too_long,
    too_many_tokens,
)
from graph.operation_limits import DEFAULT_LIMITS, OperationLimits

log = logging.getLogger("clusterql.graph")

# graphql-core's budget for comparing fields while validating (a documented module setting,
# read at each validation): the REST operations spend 3, GraphiQL's introspection 0; 20,000 is
# about 30 ms of the worst document on this hardware, where the default 500,000 was 1.5 s.
VALIDATION_BUDGET = 20_000
overlapping.MAX_COMPLEXITY_BUDGET = VALIDATION_BUDGET

CACHE_ENTRIES = 256
CACHE_WEIGHT = 32 * 1024 * 1024
BYTES_PER_TOKEN = 500  # what a parsed token costs with its AST nodes (measured: 350 to 620)
DEFAULT_RULES = tuple(specified_rules)  # what Strawberry validates with, unless told otherwise


def limits_of(context: Any) -> OperationLimits:
    limits = getattr(context, "limits", None)
    return limits if isinstance(limits, OperationLimits) else DEFAULT_LIMITS


@dataclass(slots=True)
class Prepared:
    """A parsed document, with what was worked out from it so far."""

    document: DocumentNode
    tokens: int
    weight: int
    measures: dict[tuple[GraphQLSchema, str | None], Measure] = field(default_factory=dict)
    validated: dict[tuple[GraphQLSchema, Any], list[GraphQLError]] = field(default_factory=dict)

    def measure(self, schema: GraphQLSchema, operation: OperationDefinitionNode) -> Measure:
        name = operation.name.value if operation.name else None
        found = self.measures.get((schema, name))
        if found is None:
            fragments = {
                d.name.value: d
                for d in self.document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            found = measure(schema, operation, fragments, _sizes(schema))
            self.measures[schema, name] = found
        return found

    def validation(self, schema: GraphQLSchema, rules: Any) -> list[GraphQLError]:
        found = self.validated.get((schema, rules))
        if found is None:
            found = [_budgeted(e) for e in validate_document(schema, self.document, rules)]
            self.validated[schema, rules] = found
        return found


_SIZES: dict[GraphQLSchema, dict[tuple[str, str], int]] = {}


def _sizes(schema: GraphQLSchema) -> dict[tuple[str, str], int]:
    if schema not in _SIZES:
        _SIZES[schema] = introspection_sizes(schema)
    return _SIZES[schema]


def _budgeted(error: GraphQLError) -> GraphQLError:
    """graphql-core's bare "Validation aborted." (its comparison budget ran out), explained."""
    if not isinstance(error, ValidationAbortedError) or error.message != "Validation aborted.":
        return error
    message = (
        f"the operation is too costly to validate: more than {VALIDATION_BUDGET:,} comparisons "
        "of fields (validation: repeat a field with one name in one selection less often)"
    )
    return refusal("validation", message, VALIDATION_BUDGET + 1, VALIDATION_BUDGET)


class DocumentCache:
    """Parsed documents by their text: an LRU bounded in entries and in weight."""

    def __init__(self, entries: int = CACHE_ENTRIES, weight: int = CACHE_WEIGHT) -> None:
        self.entries = entries
        self.max_weight = weight
        self.weight = 0
        self._kept: OrderedDict[str, Prepared] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    def prepared(self, query: str, limits: OperationLimits) -> Prepared:
        """`query` parsed, or a GraphQLError (syntax, too long, or too many tokens)."""
        if len(query) > limits.max_characters:
            # before anything else reads it: lexing, hashing, locating an error in it
            raise too_long(len(query), limits)
        found = self._kept.get(query)
        if found is not None:
            self._kept.move_to_end(query)
            if found.tokens > limits.max_tokens:
                raise too_many_tokens(limits)
            return found
        found = _parse(query, limits)
        self._keep(query, found)
        return found

    def kept(self, query: str, limits: OperationLimits) -> Prepared | None:
        """`query` parsed when it is kept and within `limits`, else None (nothing parsed)."""
        if len(query) > limits.max_characters:
            return None
        found = self._kept.get(query)
        if found is None or found.tokens > limits.max_tokens:
            return None
        self._kept.move_to_end(query)
        return found

    def _keep(self, query: str, prepared: Prepared) -> None:
        if prepared.weight > self.max_weight // 8:
            return  # too heavy to keep: parsed again if it comes back
        self._kept[query] = prepared
        self.weight += prepared.weight
        while len(self._kept) > self.entries or self.weight > self.max_weight:
            _, dropped = self._kept.popitem(last=False)
            self.weight -= dropped.weight


def _parse(query: str, limits: OperationLimits) -> Prepared:
    """`graphql.parse` with the token limit, keeping the parser for its count of tokens."""
    parser = Parser(query, max_tokens=limits.max_tokens)
    try:
        document: DocumentNode | None = parser.parse_document()
    except GraphQLSyntaxError as error:
        if "tokens. Parsing aborted." in error.message:
            raise too_many_tokens(limits) from None
        raise
    except RecursionError:
        document = None  # raised below, outside this block (its frames are let go)
    if document is None:
        raise nested_too_deeply_error(parser)
    tokens = parser.token_count
    return Prepared(document, tokens, tokens * BYTES_PER_TOKEN + len(query))


DOCUMENTS = DocumentCache()


def _note(context_value: Any, operation: OperationDefinitionNode) -> None:
    """Tell the request's outcome (its access line, its metrics) which operation it runs."""
    outcome = getattr(context_value, "outcome", None)
    if outcome is not None:
        outcome.operation(operation)


def admitted(
    schema: GraphQLSchema,
    query: str | None,
    operation_name: str | None,
    variables: dict[str, Any] | None,
    context_value: Any,
) -> tuple[DocumentNode, OperationDefinitionNode] | None:
    """The document and operation of `query` when `OperationGate` would let it through as it
    is: kept parsed, within its limits and valid under Strawberry's default rules. None
    otherwise (not kept yet, too long, no such operation, refused or invalid): then
    Strawberry's own pipeline runs with the gate, which gives the errors."""
    if not isinstance(query, str):
        return None
    limits = limits_of(context_value)
    prepared = DOCUMENTS.kept(query, limits)
    if prepared is None:
        return None
    operation = get_operation_ast(prepared.document, operation_name)
    if operation is None or prepared.validated.get((schema, DEFAULT_RULES)) != []:
        return None
    if refusals(prepared.measure(schema, operation), variables, limits):
        return None
    _note(context_value, operation)
    return prepared.document, operation


class OperationGate(SchemaExtension):
    """Parse (cached, token-limited), check the cost limits, validate (cached)."""

    def __init__(self) -> None:
        self._prepared: Prepared | None = None

    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        assert context.query is not None  # Strawberry refuses an operation without one
        self._prepared = DOCUMENTS.prepared(context.query, limits_of(context.context))
        context.graphql_document = self._prepared.document
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        prepared = self._prepared
        assert prepared is not None
        schema = context.schema._schema
        operation = get_operation_ast(prepared.document, context.operation_name)
        if operation is not None:
            _note(context.context, operation)
            limits = limits_of(context.context)
            errors = refusals(prepared.measure(schema, operation), context.variables, limits)
            if errors:
                log.info(
                    "operation refused by its cost: %s",
                    "; ".join(e.message for e in errors),
                    extra={"request_id": getattr(context.context, "request_id", None)},
                )
                context.pre_execution_errors = errors
                yield
                return
        context.pre_execution_errors = prepared.validation(schema, context.validation_rules)
        yield
