"""gradfast.distributed under mpiexec: results against a single-process computation of the
same sums, bitwise equality across ranks, bfloat16 accuracy, and the mismatch errors."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from types import MappingProxyType

import gradfast
import gradfast.reference
import numpy as np
import pytest
from gradfast import distributed as rust
from gradfast.reference import distributed as ref

IMPLS = {"gradfast": rust, "reference": ref}
#: array sizes: scalars, many small ones (packed into buckets, several buckets), empty ones,
#: and arrays above INPLACE_MIN_BYTES (reduced in place)
SIZES = [1, 0, 7, *[300 + 11 * i for i in range(40)], 70_000, 20_000, 3, 100_000]


@pytest.fixture(params=sorted(IMPLS))
def dist(request):
    return IMPLS[request.param]


def dyadic(rng, shape, dtype):
    """Values k / 256 with |k| < 2**12: every sum of a few of them is exact in float32, so
    MPI's order of addition cannot change a bit and a single-process sum is the oracle."""
    return (rng.integers(-(2**12) + 1, 2**12, size=shape) / 256).astype(dtype)


def grads_of(rank, seed, dtype, *, values=dyadic):
    rng = np.random.default_rng([seed, rank])
    return {f"layer{i:02d}": values(rng, (n,) if i % 3 else (n, 1), dtype) for i, n in enumerate(SIZES)}


def normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def digest(d):
    h = hashlib.sha256()
    for key in sorted(d):
        h.update(key.encode() + np.ascontiguousarray(d[key]).tobytes())
    return h.hexdigest()


def same_everywhere(comm, d):
    return len(set(comm.allgather(digest(d)))) == 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["mean", "sum"])
def test_allreduce_is_the_single_process_sum(comm, dist, dtype, op):
    n, r = comm.size, comm.rank
    everyone = [grads_of(q, 1, dtype) for q in range(n)]
    mine = grads_of(r, 1, dtype)
    assert dist.allreduce_gradients(mine, op=op) is mine
    equal = same_everywhere(comm, mine)
    for key, got in mine.items():
        want = sum(g[key] for g in everyone)
        if op == "mean":
            want = want / dtype(n)
        assert got.dtype == dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want.astype(dtype), err_msg=key)
    assert equal


def test_random_values_agree_bitwise_across_ranks_and_implementations(comm):
    got = {}
    for name, dist in IMPLS.items():
        got[name] = grads_of(comm.rank, 2, np.float32, values=normal)
        dist.allreduce_gradients(got[name])
    equal = same_everywhere(comm, got["gradfast"])
    want = {
        k: sum(grads_of(q, 2, np.float32, values=normal)[k] for q in range(comm.size)) / comm.size
        for k in got["gradfast"]
    }
    for key in want:
        np.testing.assert_array_equal(got["gradfast"][key], got["reference"][key])
        np.testing.assert_allclose(got["gradfast"][key], want[key], rtol=1e-5, atol=1e-6)
    assert equal


def test_keys_may_be_inserted_in_any_order_in_any_mapping(comm, dist):
    mine = grads_of(comm.rank, 3, np.float32)
    if comm.rank % 2:
        mine = dict(reversed(list(mine.items())))
    dist.allreduce_gradients(MappingProxyType(mine) if comm.rank == 0 else OrderedDict(mine), op="sum")
    for key, got in mine.items():
        np.testing.assert_array_equal(got, sum(grads_of(q, 3, np.float32)[key] for q in range(comm.size)))


def test_bf16_rounds_each_value_and_sums_in_float32(comm):
    n = comm.size
    got = {}
    for name, dist in IMPLS.items():
        got[name] = grads_of(comm.rank, 4, np.float32, values=normal)
        dist.allreduce_gradients(got[name], compression="bf16")
    equal = same_everywhere(comm, got["gradfast"])
    everyone = [grads_of(q, 4, np.float32, values=normal) for q in range(n)]
    for key, g in got["gradfast"].items():
        np.testing.assert_array_equal(g, got["reference"][key])
        exact = sum(e[key].astype(np.float64) for e in everyone)
        magnitude = sum(np.abs(e[key].astype(np.float64)) for e in everyone)
        # one rounding of each value and of each of the n - 1 partial sums, 2**-9 each
        assert np.all(np.abs(g * n - exact) <= n * 2.0**-8 * magnitude), key
        if n == 2:
            # two ranks: one float32 sum of two rounded values, rounded once, whichever adds
            rounded = [ref.from_bfloat16(ref.to_bfloat16(e[key])) for e in everyone]
            want = ref.from_bfloat16(ref.to_bfloat16(rounded[0] + rounded[1])) / np.float32(2)
            np.testing.assert_array_equal(g, want)
    assert equal


def test_bf16_float64_and_sum(comm, dist):
    mine = grads_of(comm.rank, 5, np.float64)  # k/256 with |k| < 2**12: not all bfloat16 values
    dist.allreduce_gradients(mine, op="sum", compression="bf16")
    everyone = [grads_of(q, 5, np.float64) for q in range(comm.size)]
    for key, g in mine.items():
        exact = sum(e[key] for e in everyone)
        assert g.dtype == np.float64
        assert np.all(np.abs(g - exact) <= comm.size * 2.0**-8 * sum(np.abs(e[key]) for e in everyone)), key


def test_broadcast_copies_the_roots_values(comm, dist):
    root = comm.size - 1
    mine = grads_of(comm.rank, 6, np.float64)
    assert dist.broadcast_parameters(mine, root=root) is mine
    want = grads_of(root, 6, np.float64)
    equal = same_everywhere(comm, mine)
    for key in want:
        np.testing.assert_array_equal(mine[key], want[key])
    assert equal


def micro_batches(rank, cycle, step):
    rng = np.random.default_rng([7, rank, cycle, step])
    return {
        "W": dyadic(rng, (40, 30), np.float32),
        "b": dyadic(rng, (30,), np.float32),
        "big": dyadic(rng, (20_000,), np.float32),
    }


def run_data_parallel(comm, dist, opt, compression, steps=3, cycles=2):
    params = micro_batches(99, 0, 0)
    dp = dist.DataParallel(opt, accumulation_steps=steps, compression=compression)
    returned = [dp.update(params, micro_batches(comm.rank, c, s)) for c in range(cycles) for s in range(steps)]
    return params, returned, dp


def single_process_averages(n, steps=3, cycles=2):
    """Per cycle: each rank's micro-batch sum, in DataParallel's order, summed over ranks
    (exact: dyadic values), divided by steps * ranks."""
    for c in range(cycles):
        local = [
            {k: sum(micro_batches(q, c, s)[k] for s in range(steps)) for k in micro_batches(0, 0, 0)} for q in range(n)
        ]
        yield {k: sum(loc[k] for loc in local) / np.float32(steps * n) for k in local[0]}, local


def test_data_parallel_takes_the_single_process_steps(comm, dist):
    impl = gradfast if dist is rust else gradfast.reference
    opt = impl.Adam(learning_rate=1e-2)
    params, returned, dp = run_data_parallel(comm, dist, opt, None)
    equal = same_everywhere(comm, params)
    state = opt.state_dict()
    state_equal = same_everywhere(comm, {k: v for k, v in state["state"]["W"].items() if isinstance(v, np.ndarray)})

    single, single_opt = micro_batches(99, 0, 0), impl.Adam(learning_rate=1e-2)
    for avg, _ in single_process_averages(comm.size):
        single_opt.update(single, avg)
    assert returned == [False, False, True] * 2
    assert dp.state_dict()["step"] == state["step"] == 2
    for key in single:
        np.testing.assert_array_equal(params[key], single[key], err_msg=key)
    assert equal and state_equal


def test_data_parallel_bf16_is_within_bfloat16_accuracy(comm, dist):
    # plain gradient descent (lr 1, no momentum): params move by exactly the averaged gradients
    params, returned, _ = run_data_parallel(comm, dist, gradfast.reference.MomentumOptimizer(1.0, 0.0), "bf16")
    equal = same_everywhere(comm, params)
    n = comm.size
    want, bound = micro_batches(99, 0, 0), {}
    for avg, local in single_process_averages(n):
        for k in want:
            want[k] = want[k] - avg[k]
            # one bfloat16 rounding of each rank's sum and of each of the n - 1 partial sums
            bound[k] = bound.get(k, 0) + n * 2.0**-8 * sum(np.abs(loc[k]) for loc in local) / (3 * n) + 1e-5
    assert returned == [False, False, True] * 2
    for k in want:
        assert np.all(np.abs(params[k] - want[k]) <= bound[k]), k
    assert equal


def rank_dependent(comm, fn):
    """Runs ``fn(rank)`` and returns the exception it raised (or None)."""
    try:
        fn(comm.rank)
    except Exception as e:  # noqa: BLE001 - returned to be checked
        return e
    return None


MISMATCHES = {
    "shape": (
        lambda r, g: g.update(w=np.zeros(4 + (r == 1), np.float32)),
        r"gradients\['w'\] must have the same shape and dtype on every rank, "
        r"got shape \(4,\) float32 on rank 0 and shape \(5,\) float32 on rank 1",
    ),
    "dtype": (
        lambda r, g: g.update({k: v.astype(np.float64 if r == 1 else np.float32) for k, v in g.items()}),
        r"gradients\['b'\] must have the same shape and dtype.*float64 on rank 1",
    ),
    "missing": (
        lambda r, g: g.pop("b") if r == 1 else None,
        r"gradients\['b'\] must be present on every rank, got it on rank 0 and not on rank 1",
    ),
    "extra": (
        lambda r, g: g.update(c=np.zeros(2, np.float32)) if r == 1 else None,
        r"gradients\['c'\] must be present on every rank, got it on rank 1 and not on rank 0",
    ),
}


@pytest.mark.parametrize("case", sorted(MISMATCHES))
def test_mismatches_raise_on_every_rank_naming_the_key(comm, dist, case):
    change, match = MISMATCHES[case]
    g = {"w": np.ones(4, np.float32), "b": np.full((2, 2), 2, np.float32)}
    change(comm.rank, g)
    before = {k: v.copy() for k, v in g.items()}
    err = rank_dependent(comm, lambda r: dist.allreduce_gradients(g))
    after_ok = {"x": np.full(3, float(comm.rank), np.float32)}
    dist.allreduce_gradients(after_ok, op="sum")  # the communicator is still usable
    assert isinstance(err, ValueError) and err.__class__ is ValueError, err
    assert re.search(match, str(err)), str(err)
    for k in before:
        np.testing.assert_array_equal(g[k], before[k])
    np.testing.assert_array_equal(after_ok["x"], np.full(3, sum(range(comm.size)), np.float32))


def test_settings_and_calls_that_differ_raise_everywhere(comm, dist):
    g = {"w": np.ones(3, np.float32)}
    errors = [
        rank_dependent(comm, lambda r: dist.allreduce_gradients(g, op="mean" if r == 0 else "sum")),
        rank_dependent(comm, lambda r: dist.allreduce_gradients(g, compression=None if r == 0 else "bf16")),
        rank_dependent(comm, lambda r: dist.broadcast_parameters(g, root=0 if r == 0 else 1)),
        rank_dependent(comm, lambda r: dist.broadcast_parameters(g) if r == 0 else dist.allreduce_gradients(g)),
        rank_dependent(comm, lambda r: dist.DataParallel(gradfast.Adam(), accumulation_steps=1 + (r == 1))),
    ]
    np.testing.assert_array_equal(g["w"], np.ones(3, np.float32))
    matches = [
        r"op must be the same on every rank, got 'mean' on rank 0 and 'sum' on rank 1",
        r"compression must be the same on every rank, got None on rank 0 and 'bf16' on rank 1",
        r"root must be the same on every rank, got 0 on rank 0 and 1 on rank 1",
        r"every rank must make the same collective call, "
        r"got broadcast_parameters\(params\) on rank 0 and allreduce_gradients\(gradients\) on rank 1",
        r"DataParallel: accumulation_steps must be the same on every rank, got 1 on rank 0 and 2 on rank 1",
    ]
    for err, match in zip(errors, matches):
        assert type(err) is ValueError and re.search(match, str(err)), (match, err)


def test_a_bad_argument_on_one_rank_is_its_error_and_a_value_error_elsewhere(comm, dist):
    g = {"w": np.ones(3, np.float32)}
    if comm.rank == 1:
        g["w"].flags.writeable = False
    err = rank_dependent(comm, lambda r: dist.allreduce_gradients(g))
    bad_type = rank_dependent(
        comm, lambda r: dist.allreduce_gradients({"w": np.ones(3, np.int32 if r == 1 else np.float32)})
    )
    if comm.rank == 1:
        assert type(err) is ValueError and re.search(r"gradients\['w'\] must be writeable", str(err))
        assert type(bad_type) is TypeError and "float32 or float64" in str(bad_type)
    else:
        assert type(err) is ValueError and re.search(r"rank 1 refused its arguments.*must be writeable", str(err))
        assert type(bad_type) is ValueError and re.search(
            "rank 1 refused its arguments.*: TypeError: .*int32", str(bad_type)
        )
    np.testing.assert_array_equal(g["w"], np.ones(3, np.float32))


def test_data_parallel_refuses_a_bad_final_call_on_every_rank_and_changes_nothing(comm, dist):
    params = {"w": np.zeros(3, np.float32)}
    dp = dist.DataParallel(gradfast.reference.MomentumOptimizer(learning_rate=1.0), accumulation_steps=2)
    dp.update(params, {"w": np.ones(3, np.float32)})
    bad = {"w": np.ones(3 + (comm.rank == 1), np.float32)}
    err = rank_dependent(comm, lambda r: dp.update(params, bad))
    stepped = dp.update(params, {"w": np.full(3, 3.0, np.float32)})
    assert type(err) is ValueError
    assert stepped
    # the bad call added nothing: the step used (1 + 3) / 2 on every rank
    np.testing.assert_array_equal(params["w"], np.full(3, -2.0, np.float32))


def test_comm_selects_the_ranks(comm, dist):
    sub = comm.Split(color=comm.rank % 2, key=comm.rank)
    try:
        g = {"x": np.full(5, float(comm.rank), np.float64)}
        dist.allreduce_gradients(g, op="sum", comm=sub)
        members = [q for q in range(comm.size) if q % 2 == comm.rank % 2]
        ranks = (dist.rank(comm=sub), dist.size(comm=sub))
    finally:
        sub.Free()
    np.testing.assert_array_equal(g["x"], np.full(5, float(sum(members))))
    assert ranks == (members.index(comm.rank), len(members))
    assert (dist.rank(), dist.size()) == (comm.rank, comm.size)
    with pytest.raises(TypeError, match="comm must be an mpi4py MPI.Intracomm"):
        dist.allreduce_gradients(g, comm=object())


def test_data_parallel_state_dict_is_the_optimizers_and_loading_drops_pending_gradients(comm, dist):
    opt = gradfast.reference.MomentumOptimizer(learning_rate=1.0, momentum=0.5)
    dp = dist.DataParallel(opt, accumulation_steps=2)
    params = {"w": np.zeros(3, np.float32)}
    dp.update(params, {"w": np.ones(3, np.float32)})
    dp.update(params, {"w": np.ones(3, np.float32)})
    saved = dp.state_dict()
    dp.update(params, {"w": np.full(3, 100.0, np.float32)})  # pending, then dropped by the load
    dp.load_state_dict(saved)
    dp.update(params, {"w": np.full(3, 2.0, np.float32)})
    stepped = dp.update(params, {"w": np.full(3, 4.0, np.float32)})
    bad = rank_dependent(comm, lambda r: dist.DataParallel(object()))
    assert saved.keys() == opt.state_dict().keys()
    assert stepped
    # momentum steps: v = -1, p = -1; then v = 0.5 * -1 - 3 = -3.5, p = -4.5
    np.testing.assert_array_equal(params["w"], np.full(3, -4.5, np.float32))
    assert type(bad) is TypeError and "optimizer must have an update(params, gradients) method" in str(bad)


def test_overlapping_gradients_are_refused(comm, dist):
    buf = np.ones(10, np.float32)
    err = rank_dependent(comm, lambda r: dist.allreduce_gradients({"x": buf[:6], "y": buf[4:]}))
    assert type(err) is ValueError and "gradients['y'] must not share memory with gradients['x']" in str(err)
    np.testing.assert_array_equal(buf, np.ones(10, np.float32))


def test_keys_and_options_of_numpy_types_are_the_same_as_python_ones(comm, dist):
    # rank 1's keys are numpy.str_ (a dict built from an array of names): the same keys
    names = np.array(["w", "b"]) if comm.rank == 1 else ["w", "b"]
    g = {k: np.full(3, float(comm.rank + 1), np.float32) for k in names}
    assert {type(k) for k in g} == ({np.str_} if comm.rank == 1 else {str})
    dist.allreduce_gradients(g, op="sum")
    total = sum(range(1, comm.size + 1))
    for a in g.values():
        np.testing.assert_array_equal(a, np.full(3, total, np.float32))
    root = np.int64(0) if comm.rank == 1 else 0
    dist.broadcast_parameters(g, root=root)
    steps = np.int64(2) if comm.rank == 1 else 2
    dp = dist.DataParallel(gradfast.MomentumOptimizer(), accumulation_steps=steps)
    assert not dp.update(g, {k: np.ones(3, np.float32) for k in g})
