"""Default threads against one thread over sizes, in one process: the check behind "threads
only where they pay" (below the pool's traffic threshold both run the same code).

Usage: python benches/thread_sweep.py
"""

import timeit
from functools import partial

import gradfast as gf
import numpy as np

SIZES = [4096, 16384, 65536, 131072, 262144, 400_000, 524288, 700_000, 1_000_000]


def best(fn, number):
    return min(timeit.timeit(fn, number=number) / number for _ in range(9))


def main() -> None:
    default = gf.get_num_threads()
    worst = 0.0
    for size in SIZES:
        p, g = {"w": np.ones(size, np.float32)}, {"w": np.ones(size, np.float32)}
        small = {"w": np.full(size, 1e-3, np.float32)}
        calls = {
            "adam": partial(gf.Adam().update, p, g),
            "nesterov": partial(gf.MomentumOptimizer(nesterov=True).update, p, g),
            "clip": partial(gf.clip_grad_norm, small, 1e9),
        }
        number = max(3, 2_000_000 // size)
        cells = []
        for name, run in calls.items():
            run()
            gf.set_num_threads(1)
            one = best(run, number)
            gf.set_num_threads(default)
            many = best(run, number)
            worst = max(worst, many / one)
            cells.append(f"{name} 1t {one * 1e6:8.1f}us {default}t {many * 1e6:8.1f}us x{many / one:4.2f}")
        print(f"{size:>9,}  " + "  ".join(cells), flush=True)
    print(f"worst default/one-thread ratio: {worst:.2f}")


if __name__ == "__main__":
    main()
