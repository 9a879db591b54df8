"""The counter-based stream against a scalar pure-Python-int implementation of its spec."""

from __future__ import annotations

import math

import numpy as np
import pytest
from gradfast import _validate
from gradfast.reference import _random
from hypothesis import given
from hypothesis import strategies as st
from stream_oracle import M64, s_bits, s_mix64, s_normal, s_uniform

u64 = st.integers(0, M64 - 1)


# -- the integer core ----------------------------------------------------------------------


def test_mix64_is_the_splitmix64_finalizer():
    # splitmix64 seeded with 0 outputs mix64(GOLDEN), mix64(2*GOLDEN), ... (Vigna's reference values)
    g = 0x9E3779B97F4A7C15
    got = _random.mix64(np.array([g, 2 * g % M64, 3 * g % M64], dtype=np.uint64))
    assert [int(v) for v in got] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4, 0x06C45D188009454F]
    assert [s_mix64(g), s_mix64(2 * g % M64)] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]


@pytest.mark.parametrize(
    ("seed", "stream"),
    [(0, 0), (1, 0), (0, 1), (12345, 7), (M64 - 1, M64 - 1), (0xDEADBEEF, 2**63), (2**63 + 5, 3)],
)
def test_bits_match_scalar_spec(seed, stream):
    n = 17
    got = _random.bits(seed, stream, n)
    assert got.dtype == np.uint64
    assert [int(v) for v in got] == [s_bits(seed, stream, i) for i in range(n)]
    assert _random.key(seed, stream) == s_mix64(seed ^ s_mix64((stream + 0x9E3779B97F4A7C15) % M64))


@given(seed=u64, stream=u64, n=st.integers(0, 40), start=st.integers(0, 1000))
def test_bits_hypothesis(seed, stream, n, start):
    got = _random.bits(seed, stream, n, start=start)
    assert [int(v) for v in got] == [s_bits(seed, stream, start + i) for i in range(n)]


def test_large_counter_wraps_like_u64():
    start = M64 - 3  # counters i + 1 run past 2**64 and wrap
    got = _random.bits(9, 4, 5, start=start)
    assert [int(v) for v in got] == [s_bits(9, 4, start + i) for i in range(5)]


# -- floats ------------------------------------------------------------------------------


@pytest.mark.parametrize(("seed", "stream"), [(0, 0), (42, 1), (M64 - 1, 99)])
def test_uniform_matches_scalar_spec_exactly(seed, stream):
    got = _random.uniform(seed, stream, 25)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, [s_uniform(seed, stream, i) for i in range(25)])


@pytest.mark.parametrize(("seed", "stream"), [(0, 0), (42, 1), (M64 - 1, 99)])
def test_normal_matches_scalar_spec(seed, stream):
    got = _random.normal(seed, stream, 25)
    assert got.dtype == np.float64
    # the stream's log and cos are within one ulp of the C library's
    np.testing.assert_allclose(got, [s_normal(seed, stream, i) for i in range(25)], rtol=1e-14, atol=1e-14)


def test_uniform_statistics():
    n = 200_000
    u = _random.uniform(2024, 3, n)
    assert u.min() >= 0.0 and u.max() < 1.0
    # mean 1/2 with sd sqrt(1/12/n); variance 1/12 with sd sqrt((1/80 - 1/144)/n)
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / n)
    assert abs(u.var() - 1 / 12) < 5 * math.sqrt((1 / 80 - 1 / 144) / n)
    # each tenth of [0, 1) holds n/10 draws, binomial sd sqrt(n * 0.1 * 0.9)
    counts = np.bincount((u * 10).astype(int), minlength=10)
    assert np.all(np.abs(counts - n / 10) < 5 * math.sqrt(n * 0.09))


def test_normal_statistics():
    n = 200_000
    z = _random.normal(7, 0, n)
    assert abs(z.mean()) < 5 / math.sqrt(n)
    assert abs(z.std() - 1.0) < 5 * math.sqrt(1 / (2 * n))
    # P(|z| < 1) = erf(1/sqrt(2))
    p = math.erf(1 / math.sqrt(2))
    assert abs(np.mean(np.abs(z) < 1) - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert np.all(np.isfinite(z))


def test_streams_and_seeds_are_distinct_and_reproducible():
    a = _random.uniform(5, 0, 64)
    np.testing.assert_array_equal(a, _random.uniform(5, 0, 64))
    assert not np.array_equal(a, _random.uniform(5, 1, 64))
    assert not np.array_equal(a, _random.uniform(6, 0, 64))
    # prefixes agree: element i depends on i only, not on n
    np.testing.assert_array_equal(_random.uniform(5, 0, 10), a[:10])
    np.testing.assert_array_equal(_random.normal(5, 0, 10), _random.normal(5, 0, 64)[:10])


def test_empty():
    assert _random.uniform(1, 2, 0).shape == (0,)
    assert _random.normal(1, 2, 0).shape == (0,)


# -- seeds -------------------------------------------------------------------------------


def test_resolve_seed():
    assert _validate.resolve_seed(5) == 5
    assert _validate.resolve_seed(np.uint64(M64 - 1)) == M64 - 1
    fresh = {_validate.resolve_seed(None) for _ in range(4)}
    assert all(isinstance(s, int) and 0 <= s < M64 for s in fresh)
    assert len(fresh) == 4


@pytest.mark.parametrize(
    ("seed", "exc", "match"),
    [
        (-1, ValueError, r"myfn: seed must be an int in \[0, 2\*\*64\), got -1"),
        (M64, ValueError, r"myfn: seed must be an int in \[0, 2\*\*64\)"),
        (1.0, TypeError, r"myfn: seed must be an int in \[0, 2\*\*64\) or None, got float"),
        (True, TypeError, r"myfn: seed must be an int .* got bool"),
        ("1", TypeError, r"got str"),
    ],
)
def test_resolve_seed_rejects(seed, exc, match):
    with pytest.raises(exc, match=match):
        _validate.resolve_seed(seed, "myfn")


def test_bad_stream_and_count():
    with pytest.raises(ValueError, match=r"key: stream must be an int in \[0, 2\*\*64\)"):
        _random.uniform(0, -1, 3)
    with pytest.raises(ValueError, match=r"bits: n must be an int in \[0, 2\*\*64\)"):
        _random.bits(0, 0, -2)
