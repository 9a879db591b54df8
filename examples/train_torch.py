"""Train a small PyTorch classifier with gradfast.torch's AdamW.

The model, the data loader, the loss and the learning-rate schedule are plain torch; only the
optimizer comes from gradfast (``pip install "gradfast[torch]"``), a drop-in for
``torch.optim.AdamW``. The data are two interleaved spirals, made here so that the script
needs nothing else. Run ``python examples/train_torch.py``; it prints the loss of each epoch
and a final line ``test accuracy: 0.XXXX``.
"""

from __future__ import annotations

import argparse
import math

import gradfast.torch as gft
import torch


def spirals(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of two interleaved spirals (with noise) and their labels 0 and 1."""
    t = torch.rand(n, generator=generator) * 3 * math.pi
    label = torch.randint(0, 2, (n,), generator=generator)
    angle = t + math.pi * label
    x = torch.stack([t * torch.cos(angle), t * torch.sin(angle)], dim=1) / (3 * math.pi)
    return x + 0.02 * torch.randn(n, 2, generator=generator), label


def train(epochs: int = 30, seed: int = 0) -> float:
    """Train, printing each epoch's loss; returns the accuracy on held-out points."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    x, y = spirals(4096, g)
    x_test, y_test = spirals(1024, g)
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2)
    )
    # No weight decay on biases: two param groups, as one would write for torch.optim.AdamW.
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = gft.AdamW([{"params": decay, "weight_decay": 1e-2}, {"params": no_decay, "weight_decay": 0.0}], lr=1e-2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y), batch_size=128, shuffle=True, generator=g
    )
    for epoch in range(epochs):
        total = 0.0
        for xb, yb in loader:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            total += loss.item() * len(xb)
        sched.step()
        print(f"epoch {epoch + 1:3d}  loss {total / len(x):.4f}  lr {sched.get_last_lr()[0]:.2e}")
    with torch.no_grad():
        accuracy = (model(x_test).argmax(dim=1) == y_test).float().mean().item()
    print(f"test accuracy: {accuracy:.4f}")
    return accuracy


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train(args.epochs, args.seed)
