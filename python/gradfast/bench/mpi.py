"""``gradfast bench --mpi``, run under ``mpiexec -n N``: the time of ``allreduce_gradients``
against one raw in-place ``comm.Allreduce`` of the same bytes, measured in the same run.

Each timed run starts after a barrier and counts as long as the slowest rank took; the best
of ``repeat`` runs is kept. Rank 0 prints the table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from .. import distributed
from ..reference import distributed as reference
from .timing import machine_info

#: (name, shapes): the speed target's four large arrays, and a model's worth of small ones
CASES = {
    "4 x 4,000,000": [(4_000_000,)] * 4,
    "400 x 2,500": [(2_500,)] * 400,
}
QUICK = {"4 x 40,000": [(40_000,)] * 4, "40 x 250": [(250,)] * 40}


def _best(comm, fn: Callable[[], object], repeat: int) -> float:
    best = math.inf
    for run in range(repeat + 1):
        comm.Barrier()
        start = time.perf_counter()
        fn()
        slowest = comm.allreduce(time.perf_counter() - start, op=distributed._base.mpi().MAX)
        if run:  # the first run warms up
            best = min(best, slowest)
    return best


def measure(comm, name: str, shapes, repeat: int) -> dict:
    MPI = distributed._base.mpi()
    rng = np.random.default_rng(comm.rank)
    grads = {f"w{i:03d}": rng.standard_normal(s, dtype=np.float32) for i, s in enumerate(shapes)}
    raw = np.concatenate([g.reshape(-1) for g in grads.values()])

    def per_array():
        for g in grads.values():
            comm.Allreduce(MPI.IN_PLACE, g, op=MPI.SUM)

    times = {
        "raw_allreduce_s": _best(comm, lambda: comm.Allreduce(MPI.IN_PLACE, raw, op=MPI.SUM), repeat),
        "raw_per_array_s": _best(comm, per_array, repeat),
        "mean_s": _best(comm, lambda: distributed.allreduce_gradients(grads, comm=comm), repeat),
        "sum_s": _best(comm, lambda: distributed.allreduce_gradients(grads, op="sum", comm=comm), repeat),
        "bf16_s": _best(comm, lambda: distributed.allreduce_gradients(grads, compression="bf16", comm=comm), repeat),
        "reference_mean_s": _best(comm, lambda: reference.allreduce_gradients(grads, comm=comm), repeat),
    }
    raw_s = times["raw_allreduce_s"]
    return {
        "label": name,
        "arrays": len(shapes),
        "elements": raw.size,
        **times,
        **{k.replace("_s", "_ratio"): v / raw_s for k, v in times.items() if k != "raw_allreduce_s"},
    }


def run(*, quick: bool = False, repeat: int | None = None) -> dict:
    MPI = distributed._base.mpi()
    comm = MPI.COMM_WORLD
    if repeat is None:
        repeat = 2 if quick else 7
    rows = [measure(comm, name, shapes, repeat) for name, shapes in (QUICK if quick else CASES).items()]
    return {
        "machine": machine_info(),
        "ranks": comm.size,
        "mpi": " ".join(MPI.Get_library_version().splitlines()[0].split()),
        "repeat": repeat,
        "quick": quick,
        "rows": rows,
    }


def _ms(s: float) -> str:
    return f"{s * 1e3:.3g} ms" if s >= 1e-3 else f"{s * 1e6:.3g} us"


def format_report(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"allreduce_gradients over {report['ranks']} ranks, float32 ({report['mpi']}; {m['cpu']}, "
        f"{m['cpu_count']} CPUs, {m['gradfast_threads']} gradfast threads per rank; best of {report['repeat']})",
        "",
        "| gradients | raw Allreduce | raw, one per array | mean | sum | bf16 mean | mean, NumPy buckets |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        cells = [
            f"{_ms(r[k])} ({r[k.replace('_s', '_ratio')]:.2f}x)"
            for k in ("raw_per_array_s", "mean_s", "sum_s", "bf16_s", "reference_mean_s")
        ]
        lines.append(f"| {r['label']} | {_ms(r['raw_allreduce_s'])} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(
        "(x: time over one raw in-place Allreduce of all the gradients' bytes, same run; "
        "'one per array': an in-place Allreduce of each array, no packing, no mean)"
    )
    if report["ranks"] == 1:
        lines.append("measured on one rank (no other process to reduce with): run it under mpiexec -n N")
    return "\n".join(lines) + "\n"
