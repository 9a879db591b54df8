"""Every kernel of ``gradfast bench`` at its quick sizes (about 1M elements): NumPy vs gradfast."""

import pytest
from gradfast import bench

CASES = [
    pytest.param(name, case, id=f"{name}-{case.dtype}-{case.arrays}x{case.size}")
    for name, kernel in bench.KERNELS.items()
    for case in kernel.quick
]


@pytest.mark.parametrize("impl", bench.IMPLS)
@pytest.mark.parametrize(("name", "case"), CASES)
def test_kernel(bench_case, name, case, impl):
    bench_case(name, case, impl)
