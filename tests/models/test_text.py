"""The text rules (SPEC §8) at their boundaries: `models.text.checked` and `checked_address`."""

from __future__ import annotations

import time
import unicodedata
from pathlib import Path

import pytest

from clusterql.cli.parser import build_parser
from models import tokens
from models.engine import create_engine, read_transaction
from models.errors import InvalidInput
from models.limits import MAX_ADDRESS_ZONE, MAX_TOKEN_NAME
from models.text import checked, checked_address
from models.tokens import Permission
from tests.databases import migrated_database_url

# One of each kind the rules refuse, with what the message must say.
REFUSED_CHARACTERS = [
    ("\x00", "U+0000"),  # NUL
    ("\x1b", "U+001B"),  # ESC
    ("\r", "U+000D"),
    ("\n", "U+000A"),
    ("\t", "U+0009"),
    ("\x7f", "U+007F"),  # DEL
    ("\x85", "U+0085"),  # a C1 control (NEXT LINE)
    ("\x9b", "U+009B"),  # a C1 control (CSI)
    ("\u202e", "RIGHT-TO-LEFT OVERRIDE"),  # bidi override: "abc\u202etxt.exe"
    ("\u2066", "LEFT-TO-RIGHT ISOLATE"),
    ("\u200b", "ZERO WIDTH SPACE"),
    ("\u200d", "ZERO WIDTH JOINER"),
    ("\ufeff", "ZERO WIDTH NO-BREAK SPACE"),  # the byte-order mark
    ("\u00ad", "SOFT HYPHEN"),
    ("\U000e0041", "TAG LATIN CAPITAL LETTER A"),
    ("\u2028", "LINE SEPARATOR"),  # Zl
    ("\u2029", "PARAGRAPH SEPARATOR"),  # Zp
    ("\ud800", "U+D800"),  # a lone surrogate: no database stores it
]


@pytest.mark.parametrize(("char", "named"), REFUSED_CHARACTERS)
def test_control_and_format_characters_are_refused_anywhere_with_the_field_and_the_character(
    char: str, named: str
) -> None:
    for value in (f"ab{char}cd", f"{char}abcd", f"abcd{char}", f"zürich{char}"):
        with pytest.raises(InvalidInput) as refused:
            checked("nodes[3].hostname", value)
        message = str(refused.value)
        assert message.startswith("nodes[3].hostname must not contain control or format")
        assert named in message
        assert f"position {value.index(char)}" in message


@pytest.mark.parametrize("space", [" ", "\u00a0", "\u3000", "\u2003"])
def test_leading_and_trailing_whitespace_is_refused_and_inner_whitespace_kept(space: str) -> None:
    for value in (f"{space}prod", f"prod{space}", f"{space}prod{space}"):
        with pytest.raises(InvalidInput, match="name must not begin or end with whitespace"):
            checked("name", value)
    assert checked("name", f"prod{space}eu") == f"prod{space}eu"


def test_lengths_are_checked_at_their_limit_in_characters_after_normalisation() -> None:
    assert checked("provider", "p" * 64, longest=64) == "p" * 64
    with pytest.raises(InvalidInput, match="provider is 65 characters long; at most 64 allowed"):
        checked("provider", "p" * 65, longest=64)
    assert checked("name", "é" * 253) == "é" * 253  # characters, not bytes
    # 253 characters once composed, 506 as sent (each "é" as e + combining accent): accepted
    assert checked("name", "e\u0301" * 253) == "\u00e9" * 253
    with pytest.raises(InvalidInput, match="254 characters long"):
        checked("name", "e\u0301" * 254)


def test_a_huge_text_is_refused_by_its_length_without_being_scanned() -> None:
    huge = "\u00e9" * 7_000_000  # 7 million non-ASCII characters
    started = time.perf_counter()
    with pytest.raises(InvalidInput, match="7000000 characters long; at most 253"):
        checked("name", huge)
    assert time.perf_counter() - started < 0.05


def test_empty_text_is_refused_only_where_a_value_is_required() -> None:
    with pytest.raises(InvalidInput, match=r"^name must not be empty$"):
        checked("name", "")
    assert checked("sensorVersion", "", required=False) == ""
    with pytest.raises(InvalidInput, match="whitespace"):
        checked("sensorVersion", " ", required=False)


def test_names_are_stored_in_nfc_and_other_scripts_are_welcome() -> None:
    decomposed = "zu\u0308rich"  # as macOS types it
    assert unicodedata.is_normalized("NFD", decomposed)
    assert checked("name", decomposed) == "z\u00fcrich"
    for value in ("集群-東京-1", "кластер", "prod-\U0001f680", "\ue000private-use"):
        assert checked("name", value) == value


ADDRESSES = [
    "10.0.1.7",
    "0.0.0.0",
    "255.255.255.255",
    "fd00::7",
    "::1",
    "::ffff:10.0.1.7",
    "2001:db8:85a3::8a2e:370:7334",
    "fe80::1%eth0",
    "fe80::1%1",
    "fe80::1%" + "z" * MAX_ADDRESS_ZONE,
    "fe80::1%br-0a1b2c.100",
]


@pytest.mark.parametrize("address", ADDRESSES)
def test_addresses_and_ipv6_zones_up_to_their_limit_are_accepted_as_sent(address: str) -> None:
    assert checked_address("nodes[0].internalIp", address) == address


def test_an_empty_address_means_unknown() -> None:
    assert checked_address("nodes[0].internalIp", "") == ""


@pytest.mark.parametrize(
    ("address", "words"),
    [
        ("10.0.0.300", ["is not an IPv4 or IPv6 address", "'10.0.0.300'"]),
        ("ip-10-0-1-7", ["is not an IPv4 or IPv6 address"]),
        ("10.0.0.1%eth0", ["is not an IPv4 or IPv6 address"]),  # IPv4 has no zone
        ("fe80::1%", ["is not an IPv4 or IPv6 address"]),  # an empty zone
        ("fe80::1%eth0%1", ["is not an IPv4 or IPv6 address"]),
        ("fe80::1%" + "z" * (MAX_ADDRESS_ZONE + 1), ["zone after %", "1 to 64 printable ASCII"]),
        ("fe80::1%a b", ["zone after %"]),
        ("fe80::1%zürich", ["zone after %"]),
        ("fe80::1%\x00", ["control or format", "U+0000"]),
        ("fe80::1%\x1b[31m", ["control or format", "U+001B"]),
        ("fe80::1%eth0\r\nSet-Cookie: x", ["control or format", "U+000D"]),
        ("fe80::1%\u202eth0", ["control or format", "RIGHT-TO-LEFT OVERRIDE"]),
        (" 10.0.1.7", ["whitespace"]),
        ("fe80::1%" + "z" * 7_000_000, ["7000008 characters long; at most 253"]),
    ],
)
def test_what_is_not_an_address_or_has_a_bad_zone_is_refused_naming_the_field(
    address: str, words: list[str]
) -> None:
    with pytest.raises(InvalidInput) as refused:
        checked_address("nodes[0].internalIp", address)
    message = str(refused.value)
    assert message.startswith("nodes[0].internalIp")
    for word in words:
        assert word in message
    assert len(message) < 300  # a huge value is not echoed back


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("", ["a token name must not be empty"]),
        (" ci", ["a token name must not begin or end with whitespace"]),
        ("ci\u202eadmin", ["a token name must not contain control", "RIGHT-TO-LEFT OVERRIDE"]),
        ("ci\x1b[2J", ["U+001B"]),
        ("x" * (MAX_TOKEN_NAME + 1), [f"at most {MAX_TOKEN_NAME} allowed"]),
    ],
)
async def test_token_names_keep_the_text_rules_in_the_command_line_and_when_issued(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, words: list[str]
) -> None:
    arguments = ["token", "create", "--name", name, "--permission", "Admin"]
    with pytest.raises(SystemExit) as exited:
        build_parser().parse_args(arguments)
    assert exited.value.code == 2
    said = capsys.readouterr().err
    engine = create_engine(await migrated_database_url(tmp_path))
    try:
        with pytest.raises(InvalidInput) as refused:
            await tokens.issue(engine, name, [Permission.ADMIN])
        for word in words:
            assert word in said
            assert word in str(refused.value)
        async with read_transaction(engine) as conn:
            assert await tokens.list_all(conn) == []
        # the longest name, and a decomposed one (stored in NFC), are accepted
        await tokens.issue(engine, "x" * MAX_TOKEN_NAME, [Permission.ADMIN])
        await tokens.issue(engine, "ci-zu\u0308rich", [Permission.ADMIN])
        async with read_transaction(engine) as conn:
            names = [t.name for t in await tokens.list_all(conn)]
        assert names == ["ci-z\u00fcrich", "x" * MAX_TOKEN_NAME]
    finally:
        await engine.dispose()
