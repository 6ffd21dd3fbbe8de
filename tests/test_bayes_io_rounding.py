"""Rounding of stored float32 draws: round_mantissa against float64 round-half-even on the
grid of each value's binade."""

import numpy as np
import pytest

from bayesfp.bayes.io import STORED_MANTISSA_BITS, round_mantissa


@pytest.mark.parametrize("bits", [STORED_MANTISSA_BITS, 10, 1, 22])
def test_round_mantissa_matches_grid_rounding(bits):
    rng = np.random.default_rng(bits)
    x = np.concatenate([rng.normal(1.3, 0.05, 20000), rng.normal(3.5, 1.0, 20000),
                        -rng.lognormal(2.0, 1.0, 2000), [1.0, 0.75, 2.0 ** -20]])
    x = x.astype(np.float32)
    x = x[x != 0]
    got = round_mantissa(x, bits).astype(np.float64)
    xd = x.astype(np.float64)
    ulp = 2.0 ** (np.floor(np.log2(np.abs(xd))) - bits)
    want = np.round(xd / ulp) * ulp  # numpy rounds half to even
    np.testing.assert_array_equal(got, want)
    assert np.all(np.abs(got - xd) <= np.abs(xd) * 2.0 ** -(bits + 1))


def test_round_mantissa_ties_and_specials():
    # 1 + 2**-16 lies half way between 1 and 1 + 2**-15 at 15 bits: to even (1.0);
    # 1 + 3 * 2**-16 lies half way between 1 + 2**-15 and 1 + 2**-14: to even (1 + 2**-14)
    x = np.array([1 + 2.0 ** -16, 1 + 3 * 2.0 ** -16, 0.0, -0.0, np.inf, -np.inf, np.nan],
                 dtype=np.float32)
    got = round_mantissa(x, 15)
    assert got[0] == 1.0 and got[1] == np.float32(1 + 2.0 ** -14)
    assert got[2] == 0.0 and np.signbit(got[3]) and np.isposinf(got[4])
    assert np.isneginf(got[5]) and np.isnan(got[6]) and got.dtype == np.float32
