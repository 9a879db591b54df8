"""The stream's own ``log`` and ``cos`` (``reference/_libm.py``): within one ulp of the correctly
rounded value (mpmath at 200 bits), correctly rounded nearly always, exact where the value is
known, over their whole domains."""

import math

import mpmath
import numpy as np
import pytest
from gradfast.reference import _libm, _random

mpmath.mp.prec = 200


def correct(f, xs):
    """The correctly rounded float64 values of ``f`` at ``xs``."""
    return np.array([float(f(mpmath.mpf(float(v)))) for v in xs])


def ulps(a, b):
    assert np.array_equal(np.signbit(a), np.signbit(b))
    return np.abs(a.view(np.int64) - b.view(np.int64))


def check(got, want):
    d = ulps(got, want)
    assert d.max() <= 1
    assert np.mean(d == 0) > 0.98


def test_log_over_the_draws_domain_and_its_edges():
    u = _random.uniform(11, 2, 20_000)
    edges = [1.0, 0.5, 2.0**-53, math.sqrt(0.5), np.nextafter(math.sqrt(0.5), 0), np.nextafter(1.0, 0), 0.75, 1e-300]
    x = np.concatenate([1.0 - u, edges, np.linspace(2.0**-53, 1.0, 2001)])
    check(_libm.log(x), correct(mpmath.log, x))


def test_cos_over_the_draws_domain_and_near_its_zeros_and_quadrant_edges():
    u = _random.uniform(12, 3, 20_000)
    k = np.arange(1, 5)
    near = np.concatenate([[np.nextafter(v, 0), v, np.nextafter(v, 8)] for v in k * (math.pi / 2)])
    quadrant_edges = np.concatenate([[np.nextafter(v, 0), v, np.nextafter(v, 8)] for v in k * (math.pi / 4)])
    x = np.concatenate([(2.0 * math.pi) * u, near, quadrant_edges, [0.0, 1e-9, 7.99], np.linspace(0, 7.99, 2001)])
    check(_libm.cos(x), correct(mpmath.cos, x))


@pytest.mark.parametrize(
    ("f", "x", "want"), [(_libm.log, 1.0, 0.0), (_libm.log, 0.5, -math.log(2.0)), (_libm.cos, 0.0, 1.0)]
)
def test_known_values_exactly(f, x, want):
    assert f(np.array([x]))[0] == want


def test_values_do_not_depend_on_the_block_they_are_computed_in():
    z = _random.normal(3, 1, _random._BLOCK + 7)
    np.testing.assert_array_equal(z[-10:], _random.normal(3, 1, _random._BLOCK + 7)[-10:])
    # the element at index i is the same whether the call computes 1 block or 2
    np.testing.assert_array_equal(_random.normal(3, 1, 5), z[:5])
    np.testing.assert_array_equal(_random.normal(3, 1, _random._BLOCK + 1)[-1], z[_random._BLOCK])
