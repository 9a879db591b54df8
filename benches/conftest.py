"""Benchmarks of the kernels of ``gradfast bench`` with pytest-benchmark.

``pytest benches`` runs each benchmark once as a smoke test (pyproject sets
``--benchmark-disable``); ``pytest benches --benchmark-enable`` times them.
"""

import pytest
from gradfast import bench

#: timed rounds for kernels whose inputs must be restored before each round
ROUNDS = 20


@pytest.fixture
def bench_case(benchmark):
    """Benchmark one impl of one case of a ``gradfast.bench`` kernel, grouped with the other impl
    of the same case so the comparison sits side by side."""

    def run(name: str, case: bench.Case, impl: str) -> None:
        benchmark.group = f"{name} {case.dtype} {case.label}"
        prepared = bench.KERNELS[name].prepare(case, impl)
        if prepared is None:
            pytest.skip(f"{impl} has no {name}")
        call, setup = prepared
        if setup is None:
            benchmark(call)
        else:
            benchmark.pedantic(call, setup=setup, rounds=ROUNDS, warmup_rounds=1)

    return run
