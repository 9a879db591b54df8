"""Writes torch_fixtures.npz: PyTorch's own results for the updates gradfast claims to match.

Run by hand where torch is installed (`python tests/data/make_torch_fixtures.py`); the tests
read the file, so they need no torch. Inputs come from a fixed NumPy seed and are stored too.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

STEPS = 5
SHAPES = {"w": (33, 7), "b": (7,), "s": ()}
OPTIMIZERS = {
    "adam": (torch.optim.Adam, {"lr": 1e-2}),
    "adam_l2": (torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.1}),
    "adam_amsgrad": (torch.optim.Adam, {"lr": 1e-2, "amsgrad": True, "betas": (0.5, 0.9)}),
    "adamw": (torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1}),
}
CLIPS = {"clip_2": 2.0, "clip_inf": float("inf"), "clip_1": 1.0, "clip_3": 3.0}


def main() -> None:
    rng = np.random.default_rng(2024)
    out: dict[str, np.ndarray] = {}
    for dtype in (np.float32, np.float64):
        d = np.dtype(dtype).name
        params = {k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()}
        grads = [{k: rng.standard_normal(s).astype(dtype) for k, s in SHAPES.items()} for _ in range(STEPS)]
        for k in SHAPES:
            out[f"{d}/params/{k}"] = params[k]
            for t in range(STEPS):
                out[f"{d}/grads/{t}/{k}"] = grads[t][k]
        for name, (cls, kw) in OPTIMIZERS.items():
            tensors = {k: torch.tensor(p.copy(), requires_grad=True) for k, p in params.items()}
            opt = cls(tensors.values(), foreach=False, **kw)
            for g in grads:
                for k, t in tensors.items():
                    t.grad = torch.tensor(g[k])
                opt.step()
            for k, t in tensors.items():
                out[f"{d}/{name}/{k}"] = t.detach().numpy()
        for name, norm_type in CLIPS.items():
            tensors = {k: torch.zeros(s, dtype=getattr(torch, d), requires_grad=True) for k, s in SHAPES.items()}
            for k, t in tensors.items():
                t.grad = torch.tensor(grads[0][k] * 3.0)
            total = torch.nn.utils.clip_grad_norm_(tensors.values(), max_norm=1.5, norm_type=norm_type)
            out[f"{d}/{name}/total"] = total.numpy()
            for k, t in tensors.items():
                out[f"{d}/{name}/{k}"] = t.grad.numpy()
    path = Path(__file__).with_name("torch_fixtures.npz")
    np.savez_compressed(path, torch_version=np.array(torch.__version__), **out)
    print(f"wrote {path} ({len(out)} arrays, torch {torch.__version__})")


if __name__ == "__main__":
    main()
