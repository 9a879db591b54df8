"""gradfast.distributed: the bucket kernels against the reference, bfloat16 rounding against
ml_dtypes and exact arithmetic, the module without mpi4py, and the MPI suite (tests/mpi/)
launched under mpiexec with 2 and 3 ranks."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from gradfast import _core
from gradfast.reference import distributed as ref
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

ROOT = Path(__file__).resolve().parents[1]
#: the whole MPI suite takes seconds; a hang is stopped long before CI's limit
MPI_TIMEOUT = 300
dtypes = st.sampled_from([np.float32, np.float64])


def nearest_bf16(x: float) -> float:
    """The bfloat16 value nearest to ``x``, ties to even, from exact float arithmetic:
    8 significant bits, exponents down to 2**-133 (subnormals), overflow past the largest
    finite value's halfway point to 2**128."""
    if math.isnan(x) or math.isinf(x) or x == 0:
        return x
    _, e = math.frexp(x)  # |x| = m * 2**e, 0.5 <= m < 1
    quantum = 2.0 ** max(e - 8, -133)
    r = round(x / quantum) * quantum  # Python's round: exact, ties to even
    return math.copysign(math.inf, x) if abs(r) >= 2.0**128 else r


def finite_floats(dtype):
    return hnp.arrays(
        dtype, st.integers(0, 200), elements=st.floats(width=32 if dtype == np.float32 else 64, allow_nan=False)
    )


@given(st.data(), dtypes)
def test_rounding_is_to_the_nearest_bf16_with_ties_to_even(data, dtype):
    x = data.draw(finite_floats(dtype))
    bits = np.empty(x.size, np.uint16)
    _core.pack("t", [x], bits)
    np.testing.assert_array_equal(bits, ref.to_bfloat16(x))
    got = ref.from_bfloat16(bits, np.float64)
    np.testing.assert_array_equal(got, [nearest_bf16(float(v)) for v in x])


def test_float32_rounding_is_ml_dtypes_and_float64_rounds_once():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    x = x[~np.isnan(x)]
    ties = np.array([0x3F808000, 0x3F818000, 0x00008000, 0xBF808000], np.uint32).view(np.float32)
    x = np.concatenate([x, ties, [np.inf, -np.inf, 0.0, -0.0, np.finfo(np.float32).max]]).astype(np.float32)
    bits = np.empty(x.size, np.uint16)
    _core.pack("t", [x], bits)
    np.testing.assert_array_equal(bits, x.astype(ml_dtypes.bfloat16).view(np.uint16))
    # ml_dtypes rounds float64 through float32 (twice); gradfast rounds once
    y = np.array([1 + 2**-8 + 2**-30], np.float64)
    _core.pack("t", [y], bits[:1])
    assert ref.from_bfloat16(bits[:1])[0] == 1 + 2**-7 == nearest_bf16(y[0])


def test_nan_stays_nan_and_sums_are_rounded_once():
    x = np.array([np.nan, -np.nan, np.uint32(0x7F800001).view(np.float32)], np.float32)
    bits = np.empty(3, np.uint16)
    _core.pack("t", [x], bits)
    assert np.isnan(ref.from_bfloat16(bits)).all() and np.isnan(ref.from_bfloat16(ref.to_bfloat16(x))).all()
    a, b = ref.to_bfloat16(np.float32([1.0, 256.0, 3.0])), ref.to_bfloat16(np.float32([2**-8, 1.0, -3.0]))
    for sum_bf16 in (_core.sum_bf16, ref.kernels.sum_bf16):
        acc = b.copy()
        sum_bf16(a, acc)
        # 1 + 2**-8 ties to the even 1; 257 rounds to 256
        np.testing.assert_array_equal(ref.from_bfloat16(acc), [1.0, 256.0, 0.0])


@given(
    dtypes,
    st.lists(st.integers(0, 40), max_size=6),
    st.sampled_from([None, 1.0, 3.0, 8.0]),
    st.booleans(),
    st.integers(0, 2**32 - 1),
)
def test_pack_and_unpack_match_the_reference(dtype, sizes, divisor, bf16, seed):
    rng = np.random.default_rng(seed)
    tensors = [rng.standard_normal(n).astype(dtype).reshape((n, 1) if n % 2 else (n,)) for n in sizes]
    wire = np.uint16 if bf16 else dtype
    got, want = np.empty(sum(sizes), wire), np.empty(sum(sizes), wire)
    _core.pack("t", tensors, got)
    ref.kernels.pack("t", tensors, want)
    np.testing.assert_array_equal(got, want)
    out_rust = [np.full_like(t, np.nan) for t in tensors]
    out_ref = [np.full_like(t, np.nan) for t in tensors]
    _core.unpack("t", got, out_rust, divisor)
    ref.kernels.unpack("t", want, out_ref, divisor)
    for r, f, t in zip(out_rust, out_ref, tensors):
        np.testing.assert_array_equal(r, f)
        if not bf16 and divisor is None:
            np.testing.assert_array_equal(r, t)
    _core.divide("t", out_rust, 3.0)
    ref.kernels.divide("t", out_ref, 3.0)
    for r, f in zip(out_rust, out_ref):
        np.testing.assert_array_equal(r, f)


def test_bad_buckets_are_refused_and_change_nothing():
    t = [np.ones(3, np.float32), np.ones(2, np.float32)]
    bucket = np.zeros(5, np.float32)
    with pytest.raises(ValueError, match=r"bucket must have 5 elements \(the tensors' total\), got 4"):
        _core.pack("f", t, np.zeros(4, np.float32))
    with pytest.raises(TypeError, match=r"bucket must have dtype float32 like the other arrays"):
        _core.pack("f", t, np.zeros(5, np.float64))
    with pytest.raises(TypeError, match=r"bucket must have dtype float32 or float64, got int16"):
        _core.unpack("f", np.zeros(5, np.int16), t)
    with pytest.raises(ValueError, match=r"divisor must be a finite number > 0, got 0"):
        _core.unpack("f", bucket, t, 0.0)
    with pytest.raises(ValueError, match=r"tensors\[1\] must not share memory with tensors\[0\]"):
        base = np.ones(4, np.float32)
        _core.unpack("f", np.zeros(4, np.float32), [base[:3], base[1:2]])
    read_only = np.zeros(5, np.uint16)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match=r"acc must be writeable"):
        _core.sum_bf16(np.zeros(5, np.uint16), read_only)
    with pytest.raises(ValueError, match=r"src must have the 5 elements of acc, got 4"):
        _core.sum_bf16(np.zeros(4, np.uint16), np.zeros(5, np.uint16))
    with pytest.raises(TypeError, match=r"tensors must be a list of numpy arrays, got tuple"):
        _core.divide("f", tuple(t), 2.0)
    assert all((a == 1).all() for a in t)


def test_import_works_without_mpi4py_and_the_module_says_how_to_install_it():
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'mpi4py': raise ImportError('no mpi4py here')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import gradfast, gradfast.distributed as d\n"
        "try:\n"
        "    d.allreduce_gradients({})\n"
        "except ImportError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert 'pip install "gradfast[mpi]"' in out.stdout


def mpiexec() -> str:
    """The mpiexec next to this Python (the mpich wheel's), else the one on PATH."""
    path = os.pathsep.join(
        [str(Path(sys.executable).parent), sysconfig.get_path("scripts"), os.environ.get("PATH", "")]
    )
    found = shutil.which("mpiexec", path=path)
    why = 'needs mpi4py and mpiexec: pip install "gradfast[mpi]"'
    if not found:
        pytest.skip(why)
    pytest.importorskip("mpi4py", reason=why)
    return found


def run_mpi(ranks: int, *args: str) -> str:
    """Runs ``mpiexec -n ranks python args`` from the project root; its output, or a failure
    (with the output) if it fails or outlives the timeout."""
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, *args]
    env = {**os.environ, "MPIEXEC_TIMEOUT": str(MPI_TIMEOUT), "GRADFAST_NUM_THREADS": "1"}
    # A session of its own, so that a hang is ended by killing every process of the job.
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=MPI_TIMEOUT + 30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} did not finish within {MPI_TIMEOUT + 30} s:\n{out}")
    assert proc.returncode == 0, out
    return out


@pytest.mark.parametrize("ranks", [2, 3])
def test_the_mpi_suite_passes_under_mpiexec(ranks):
    out = run_mpi(ranks, "-m", "pytest", "tests/mpi", "-q", "-p", "no:cacheprovider")
    assert out.count(" passed") == ranks and "failed" not in out, out


def test_bench_mpi_times_allreduce_against_raw_allreduce():
    out = run_mpi(2, "-m", "gradfast", "bench", "--mpi", "--quick", "--repeat", "1")
    assert "allreduce_gradients over 2 ranks" in out and out.count("| 4 x 40,000 |") == 1, out


def test_the_bench_numpy_baseline_computes_the_kernels_bits():
    from gradfast.bench.numpy import NumpyToBfloat16

    x = np.random.default_rng(1).standard_normal(1000).astype(np.float32) * 1e3
    x[[3, 7]] = [np.nan, np.inf]
    want, got = np.empty(x.size, np.uint16), np.empty(x.size, np.uint16)
    _core.pack("t", [x], want)
    NumpyToBfloat16(x.size)(x, got)
    np.testing.assert_array_equal(got, want)


DYING_RANK = """
import numpy as np
import gradfast.distributed as d

g = {"w": np.ones(3, np.float32)}
d.allreduce_gradients(g)
if d.rank() == 1:
    raise RuntimeError("rank 1 fails here")
d.allreduce_gradients(g)  # rank 0 waits here for a rank that is gone
print("rank 0 went on", flush=True)
"""


def test_an_uncaught_exception_on_one_rank_ends_the_job_with_its_traceback(tmp_path):
    script = tmp_path / "dying.py"
    script.write_text(DYING_RANK)
    cmd = [mpiexec(), "-n", "2", sys.executable, str(script)]
    env = {**os.environ, "GRADFAST_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"the job hung after rank 1 died:\n{out}")
    assert proc.returncode != 0, out
    assert "Traceback" in out and "RuntimeError: rank 1 fails here" in out, out
    assert "rank 0 went on" not in out, out


def test_the_abort_waits_until_the_pipe_is_read_and_no_longer(tmp_path):
    from gradfast._base.distributed import wait_until_read

    if sys.platform == "win32":
        pytest.skip("Windows has no FIONREAD; the abort does not wait there")
    r, w = os.pipe()
    try:
        written = os.write(w, b"Traceback ...\n" * 100)
        reading_from = []

        def reader():
            time.sleep(0.2)
            reading_from.append(time.monotonic())  # until now the pipe holds every byte
            left = written
            while left:
                left -= len(os.read(r, left))

        thread = threading.Thread(target=reader)
        thread.start()
        wait_until_read([w], limit=30)
        returned_at = time.monotonic()
        thread.join()
        assert returned_at >= reading_from[0]

        os.write(w, b"nobody reads this")
        start = time.monotonic()
        wait_until_read([w], limit=0.3)  # returns once the limit is up, the bytes still there
        assert time.monotonic() - start >= 0.3
    finally:
        os.close(r)
        os.close(w)
    with open(tmp_path / "log", "w") as f:
        f.write("a file keeps what was written")
        f.flush()
        start = time.monotonic()
        wait_until_read([f.fileno()], limit=30)
        assert time.monotonic() - start < 30
