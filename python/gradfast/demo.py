"""``gradfast demo``: every piece of gradfast in one real training run, as code to copy.

Two small models, trained with NumPy for the model's own arithmetic and gradfast for the rest:

- an MLP (64 -> 128 -> 64 -> 10, BatchNorm, ReLU and Dropout after each hidden layer) on
  scikit-learn's bundled 8x8 handwritten digits. The dense layers' forward and backward and the
  softmax cross-entropy are plain NumPy; gradfast gives the initialization, BatchNorm, Dropout,
  the elastic-net penalty, gradient clipping, the optimizer (AdamW by default, with a parameter
  group that exempts biases and BatchNorm from weight decay), the warmup-then-cosine learning
  rate and gradual magnitude pruning, whose masks are applied after every optimizer step (so
  the optimizer's momentum never revives a pruned weight);
- a vanilla RNN trained with ``bptt`` to predict the next value of noisy sine waves.

Run it with ``gradfast demo`` (or ``python -m gradfast demo``; ``--help`` lists the options).
It needs the ``demo`` extra (``pip install "gradfast[demo]"``: scikit-learn and matplotlib);
nothing is downloaded. ``--impl reference`` trains on ``gradfast.reference`` (the pure-NumPy
twins) and times both; under ``mpiexec -n 2 gradfast demo --distributed`` each process takes half
of every batch and ``gradfast.distributed`` averages the gradients.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

import gradfast

DTYPE = np.float32
HIDDEN = (128, 64)
BATCH = 64  # the global batch: with --distributed each process takes an equal share of it
DROP_RATE = 0.1
LAMBDA_L1, LAMBDA_L2 = 1e-5, 1e-4  # elastic net on the dense weights
MAX_NORM = 1.0  # gradient clipping
FINAL_SPARSITY = 0.7  # of the dense weights, reached three quarters into training
PRUNE_EVERY = 10  # steps between two pruning rounds; the masks are applied after every step
EMA_DECAY = 0.9  # of the weights' moving average that is evaluated (about half an epoch's steps)
RNN_HIDDEN, RNN_STEPS, RNN_BATCH, RNN_UPDATES = 32, 40, 32, 300
#: where the PNG goes by default: the temporary directory, so a run inside a clone leaves
#: nothing for ``git status`` to show (the path is printed at the end)
DEFAULT_OUT = os.path.join(tempfile.gettempdir(), "gradfast")

#: the parameter group of the optimizers that decay weights: no decay on biases and BatchNorm's
#: gamma and beta (every array but the dense matrices ``W{i}``), as torch recipes do
NO_DECAY = [{"keys": lambda key, array: not key.startswith("W"), "weight_decay": 0.0}]

#: per optimizer: how to build it from the peak learning rate, and that rate's default
OPTIMIZERS: dict[str, tuple[Callable[..., Any], float]] = {
    # with biases and BatchNorm exempt, the dense weights take a stronger decay (0.25 to 0.4 all
    # end above the 0.01 on every array it replaced)
    "adamw": (lambda lib, lr, **state: lib.AdamW(lr, weight_decay=0.4, groups=NO_DECAY, **state), 3e-3),
    "adam": (lambda lib, lr, **state: lib.Adam(lr, **state), 3e-3),
    "momentum": (lambda lib, lr, **state: lib.MomentumOptimizer(lr, momentum=0.9, nesterov=True, **state), 0.05),
    "lamb": (lambda lib, lr: lib.LAMB(lr, weight_decay=0.01, groups=NO_DECAY), 1e-2),
    "lars": (lambda lib, lr: lib.LARS(lr, momentum=0.9, trust_coefficient=0.02), 1.0),
}
#: the optimizers that can keep their state in bfloat16 or 8 bits (``--state-dtype``)
LOW_PRECISION = ("adamw", "adam", "momentum")


def make_optimizer(lib: ModuleType, name: str, learning_rate: float, state_dtype: str | None = None):
    """The optimizer ``name`` of ``lib`` (``gradfast`` or ``gradfast.reference``), its state in
    float32 or, with ``state_dtype='bfloat16'`` or ``'8bit'`` (an optimizer of ``LOW_PRECISION``),
    in bfloat16 or bitsandbytes' block-wise 8 bits."""
    build, _ = OPTIMIZERS[name]
    return build(lib, learning_rate, state_dtype=state_dtype) if state_dtype else build(lib, learning_rate)


# -- data --------------------------------------------------------------------------------


def load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8x8 digits (1797 images, no download), split 75/25 with a fixed
    seed and stratified by class: ``X_train, y_train, X_test, y_test``, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    X, y = sklearn_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        (X / 16.0).astype(DTYPE), y, test_size=0.25, random_state=0, stratify=y
    )
    return X_train, y_train, X_test, y_test


def sine_batch(rng: np.random.Generator, steps: int, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Noisy sine waves of random frequency and phase as ``bptt`` wants them, ``(T, 1, B)``:
    the input is the noisy wave, the target the clean wave one step ahead."""
    freq = rng.uniform(0.1, 0.3, size=batch)
    phase = rng.uniform(0.0, 2.0 * np.pi, size=batch)
    t = np.arange(steps + 1)[:, None]
    clean = np.sin(freq * t + phase)
    noisy = clean[:-1] + 0.1 * rng.standard_normal((steps, batch))
    return noisy[:, None, :].astype(DTYPE), clean[1:, None, :].astype(DTYPE)


# -- the MLP: dense layers in NumPy, the rest from gradfast -------------------------------


class MLP:
    """``params`` holds the dense weights ``W{i}`` ``(out, in)`` and biases ``b{i}`` ``(out, 1)``
    of ``initialize_weights``, and every BatchNorm's ``gamma{i}``/``beta{i}``: the layers' own
    arrays, so the optimizer updating ``params`` in place updates the layers. (A hidden layer's
    bias is cancelled by the BatchNorm after it; it stays, at zero, as ``initialize_weights`` made it.)"""

    def __init__(self, lib: ModuleType, sizes: tuple[int, ...], seed: int, dropout_seed: int) -> None:
        self.params = lib.initialize_weights(sizes, "he", seed=seed, dtype=DTYPE)
        self.layers = len(sizes) - 1
        self.norms = [lib.BatchNorm(n, dtype=DTYPE) for n in sizes[1:-1]]
        self.dropouts = [lib.Dropout(DROP_RATE, seed=dropout_seed + i) for i in range(1, self.layers)]
        for i, bn in enumerate(self.norms, 1):
            self.params[f"gamma{i}"], self.params[f"beta{i}"] = bn.gamma, bn.beta

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """The dense weight matrices: what is regularized and pruned (not biases or BatchNorm)."""
        return {f"W{i}": self.params[f"W{i}"] for i in range(1, self.layers + 1)}

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Logits ``(N, 10)`` of images ``x`` ``(N, 64)``; keeps what ``backward`` needs."""
        self.inputs, self.relu_masks = [], []
        for i in range(1, self.layers):
            self.inputs.append(x)
            z = x @ self.params[f"W{i}"].T + self.params[f"b{i}"].T
            z = self.norms[i - 1].forward(z, training=training)
            self.relu_masks.append(z > 0)
            x = self.dropouts[i - 1].forward(np.maximum(z, 0), training=training)
        self.inputs.append(x)
        return x @ self.params[f"W{self.layers}"].T + self.params[f"b{self.layers}"].T

    def backward(self, grad_logits: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of every entry of ``params`` from the gradient of the loss in the logits."""
        grads, g = {}, grad_logits
        for i in range(self.layers, 0, -1):
            if i < self.layers:
                g = self.dropouts[i - 1].backward(g) * self.relu_masks[i - 1]
                g = self.norms[i - 1].backward(g)
                grads[f"gamma{i}"], grads[f"beta{i}"] = self.norms[i - 1].grad_gamma, self.norms[i - 1].grad_beta
            grads[f"W{i}"] = g.T @ self.inputs[i - 1]
            grads[f"b{i}"] = g.sum(axis=0, keepdims=True).T
            g = g @ self.params[f"W{i}"]
        return {k: np.ascontiguousarray(grads[k]) for k in self.params}


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient in the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = len(labels)
    grad = np.exp(log_p)
    grad[np.arange(n), labels] -= 1.0
    return float(-log_p[np.arange(n), labels].mean()), grad / DTYPE(n)


def accuracy(model: MLP, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(model.forward(X, training=False).argmax(axis=1) == y))


# -- training -----------------------------------------------------------------------------


@dataclass
class History:
    """What a run prints and plots: per epoch (``epoch_*``) and per optimizer step (``step_*``)."""

    epoch_loss: list[float] = field(default_factory=list)
    epoch_train_acc: list[float] = field(default_factory=list)
    epoch_test_acc: list[float] = field(default_factory=list)
    step_lr: list[float] = field(default_factory=list)
    step_sparsity: list[float] = field(default_factory=list)
    rnn_loss: list[float] = field(default_factory=list)
    #: one held-out wave: input, target and the trained RNN's prediction
    rnn_example: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    seconds: float = 0.0


def train_mlp(lib: ModuleType, args: argparse.Namespace, dist, history: History, log) -> None:
    """Train the MLP with ``lib``'s pieces; ``dist`` is ``lib.distributed`` (MPI) or None."""
    rank, size = (dist.rank(), dist.size()) if dist else (0, 1)
    X_train, y_train, X_test, y_test = load_digits()
    # Every process starts from the same weights; each drops out its own units.
    model = MLP(lib, (X_train.shape[1], *HIDDEN, 10), seed=args.seed, dropout_seed=args.seed + 1000 * (rank + 1))
    if dist:
        dist.broadcast_parameters(model.params)  # rank 0's starting point (equal here: same seed)
    optimizer = make_optimizer(lib, args.optimizer, args.lr, args.state_dtype)
    steps_per_epoch = len(X_train) // BATCH  # the incomplete last batch is dropped: BatchNorm wants full ones
    total = args.epochs * steps_per_epoch
    warmup = max(1, total // 10)
    # peak rate args.lr: a linear warmup, then a cosine down to 0 (as torch's schedulers would)
    schedule = lib.schedules.SequentialLR(
        optimizer,
        [
            lib.schedules.LinearLR(optimizer, start_factor=1 / warmup, total_iters=warmup),
            lib.schedules.CosineAnnealingLR(optimizer, T_max=total - warmup),
        ],
        milestones=[warmup],
    )
    pruner = lib.GradualPruning(0.0, FINAL_SPARSITY, begin_step=total // 5, end_step=3 * total // 4)
    weights = model.weights
    ema = lib.EMA(EMA_DECAY)  # the weights evaluated: their moving average over the last steps
    rng = np.random.default_rng(args.seed)  # the same shuffle in every process

    step = 0
    for epoch in range(1, args.epochs + 1):
        start, loss_sum, correct, seen = time.perf_counter(), 0.0, 0, 0
        order = rng.permutation(len(X_train))
        for first in range(0, steps_per_epoch * BATCH, BATCH):
            batch = order[first : first + BATCH][rank::size]  # this process's share
            x, y = X_train[batch], y_train[batch]
            logits = model.forward(x, training=True)
            loss, grad_logits = cross_entropy(logits, y)
            grads = model.backward(grad_logits)
            if dist:
                dist.allreduce_gradients(grads)  # mean over the processes: the whole batch's gradient
            penalty, reg_grads = lib.compute_regularization(weights, LAMBDA_L1, LAMBDA_L2)
            for key, g in reg_grads.items():
                grads[key] += g
            lib.clip_grad_norm(grads, max_norm=MAX_NORM)
            optimizer.update(model.params, grads)
            history.step_lr.append(optimizer.learning_rate)
            schedule.step()  # the rate of the next step
            if step >= pruner.begin_step and step % PRUNE_EVERY == 0:
                pruner.update(weights, step)  # prunes in place; its masks (pruner.masks) only shrink
            elif pruner.masks is not None:
                lib.apply_masks(weights, pruner.masks)  # the optimizer moved pruned weights: back to zero
            ema.update(model.params)
            step += 1
            history.step_sparsity.append(sparsity(weights))
            loss_sum += (loss + penalty) * len(y)  # with --distributed: of this process's share
            correct += int((logits.argmax(axis=1) == y).sum())
            seen += len(y)
        if dist:
            # BatchNorm's running statistics saw only this process's shares: take rank 0's,
            # as torch's DistributedDataParallel does, so that every process evaluates one model.
            dist.broadcast_parameters(
                {
                    f"{name}{i}": getattr(bn, name)
                    for i, bn in enumerate(model.norms, 1)
                    for name in ("running_mean", "running_var")
                }
            )
        history.epoch_loss.append(loss_sum / seen)
        history.epoch_train_acc.append(correct / seen)
        history.epoch_test_acc.append(averaged_accuracy(lib, model, ema, pruner, X_test, y_test))
        log(
            f"epoch {epoch:{len(str(args.epochs))}d}/{args.epochs}  loss {history.epoch_loss[-1]:.4f}  "
            f"train acc {history.epoch_train_acc[-1]:.4f}  test acc {history.epoch_test_acc[-1]:.4f}  "
            f"lr {history.step_lr[-1]:.2e}  sparsity {history.step_sparsity[-1]:.2f}  "
            f"{time.perf_counter() - start:.2f} s"
        )


def averaged_accuracy(lib: ModuleType, model: MLP, ema, pruner, X: np.ndarray, y: np.ndarray) -> float:
    """The accuracy of the averaged weights (pruned as the live ones), the live ones restored after."""
    live = {k: p.copy() for k, p in model.params.items()}
    ema.copy_to(model.params)
    if pruner.masks is not None:
        lib.apply_masks(model.weights, pruner.masks)
    result = accuracy(model, X, y)
    for k, p in live.items():
        np.copyto(model.params[k], p)
    return result


def sparsity(weights: dict[str, np.ndarray]) -> float:
    """The fraction of the weights that are exactly zero."""
    return sum(int(np.count_nonzero(w == 0)) for w in weights.values()) / sum(w.size for w in weights.values())


# -- the RNN ------------------------------------------------------------------------------


def rnn_predict(weights: dict[str, np.ndarray], inputs: np.ndarray) -> np.ndarray:
    """The RNN's outputs ``(T, 1, B)`` for ``inputs`` ``(T, 1, B)``, from a zero hidden state."""
    h = np.zeros((weights["Wh"].shape[0], inputs.shape[2]), dtype=DTYPE)
    outputs = []
    for x in inputs:
        h = np.tanh(weights["Wx"] @ x + weights["Wh"] @ h)
        outputs.append(weights["Wy"] @ h)
    return np.stack(outputs)


def train_rnn(lib: ModuleType, args: argparse.Namespace, dist, history: History, log) -> None:
    """Train a vanilla RNN (tanh, one input, one output) with ``bptt`` on fresh noisy sine
    waves at every step: next-step prediction."""
    rank, size = (dist.rank(), dist.size()) if dist else (0, 1)
    start = time.perf_counter()
    io = lib.initialize_weights([1, RNN_HIDDEN, 1], "xavier", seed=args.seed, dtype=DTYPE)
    recurrent = lib.initialize_weights([RNN_HIDDEN, RNN_HIDDEN], "xavier", seed=args.seed + 1, dtype=DTYPE)
    weights = {"Wx": io["W1"], "Wh": recurrent["W1"], "Wy": io["W2"]}
    h0 = np.zeros((RNN_HIDDEN, RNN_BATCH // size), dtype=DTYPE)
    optimizer = lib.Adam(1e-2)
    schedule = lib.schedules.CosineAnnealingLR(optimizer, T_max=RNN_UPDATES)
    rng = np.random.default_rng([args.seed, rank])  # each process its own waves
    for _ in range(RNN_UPDATES):
        inputs, targets = sine_batch(rng, RNN_STEPS, RNN_BATCH // size)
        grads, loss = lib.bptt(inputs, targets, h0, weights, RNN_STEPS)
        if dist:
            dist.allreduce_gradients(grads)
        lib.clip_grad_norm(grads, max_norm=MAX_NORM)
        optimizer.update(weights, grads)
        schedule.step()
        history.rnn_loss.append(loss)
    inputs, targets = sine_batch(np.random.default_rng([args.seed, 1 << 16]), RNN_STEPS, 1)
    history.rnn_example = (inputs[:, 0, 0], targets[:, 0, 0], rnn_predict(weights, inputs)[:, 0, 0])
    first, last = history.rnn_loss[0], float(np.mean(history.rnn_loss[-10:]))
    log(
        f"rnn: {RNN_UPDATES} bptt updates, loss {first:.4f} -> {last:.4f} "
        f"({first / last:.0f}x lower)  {time.perf_counter() - start:.2f} s"
    )


def train(lib: ModuleType, args: argparse.Namespace, dist, log) -> History:
    """Both models with ``lib``'s pieces; ``history.seconds`` is the wall time."""
    history, start = History(), time.perf_counter()
    train_mlp(lib, args, dist, history, log)
    train_rnn(lib, args, dist, history, log)
    history.seconds = time.perf_counter() - start
    return history


# -- the plot -----------------------------------------------------------------------------


def plot(history: History, path: str, title: str) -> None:
    """Six panels: MLP loss, accuracy, learning rate and sparsity; RNN loss and one prediction."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global state

    fig = Figure(figsize=(13, 7.5), layout="constrained")
    fig.suptitle(title)
    (loss, acc, lr), (sparse, rnn, wave) = fig.subplots(2, 3)
    epochs = np.arange(1, len(history.epoch_loss) + 1)
    steps = np.arange(1, len(history.step_lr) + 1)

    loss.plot(epochs, history.epoch_loss)
    loss.set(title="MLP training loss (cross-entropy + penalty)", xlabel="epoch", yscale="log")
    acc.plot(epochs, history.epoch_train_acc, label="train (dropout on)")
    acc.plot(epochs, history.epoch_test_acc, label="test")
    # a logit scale spreads out 0.9, 0.99 and 0.999
    acc.set(title="MLP accuracy", xlabel="epoch", yscale="logit", ylim=(0.3, 0.999))
    acc.set_yticks([0.5, 0.9, 0.95, 0.98, 0.99], labels=["0.5", "0.9", "0.95", "0.98", "0.99"], minor=False)
    acc.set_yticks([], minor=True)
    acc.legend(loc="lower right")
    lr.plot(steps, history.step_lr)
    lr.set(title="learning rate (warmup, then cosine)", xlabel="optimizer step")
    sparse.plot(steps, history.step_sparsity)
    sparse.set(title="sparsity of the dense weights", xlabel="optimizer step", ylim=(0.0, 1.0))
    rnn.plot(np.arange(1, len(history.rnn_loss) + 1), history.rnn_loss)
    rnn.set(title="RNN loss (bptt, next-step MSE)", xlabel="update", yscale="log")
    if history.rnn_example is not None:
        x, target, prediction = history.rnn_example
        wave.plot(x, ".", color="0.6", label="noisy input")
        wave.plot(target, label="next value")
        wave.plot(prediction, "--", label="RNN prediction")
        wave.set(title="RNN on a held-out wave", xlabel="time step", ylim=(-1.5, 2.0))
        wave.legend(loc="upper center", ncols=3, fontsize="small")
    for ax in (loss, acc, lr, sparse, rnn, wave):
        ax.grid(alpha=0.3)
    fig.savefig(path, dpi=80)


# -- the command --------------------------------------------------------------------------


def add_parser(subparsers) -> None:
    """The ``demo`` subcommand of ``gradfast``."""
    p = subparsers.add_parser(
        "demo",
        help="train a small MLP and an RNN with every piece of gradfast, and plot the curves",
        description="Train an MLP on scikit-learn's bundled digits and a vanilla RNN on sine waves, with the\n"
        "dense layers in NumPy and everything else from gradfast; print progress, write a PNG of\n"
        "the curves and end with the line 'test accuracy: 0.XXXX'. Needs the demo extra.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--epochs", type=_int_at_least(1), default=30, metavar="N", help="MLP epochs (default 30)")
    p.add_argument(
        "--seed", type=_int_at_least(0), default=0, metavar="N", help="initialization, dropout, shuffling (default 0)"
    )
    p.add_argument(
        "--optimizer", choices=list(OPTIMIZERS), default="adamw", help="optimizer of the MLP (default adamw)"
    )
    p.add_argument("--lr", type=_rate, metavar="RATE", help="peak learning rate (default: one per optimizer)")
    p.add_argument(
        "--state-dtype",
        choices=("float32", "bfloat16", "8bit"),
        default="float32",
        help=f"the MLP optimizer's state: float32 (default), bfloat16 or 8bit (with {', '.join(LOW_PRECISION)})",
    )
    p.add_argument(
        "--impl",
        choices=("gradfast", "reference"),
        default="gradfast",
        help="train on gradfast (default) or on gradfast.reference, the pure-NumPy twins; "
        "'reference' also times gradfast on the same training",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over MPI (run under mpiexec -n N; needs the mpi extra)",
    )
    p.add_argument(
        "--out",
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"where gradfast-demo.png goes (default: {DEFAULT_OUT}, outside any checkout)",
    )
    p.set_defaults(run=run)


def _int_at_least(lo: int):
    def convert(text: str) -> int:
        if not text.strip().isdigit() or int(text) < lo:
            raise argparse.ArgumentTypeError(f"must be an int >= {lo}, got {text!r}")
        return int(text)

    return convert


def _rate(text: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        rate = float("nan")
    if not 0.0 < rate < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}")
    return rate


def run(args: argparse.Namespace) -> int:
    try:
        import matplotlib  # noqa: F401
        import sklearn  # noqa: F401
        from threadpoolctl import threadpool_limits
    except ImportError as e:
        sys.stderr.write(f'gradfast demo needs the demo extra: pip install "gradfast[demo]" ({e})\n')
        return 2
    if args.lr is None:
        args.lr = OPTIMIZERS[args.optimizer][1]
    args.state_dtype = None if args.state_dtype == "float32" else args.state_dtype
    if args.state_dtype and args.optimizer not in LOW_PRECISION:
        sys.stderr.write(f"gradfast demo: --state-dtype {args.state_dtype} needs one of {', '.join(LOW_PRECISION)}\n")
        return 2
    lib = gradfast.reference if args.impl == "reference" else gradfast
    dist = lib.distributed if args.distributed else None  # its first call needs the mpi extra
    if dist and dist.size() > BATCH // 2:
        sys.stderr.write(f"gradfast demo: --distributed takes at most {BATCH // 2} processes (2 samples each)\n")
        return 2
    rank = dist.rank() if dist else 0

    def log(message: str) -> None:
        if rank == 0:
            print(message, flush=True)

    where = f", {dist.size()} processes" if dist else ""
    state = f", {args.state_dtype} state" if args.state_dtype else ""
    log(f"gradfast demo: {args.impl}, {args.optimizer}{state}, {args.epochs} epochs, seed {args.seed}{where}")
    # These matrices are small: NumPy's BLAS threads would only wait for each other (20x slower
    # on a busy machine). One BLAS thread, and gradfast's pool for its own kernels.
    with threadpool_limits(limits=1, user_api="blas"):
        history = train(lib, args, dist, log)
        if args.impl == "gradfast":
            log(f"time: gradfast {history.seconds:.2f} s")
        else:
            log("the same training on gradfast, for the time ...")
            fast = train(gradfast, args, gradfast.distributed if dist else None, log=lambda message: None)
            log(
                f"time: gradfast {fast.seconds:.2f} s (test accuracy {fast.epoch_test_acc[-1]:.4f}), "
                f"reference {history.seconds:.2f} s ({history.seconds / fast.seconds:.1f}x)"
            )
    if rank == 0:
        os.makedirs(args.out, exist_ok=True)
        path = os.path.join(args.out, "gradfast-demo.png")
        accuracy = history.epoch_test_acc[-1]
        plot(history, path, f"gradfast demo: {args.impl}, {args.optimizer}, test accuracy {accuracy:.4f}")
        log(f"curves: {path}")
    log(f"test accuracy: {history.epoch_test_acc[-1]:.4f}")
    return 0
