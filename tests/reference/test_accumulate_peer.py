"""The reference ``Accumulate`` against ``optax.MultiSteps`` over optax's Adam (torch's numbers
for ``eps_root=0``), several cycles; the Rust class is held to the reference in
tests/test_accumulate.py."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("optax")

import gradfast.reference as ref  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

SHAPES = {"w": (6, 4), "b": (4,)}


@pytest.mark.parametrize("steps", [1, 3])
def test_matches_optax_multisteps(steps):
    rng = np.random.default_rng(steps)
    p0 = {k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()}
    grads = [{k: rng.standard_normal(s).astype(np.float32) for k, s in SHAPES.items()} for _ in range(4 * steps + 1)]
    opt = optax.MultiSteps(optax.adam(1e-2), every_k_schedule=steps)
    theirs = {k: jnp.asarray(v) for k, v in p0.items()}
    state = opt.init(theirs)
    acc = ref.Accumulate(ref.Adam(1e-2), steps)
    ours = {k: v.copy() for k, v in p0.items()}
    for i, g in enumerate(grads):
        updates, state = opt.update({k: jnp.asarray(v) for k, v in g.items()}, state, theirs)
        theirs = optax.apply_updates(theirs, updates)
        assert acc.update(ours, g) == bool(opt.has_updated(state))
        assert acc.count == int(state.mini_step)
        for k in SHAPES:
            # optax keeps a running mean and fuses differently: float32 rounding apart
            np.testing.assert_allclose(ours[k], np.asarray(theirs[k]), rtol=2e-5, atol=2e-6, err_msg=f"{k}, call {i}")
    assert acc.optimizer.step == len(grads) // steps
    jax.clear_caches()
