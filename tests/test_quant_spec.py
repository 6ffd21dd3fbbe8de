"""Format spec: constants against hand tables written from the definitions, parser, validation."""

import pytest

from training.quant.spec import FPFormat, parse_format

# (name, convention, max_normal, min_normal, min_subnormal), by hand from the format definitions
HAND_TABLE = [
    ("e2m1", "finite", 6.0, 1.0, 0.5),
    ("e2m3", "finite", 7.5, 1.0, 0.125),
    ("e3m2", "finite", 28.0, 0.25, 0.0625),
    ("e4m3", "finite", 480.0, 2.0**-6, 2.0**-9),
    ("e4m3", "fn", 448.0, 2.0**-6, 2.0**-9),
    ("e5m2", "finite", 114688.0, 2.0**-14, 2.0**-16),
    ("e5m2", "ieee", 57344.0, 2.0**-14, 2.0**-16),
    ("e3m4", "finite", 31.0, 0.25, 2.0**-6),
    ("e5m10", "ieee", 65504.0, 2.0**-14, 2.0**-24),
    ("e8m7", "ieee", 3.3895313892515355e38, 2.0**-126, 2.0**-133),
    ("e1m2", "finite", 3.5, 2.0, 0.5),
    ("e3m0", "finite", 16.0, 0.25, 0.25),
]


@pytest.mark.parametrize("name,convention,max_normal,min_normal,min_subnormal", HAND_TABLE)
def test_constants_match_hand_table(name, convention, max_normal, min_normal, min_subnormal):
    ebits, mbits = int(name[1]), int(name[3:])
    fmt = FPFormat(ebits, mbits, convention)
    assert fmt.max_normal == max_normal
    assert fmt.min_normal == min_normal
    assert fmt.min_subnormal == min_subnormal
    assert fmt.bias == 2 ** (ebits - 1) - 1


def test_e8_finite_max_beyond_fp32_is_capped():
    fmt = FPFormat(8, 3)
    assert fmt.max_normal == 2.0**128 * 1.875
    assert fmt.max_value == 2.0**127 * 1.875
    assert FPFormat(8, 0).max_value == 2.0**127
    assert FPFormat(8, 7, "fn").max_value == 2.0**127 * (2 - 2.0**-7)
    assert FPFormat(4, 3).max_value == 480.0


def test_special_codes_and_bits():
    assert not FPFormat(4, 3).has_nan and not FPFormat(4, 3).has_inf
    assert FPFormat(4, 3, "fn").has_nan and not FPFormat(4, 3, "fn").has_inf
    assert FPFormat(5, 2, "ieee").has_inf
    assert FPFormat(4, 3).bits == 8
    assert FPFormat(4, 3, subnormals=False).min_subnormal == 2.0**-6


@pytest.mark.parametrize("text,expected", [
    ("e4m3", FPFormat(4, 3)),
    ("E4M3", FPFormat(4, 3)),
    ("e4m3fn", FPFormat(4, 3, "fn")),
    ("e5m2_ieee", FPFormat(5, 2, "ieee")),
    ("fp8_e5m2", FPFormat(5, 2)),
    ("e2m1:sr", FPFormat(2, 1, rounding="stochastic")),
    ("e3m2:away", FPFormat(3, 2, rounding="half_away")),
    ("bf16", FPFormat(8, 7, "ieee")),
    ("fp16", FPFormat(5, 10, "ieee")),
    ("fp4", FPFormat(2, 1)),
    ("e7m10", FPFormat(7, 10)),
])
def test_parse_format(text, expected):
    assert parse_format(text) == expected
    assert parse_format(expected) is expected


@pytest.mark.parametrize("bad", ["e9m2", "e0m3", "e4m23", "int8", "e4m3:fast", "", 3])
def test_parse_format_rejects(bad):
    with pytest.raises(ValueError):
        parse_format(bad)


@pytest.mark.parametrize("kwargs", [
    dict(ebits=0, mbits=2), dict(ebits=9, mbits=2), dict(ebits=4, mbits=-1),
    dict(ebits=4, mbits=23), dict(ebits=4, mbits=3, convention="ocp"),
    dict(ebits=4, mbits=3, rounding="down"), dict(ebits=1, mbits=3, convention="ieee"),
    dict(ebits=1, mbits=0, convention="fn"),
])
def test_invalid_formats_raise(kwargs):
    with pytest.raises(ValueError):
        FPFormat(**kwargs)


def test_names_roundtrip():
    for fmt in [FPFormat(4, 3), FPFormat(4, 3, "fn"), FPFormat(5, 2, "ieee"), FPFormat(1, 0)]:
        assert parse_format(fmt.name) == fmt
