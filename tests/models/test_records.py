"""`models.records.RowCodec`: how a driver's row becomes an item."""

from __future__ import annotations

import pytest

from models.records import RowCodec


def test_a_row_is_converted_where_its_columns_say_and_nulls_stay_null() -> None:
    codec = RowCodec([None, int, None, str.upper], tuple, ["a", "b", "c", "d"])
    assert codec.decode(("x", "7", None, "low")) == ("x", 7, None, "LOW")
    assert codec.decode(("x", None, 3, None)) == ("x", None, 3, None)


def test_a_row_of_another_length_is_refused() -> None:
    codec = RowCodec([None, int], tuple, ["a", "b"])
    with pytest.raises(ValueError, match="a row of 3 values for 2 columns"):
        codec.decode(("x", "1", "extra"))
    with pytest.raises(ValueError, match="a row of 1 values for 2 columns"):
        codec.decode(("x",))


def test_a_codec_without_conversions_hands_the_row_over_as_it_is() -> None:
    row = ("x", 1)
    assert RowCodec([None, None], lambda r: r, ["a", "b"]).decode(row) is row
