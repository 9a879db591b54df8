"""Every kernel of ``gradfast bench`` at its quick sizes (about 1M elements): NumPy vs gradfast
(vs PyTorch where installed)."""

import pytest
from gradfast import bench
from gradfast.bench import peers

CASES = [
    pytest.param(name, case, id=f"{name}-{case.dtype}-{case.arrays}x{case.size}")
    for name, kernel in bench.KERNELS.items()
    for case in kernel.quick
]


#: torch only where it is installed (CI's environment has it not)
IMPLS = [i for i in bench.IMPLS if i != "torch" or peers.torch() is not None]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("name", "case"), CASES)
def test_kernel(bench_case, name, case, impl):
    bench_case(name, case, impl)
