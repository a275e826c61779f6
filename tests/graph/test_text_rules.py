"""The text rules (SPEC §8) at every input that takes text: each field of a report (the cluster's
and a node's), `internalIp` with its IPv6 zone, the filters of both APIs, and DateTime's range,
as a literal and as a variable. A refused report changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from models.limits import MAX_ADDRESS_ZONE, MAX_CLUSTER_NAME, MAX_PROVIDER, MAX_TEXT
from tests.conftest import in_process

REPORT = """
mutation Report($input: ClusterReport!) {
  reportCluster(input: $input) {
    id name provider regions controllerVersion
    nodes { name hostname sensorVersion sensorLastUpdated region architecture internalDns
            internalIp }
  }
}
"""
STORED = """
{ clusters(limit: 100) { totalCount clusters {
    name provider regions controllerVersion
    nodes { name hostname sensorVersion sensorLastUpdated region architecture internalDns
            internalIp } } } }
"""
LIST = "/runtime/api/v1/clusters"

# Every text field of a report: (where it is, its GraphQL name, its longest value, required)
CLUSTER_FIELDS = [
    ("cluster", "name", MAX_CLUSTER_NAME, True),
    ("cluster", "provider", MAX_PROVIDER, True),
    ("regions", "regions[0]", MAX_TEXT, True),
    ("cluster", "controllerVersion", MAX_TEXT, False),
]
NODE_FIELDS = [
    ("node", name, MAX_TEXT, required)
    for name, required in [
        ("name", True),
        ("hostname", True),
        ("sensorVersion", False),
        ("region", False),
        ("architecture", False),
        ("internalDns", False),
    ]
]
FIELDS = CLUSTER_FIELDS + NODE_FIELDS
# A value the rules refuse, and what the message says about it.
_CONTROL = "must not contain control or format characters"
_SPACE = "must not begin or end with whitespace"
REFUSED = [
    ("a\x00b", [_CONTROL, "U+0000"]),
    ("a\x1b[31mb", [_CONTROL, "U+001B"]),
    ("a\r\nb", [_CONTROL, "U+000D"]),
    ("a\x9bb", [_CONTROL, "U+009B"]),  # a C1 control
    ("pay\u202egpj.exe", [_CONTROL, "RIGHT-TO-LEFT OVERRIDE"]),
    ("pr\u200bod", [_CONTROL, "ZERO WIDTH SPACE"]),
    ("\ufeffprod", [_CONTROL, "ZERO WIDTH NO-BREAK SPACE"]),
    ("a\u2028b", [_CONTROL, "LINE SEPARATOR"]),
    ("a\u2029b", [_CONTROL, "PARAGRAPH SEPARATOR"]),
    (" prod", [_SPACE, "U+0020"]),
    ("prod ", [_SPACE, "U+0020"]),
    ("prod\u00a0", [_SPACE, "NO-BREAK SPACE"]),
]


def good_report(**cluster: Any) -> dict[str, Any]:
    node = {
        "name": "node-1",
        "hostname": "node-1.internal",
        "status": "MONITORED",
        "sensorInstalled": True,
        "sensorVersion": "5.4.1",
        "region": "eu-west-1",
        "architecture": "amd64",
        "internalDns": "node-1.eu-west-1.compute.internal",
        "internalIp": "10.0.1.7",
    }
    return {
        "name": "prod-eu",
        "provider": "aws",
        "regions": ["eu-west-1"],
        "controllerVersion": "3.2.0",
        "controllerStatus": "RUNNING",
        "nodes": [node],
        **cluster,
    }


def with_value(where: str, field: str, value: Any) -> dict[str, Any]:
    """The good report with one of its fields set to `value`."""
    state = good_report()
    if where == "cluster":
        state[field] = value
    elif where == "regions":
        state["regions"] = [value]
    else:
        state["nodes"][0][field] = value
    return state


def read_back(answer: dict[str, Any], where: str, field: str) -> Any:
    if where == "cluster":
        return answer[field]
    if where == "regions":
        return answer["regions"][0]
    return answer["nodes"][0][field]


async def post(client: httpx.AsyncClient, query: str, **variables: Any) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query, "variables": variables})
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def stored(admin: httpx.AsyncClient) -> dict[str, Any]:
    result = await post(admin, STORED)
    assert "errors" not in result, result
    page: dict[str, Any] = result["data"]["clusters"]
    return page


@pytest.fixture
async def controller(app: Starlette, controller_secret: str) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(app, controller_secret) as client:
        yield client


@pytest.mark.parametrize(("where", "field", "longest", "required"), FIELDS)
async def test_every_report_text_keeps_every_rule_at_its_boundary_and_a_refusal_changes_nothing(
    controller: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    where: str,
    field: str,
    longest: int,
    required: bool,
) -> None:
    # The longest value is accepted and stored as sent; decomposed text is stored in NFC.
    for sent, kept in [("x" * longest, "x" * longest), ("zu\u0308rich", "z\u00fcrich")]:
        result = await post(controller, REPORT, input=with_value(where, field, sent))
        assert "errors" not in result, (field, result)
        assert read_back(result["data"]["reportCluster"], where, field) == kept
    before = await stored(admin)

    named = f"nodes[0].{field}" if where == "node" else field
    refusals: list[tuple[Any, list[str]]] = [
        ("x" * (longest + 1), [f"{longest + 1} characters long; at most {longest}"]),
        *REFUSED,
    ]
    if required:
        refusals.append(("", ["must not be empty"]))
    for value, words in refusals:
        result = await post(controller, REPORT, input=with_value(where, field, value))
        assert result["data"] is None, (field, value)
        error = result["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith(named), (value, error["message"])
        for word in words:
            assert word in error["message"], (value, error["message"])
    assert await stored(admin) == before  # nothing refused was written, not even in part


@pytest.mark.parametrize(
    "address",
    ["", "10.0.1.7", "fd00::7", "fe80::1%eth0", "fe80::1%" + "z" * MAX_ADDRESS_ZONE],
)
async def test_internal_ip_accepts_addresses_and_bounded_printable_zones_as_sent(
    controller: httpx.AsyncClient, address: str
) -> None:
    result = await post(controller, REPORT, input=with_value("node", "internalIp", address))
    assert "errors" not in result, result
    assert result["data"]["reportCluster"]["nodes"][0]["internalIp"] == address


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("10.0.0.300", ["not an IPv4 or IPv6 address"]),
        ("fe80::1%", ["not an IPv4 or IPv6 address"]),
        ("fe80::1%" + "z" * (MAX_ADDRESS_ZONE + 1), ["zone after %"]),
        ("fe80::1%\x00", ["U+0000"]),
        ("fe80::1%\x1b[2J", ["U+001B"]),
        ("fe80::1%eth0\r\nX-Evil: 1", ["U+000D"]),
        ("fe80::1%a b", ["zone after %"]),
        ("fe80::1%" + "z" * 7_000_000, ["7000008 characters long"]),  # 7 MB, as the attacker sent
    ],
)
async def test_internal_ip_refuses_what_is_no_address_or_has_a_bad_zone_and_changes_nothing(
    controller: httpx.AsyncClient, admin: httpx.AsyncClient, address: str, words: list[str]
) -> None:
    assert "errors" not in await post(controller, REPORT, input=good_report())
    before = await stored(admin)
    result = await post(controller, REPORT, input=with_value("node", "internalIp", address))
    error = result["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("nodes[0].internalIp")
    assert len(error["message"]) < 300
    for word in words:
        assert word in error["message"]
    assert await stored(admin) == before


OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
IN_RANGE = [
    ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
    ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999999Z"),
    ("0001-01-01T00:59:59-00:30", "0001-01-01T01:29:59.000000Z"),
]
LITERAL = """
mutation {
  reportCluster(input: {name: "prod-eu", provider: "aws", regions: [], controllerVersion: "1",
    controllerStatus: RUNNING, nodes: [{name: "n", hostname: "n", status: MONITORED,
    sensorInstalled: true, sensorLastUpdated: "%s"}]}) { nodes { sensorLastUpdated } }
}
"""


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
async def test_an_out_of_range_datetime_is_bad_user_input_as_a_literal_and_as_a_variable(
    controller: httpx.AsyncClient, admin: httpx.AsyncClient, instant: str
) -> None:
    as_variable = await post(
        controller, REPORT, input=with_value("node", "sensorLastUpdated", instant)
    )
    as_literal = await post(controller, LITERAL % instant)
    for result in (as_variable, as_literal):
        assert result["data"] is None
        error = result["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert f"DateTime '{instant}' is out of range" in error["message"]
        assert "0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999Z" in error["message"]
    assert (await stored(admin))["totalCount"] == 0


@pytest.mark.parametrize(("instant", "kept"), IN_RANGE)
async def test_the_extreme_datetimes_in_range_are_stored_as_literal_and_variable(
    controller: httpx.AsyncClient, instant: str, kept: str
) -> None:
    as_variable = await post(
        controller, REPORT, input=with_value("node", "sensorLastUpdated", instant)
    )
    as_literal = await post(controller, LITERAL % instant)
    for result in (as_variable, as_literal):
        assert "errors" not in result, result
        assert result["data"]["reportCluster"]["nodes"][0]["sensorLastUpdated"] == kept


CLUSTERS = "query ($filter: ClusterFilter) { clusters(filter: $filter) { clusters { name } } }"


@pytest.mark.parametrize(
    ("field", "sent", "longest"),
    [
        ("name", lambda v: v, MAX_TEXT),
        ("providers", lambda v: ["aws", v], MAX_PROVIDER),
        ("regions", lambda v: ["eu-west-1", v], MAX_TEXT),
    ],
)
async def test_filter_texts_keep_the_text_rules_in_both_apis(
    admin: httpx.AsyncClient, field: str, sent: Callable[[str], Any], longest: int
) -> None:
    named = "filter name" if field == "name" else f"filter {field}[1]"
    for value, words in [*REFUSED, ("x" * (longest + 1), [f"at most {longest}"])]:
        result = await post(admin, CLUSTERS, filter={field: sent(value)})
        error = result["errors"][0]
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["message"].startswith(named), error
        for word in words:
            assert word in error["message"], error
        response = await admin.post(LIST, json={"filters": {field: sent(value)}})
        assert response.status_code == 400, response.text
        if field == "name" and len(value) > longest:
            # the REST body's own model checks the name's length first, in the REST words
            expected = f"filters.name: must be 1 to {longest} characters, got {len(value)}"
        else:
            expected = error["message"]
        assert response.json() == {"error": expected}
    accepted = await post(admin, CLUSTERS, filter={field: sent("x" * longest)})
    assert accepted["data"]["clusters"]["clusters"] == []


async def test_a_decomposed_filter_name_finds_the_name_stored_in_nfc(
    controller: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    registered = await post(controller, REPORT, input=good_report(name="prod-zu\u0308rich"))
    assert registered["data"]["reportCluster"]["name"] == "prod-z\u00fcrich"
    for text in ("zu\u0308rich", "z\u00fcrich"):
        found = await post(admin, CLUSTERS, filter={"name": text})
        assert found["data"]["clusters"]["clusters"] == [{"name": "prod-z\u00fcrich"}]
