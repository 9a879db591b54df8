"""Shared test settings: hypothesis profiles and per-dtype tolerances.

GRADFAST_HYPOTHESIS_PROFILE=fast (the default, used by CI) or slow (more examples).
"""

import os

import numpy as np
from hypothesis import HealthCheck, settings

settings.register_profile("fast", max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("slow", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("GRADFAST_HYPOTHESIS_PROFILE", "fast"))

#: tolerances for comparing two implementations of the same arithmetic
TOL = {
    np.dtype(np.float32): {"rtol": 2e-5, "atol": 1e-6},
    np.dtype(np.float64): {"rtol": 1e-12, "atol": 1e-14},
}

import gradfast  # noqa: E402
import gradfast.reference  # noqa: E402
import pytest  # noqa: E402

# The threaded paths run from 1 MiB of traffic in the tests (32 MiB by default), so that the
# determinism and GIL tests exercise them on inputs of modest size.
gradfast._core._set_parallel_min_bytes(1 << 20)


def optax_peer():
    """``(jax, jax.numpy, optax)``, the peers LAMB, LARS and AGC are checked against (the
    ``peers`` extra), with jax's float64 switch; or a skip saying what to install."""
    why = 'needs jax and optax: pip install "gradfast[peers]"'
    jax = pytest.importorskip("jax", reason=why)
    optax = pytest.importorskip("optax", reason=why)
    return jax, jax.numpy, optax


#: the two implementations of every name: properties are checked on both
IMPLS = {"gradfast": gradfast, "reference": gradfast.reference}


@pytest.fixture(params=sorted(IMPLS))
def impl(request):
    return IMPLS[request.param]


def assert_bad_hyper_rejected(cls, kwargs, match):
    """``cls(**kwargs)`` raises ValueError matching ``match``, and so does assigning the one bad
    hyper-parameter to a valid instance, which keeps its old value."""
    with pytest.raises(ValueError, match=match):
        cls(**kwargs)
    opt = cls()
    [(name, value)] = kwargs.items()
    old = getattr(opt, name)
    with pytest.raises(ValueError, match=match):
        setattr(opt, name, value)
    assert getattr(opt, name) == old
    return opt, name


def pytest_sessionfinish(session, exitstatus):
    """GRADFAST_NO_SKIP=1 (``make test``, which installs every extra) turns any skip into a failed run."""
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if os.environ.get("GRADFAST_NO_SKIP") == "1" and skipped and exitstatus == pytest.ExitCode.OK:
        reporter.write_line(f"GRADFAST_NO_SKIP=1: {len(skipped)} skipped, and every extra is installed", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
