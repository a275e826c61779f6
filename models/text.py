"""The text rules (SPEC §8): what every text the product takes in must be, checked in one place.

Every text field of a report (the cluster's and every node's), every text of a filter and every
token name passes `checked`; a report's `internalIp` passes `checked_address`. A text is refused,
with `InvalidInput` naming the field and saying what to change, when it:

- is longer than its limit (`models.limits`), or empty where a value is required;
- holds a control or format character (Unicode categories Cc, Cf, Zl, Zp: NUL, ESC, CR/LF, the C1
  controls, bidi overrides such as U+202E, zero-width characters) or a lone surrogate (Cs, which
  no database can store);
- begins or ends with whitespace (a name that looks like another's).

Texts are stored in Unicode NFC: a name sent decomposed (as macOS writes "é", e plus a combining
accent) is normalised, not refused, so the same name is one name however it was typed; limits
apply to the normalised text, which is what is stored. Private-use and unassigned code points are
accepted (a newer Unicode assigns them).

Reports carry up to 5,000 nodes of several texts each, so the common case, printable ASCII,
takes one compiled regular expression; only other texts are looked at character by character.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

from models.errors import InvalidInput
from models.limits import MAX_ADDRESS_ZONE, MAX_TEXT

_ASCII_REFUSED = re.compile(r"[\x00-\x1f\x7f]")
_ASCII_KEPT = re.compile(r"[!-~](?:[ -~]*[!-~])?")  # printable ASCII, no space at either end
_NFC_GROWTH = 3  # NFC makes a text at most three times longer (or shorter: decomposed input)
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
# An IPv6 zone (`fe80::1%eth0`) names an interface: printable ASCII without spaces.
_ZONE = re.compile(rf"[!-~]{{1,{MAX_ADDRESS_ZONE}}}")


def _character(text: str, at: int) -> str:
    name = unicodedata.name(text[at], "")
    return f"U+{ord(text[at]):04X}{f' ({name})' if name else ''} at position {at}"


def _refused_at(value: str) -> int | None:
    """Where `value` holds its first control or format character, if it holds one."""
    if value.isascii():
        found = _ASCII_REFUSED.search(value)
        return found.start() if found else None
    for at, char in enumerate(value):
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return at
    return None


def checked(field: str, value: str, *, longest: int = MAX_TEXT, required: bool = True) -> str:
    """`value` in NFC if it keeps the text rules; else `InvalidInput` naming `field`.

    `required`: the empty text is refused (else it is accepted, and means "none")."""
    if len(value) <= longest and _ASCII_KEPT.fullmatch(value):
        return value  # the common case, in one C call; the rest says what is wrong, or normalises
    if not value:
        if required:
            raise InvalidInput(f"{field} must not be empty")
        return value
    if len(value) > _NFC_GROWTH * longest:  # too long however it normalises: not scanned
        raise InvalidInput(f"{field} is {len(value)} characters long; at most {longest} allowed")
    refused = _refused_at(value)
    if refused is not None:
        raise InvalidInput(
            f"{field} must not contain control or format characters (Unicode Cc, Cf, Zl, Zp): "
            f"remove {_character(value, refused)}"
        )
    if not value.isascii() and not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    if value[0].isspace() or value[-1].isspace():
        at = 0 if value[0].isspace() else len(value) - 1
        raise InvalidInput(
            f"{field} must not begin or end with whitespace: remove {_character(value, at)}"
        )
    if len(value) > longest:
        raise InvalidInput(f"{field} is {len(value)} characters long; at most {longest} allowed")
    return value


def checked_address(field: str, value: str) -> str:
    """`value` if it is empty (unknown) or an IPv4 or IPv6 address, the latter with an optional
    zone of printable ASCII (`fe80::1%eth0`); else `InvalidInput` naming `field`.

    Kept as sent (not rewritten to a canonical form), like every other reported text."""
    value = checked(field, value, required=False)
    if not value:
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise InvalidInput(
            f"{field} {value[:64]!r} is not an IPv4 or IPv6 address (e.g. 10.0.1.7 or fd00::7)"
        ) from None
    _, percent, zone = value.partition("%")
    if percent and not _ZONE.fullmatch(zone):
        raise InvalidInput(
            f"{field}: the zone after % must be 1 to {MAX_ADDRESS_ZONE} printable ASCII "
            "characters without spaces, e.g. fe80::1%eth0"
        )
    return value
