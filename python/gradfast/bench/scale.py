"""``gradfast bench --scale``: Adam's throughput from a million to a billion parameters.

One float32 array of parameters (and its gradients) per size, stepped by ``Adam.update`` with
float32 state and with bfloat16 state. Past the caches the step is bound by memory, so its
throughput should hold from 1e7 parameters up: a fall at 1e8 or 1e9 would point at page
faults, first-touch placement or chunking that stops being parallel.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from .. import optim
from .timing import machine_info, timed_runs

SIZES = (10**6, 10**7, 10**8, 10**9)
QUICK_SIZES = (10**5, 10**6)
#: the size every other size's throughput is compared with
REFERENCE = 10**7
#: bytes per parameter each state moves: p and g float32, two state slots, p and state written
STATES = {"float32": 28, "bfloat16": 20}
#: bytes per parameter held: p and g float32 and the two state slots
HELD = {"float32": 16, "bfloat16": 12}
#: memory kept free beside the arrays (the interpreter, the system)
HEADROOM = 1 << 30


def available_memory() -> int | None:
    """``MemAvailable`` of ``/proc/meminfo`` in bytes, or None where the system does not say."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _arrays(n: int) -> tuple[dict, dict]:
    # a random block repeated: drawing 1e9 normals would take longer than the timing
    rng = np.random.default_rng(0)
    block = rng.standard_normal(1 << 20).astype(np.float32)
    return {"w": np.resize(block, n)}, {"w": np.resize(block * np.float32(1e-2), n)}


def _calls(n: int) -> int:
    """Calls per timed run: about 1e8 parameters' worth, at least one."""
    return max(1, 10**8 // n)


def sweep(*, quick: bool = False, repeat: int | None = None, sizes=None) -> dict:
    """Seconds per ``Adam.update`` at each size and state dtype (best of ``repeat`` runs, 5 by
    default, 2 with ``quick``; 3 at most from 1e9 parameters). A size whose arrays would not
    fit in the available memory is reported as skipped."""
    if repeat is None:
        repeat = 2 if quick else 5
    if sizes is None:
        sizes = QUICK_SIZES if quick else SIZES
    rows = []
    for n in sizes:
        for state, moved in STATES.items():
            row = {"state": state, "params": n, "bytes_per_param": moved}
            need, avail = n * HELD[state] + HEADROOM, available_memory()
            if avail is not None and avail < need:
                rows.append({**row, "skipped": f"needs {need / 1e9:.1f} GB, {avail / 1e9:.1f} GB available"})
                continue
            params, grads = _arrays(n)
            adam = optim.Adam(1e-3, state_dtype=None if state == "float32" else state)
            step = partial(adam.update, params, grads)
            seconds = min(timed_runs(step, repeat if n < 10**9 else min(repeat, 3), _calls(n)))
            del step, adam, params, grads
            rows.append(
                {**row, "skipped": None, "seconds": seconds, "params_per_s": n / seconds,
                 "bytes_per_s": moved * n / seconds}
            )  # fmt: skip
    for r in rows:
        ref = next((x for x in rows if x["state"] == r["state"] and x["params"] == REFERENCE), None)
        if ref is None or ref["skipped"] or r["skipped"]:
            r["vs_reference"] = None
        else:
            r["vs_reference"] = r["params_per_s"] / ref["params_per_s"]
    return {"machine": machine_info(), "repeat": repeat, "quick": quick, "reference": REFERENCE, "rows": rows}


def format_report(report: dict) -> str:
    """One line per size and state dtype: time per step, params/s, GB/s, and the ratio to 1e7."""
    m = report["machine"]
    lines = [
        f"gradfast {m['gradfast']} scale on {m['cpu']}: Adam.update on one float32 array, "
        f"{m['gradfast_threads']} threads, best of {report['repeat']} runs",
        f"GB/s counts 28 bytes per param with float32 state, 20 with bfloat16; "
        f"vs 1e{len(str(report['reference'])) - 1} = throughput / throughput at {report['reference']:,} params",
    ]
    for r in report["rows"]:
        head = f"{r['params']:>13,}  {r['state']:<8}"
        if r["skipped"]:
            lines.append(f"{head}  skipped: {r['skipped']}")
            continue
        ratio = "" if r["vs_reference"] is None else f"  x{r['vs_reference']:.2f}"
        lines.append(
            f"{head}  {r['seconds'] * 1e3:9.2f} ms  {r['params_per_s'] / 1e9:6.2f} G params/s  "
            f"{r['bytes_per_s'] / 1e9:6.1f} GB/s{ratio}"
        )
    return "\n".join(lines) + "\n"
