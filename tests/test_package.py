"""The installed package: its version (one source, the Cargo workspace's) and what
``import gradfast`` loads."""

import re
import subprocess
import sys
from pathlib import Path

import gradfast

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True).stdout


def test_the_version_is_the_cargo_workspace_version():
    cargo = (ROOT / "Cargo.toml").read_text()
    workspace = cargo.split("[workspace.package]", 1)[1]
    expected = re.search(r'^version = "([^"]+)"', workspace, re.MULTILINE).group(1)
    assert gradfast.__version__ == expected
    out = subprocess.run(
        [sys.executable, "-m", "gradfast", "--version"], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout == f"gradfast {expected}\n"


def test_import_loads_no_optional_or_heavy_module():
    """ml_dtypes (bfloat16) is imported on first use, mpi4py by gradfast.distributed's first
    call, the peers never; the version's metadata when asked for."""
    heavy = ["ml_dtypes", "mpi4py", "torch", "jax", "optax", "matplotlib", "sklearn", "importlib.metadata"]
    # and gradfast's own modules that most programs never touch, with what only they need
    heavy += ["gradfast.reference", "gradfast.schedules", "gradfast.bench", "hashlib", "logging"]
    # only what gradfast adds: on Python < 3.12 NumPy's own imports load hashlib (through random)
    code = (
        "import sys, numpy\n"
        "numpy_loads = set(sys.modules)\n"
        "import gradfast, gradfast.distributed\n"
        f"print([m for m in {heavy!r} if m in sys.modules and m not in numpy_loads])"
    )
    assert _python(code).strip() == "[]"


def test_lazy_names_load_on_first_use():
    code = (
        "import sys, gradfast as gf\n"
        "print(gf.LRScheduler is gf.reference.LRScheduler, gf.DistributedOptimizer.__module__)\n"
        "print(gf.schedules.StepLR.__module__, 'gradfast.schedules' in sys.modules)\n"
        "from gradfast import *\n"
        "print(sorted(set(gf.__all__) - set(globals())))\n"
    )
    assert _python(code).split("\n")[:3] == [
        "True gradfast.reference.distributed",
        "gradfast.schedules True",
        "[]",
    ]


def test_bfloat16_state_imports_ml_dtypes_on_first_use():
    code = (
        "import sys, numpy as np, gradfast as gf\n"
        "p, g = {'w': np.ones(3, np.float32)}, {'w': np.ones(3, np.float32)}\n"
        "gf.Adam().update(p, g)\n"
        "print('ml_dtypes' in sys.modules)\n"
        "opt = gf.Adam(state_dtype='bfloat16')\n"
        "opt.update(p, g)\n"
        "print('ml_dtypes' in sys.modules, opt.state['w']['exp_avg'].dtype)\n"
    )
    assert _python(code).split("\n")[:2] == ["False", "True bfloat16"]
