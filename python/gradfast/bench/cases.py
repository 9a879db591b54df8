"""The kernels of ``gradfast bench``: one ``register`` each (name, sizes, the traffic the fused
kernel must move, its NumPy baseline, its gradfast call, PyTorch's best CPU equivalent)."""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from .. import _core, average, clip, init, linear, nn, optim, prune, regularization, rnn
from .. import reference as ref
from . import numpy as baseline
from . import peers
from .registry import Case, Kernel, layers, register

#: AdamW's default model in the bench: an MLP's layers (256x64, 256, 256x256, 256, 10x256, 10)
MLP = ((256, 64), (256,), (256, 256), (256,), (10, 256), (10,))


def _torch_params(torch, params, grads):
    tp = [torch.nn.Parameter(torch.from_numpy(p)) for p in params.values()]
    for p, g in zip(tp, grads.values()):
        p.grad = torch.from_numpy(g)
    return tp


def _torch_optimizer(torch, make, params, grads):
    """``make(torch, tensors)`` fused where torch has it on CPU, else its foreach variant."""
    tp = _torch_params(torch, params, grads)
    for kind in ("fused", "foreach"):
        try:
            opt = make(torch, tp, **{kind: True})
            opt.step()
            return opt
        except (RuntimeError, TypeError, ValueError):
            continue
    return None


def optimizer(numpy_cls, gradfast_cls, torch_make=None, **kwargs):
    """``opt.update(params, grads)`` in each impl, with ``kwargs`` for the numpy and gradfast
    classes; ``torch_make(torch, tensors, fused=/foreach=)`` builds the torch peer."""

    def prepare(case: Case, impl: str):
        params, grads = case.arrays_of(0), case.arrays_of(1)
        if impl == "torch":
            torch = peers.torch()
            opt = None if torch is None or torch_make is None else _torch_optimizer(torch, torch_make, params, grads)
            return None if opt is None else (opt.step, None)
        opt = (numpy_cls if impl == "numpy" else gradfast_cls)(**kwargs)
        return partial(opt.update, params, grads), None

    return prepare


def _restore(grads, saved) -> None:
    for g, s in zip(grads.values(), saved):
        np.copyto(g, s)


def clipping(max_norm: float):
    """``clip_grad_norm(grads, max_norm)``. After one call the norm is ``max_norm`` and the next
    would skip its scale pass (gradfast does), so the grads are restored before every timed run."""

    def prepare(case: Case, impl: str):
        grads = case.arrays_of(1)
        saved = [g.copy() for g in grads.values()]
        setup = partial(_restore, grads, saved)
        if impl == "torch":
            torch = peers.torch()
            if torch is None:
                return None
            # clip_grad_norm_ clips the .grad of the tensors it is given
            tensors = _torch_params(torch, grads, grads)
            return partial(torch.nn.utils.clip_grad_norm_, tensors, max_norm, foreach=True), setup
        fn = baseline.numpy_clip_grad_norm if impl == "numpy" else clip.clip_grad_norm
        return partial(fn, grads, max_norm), setup

    return prepare


def _adam(torch, tensors, **kind):
    return torch.optim.Adam(tensors, lr=1e-3, **kind)


def _adamw(torch, tensors, **kind):
    return torch.optim.AdamW(tensors, lr=1e-3, weight_decay=0.01, **kind)


def _sgd(nesterov):
    def make(torch, tensors, **kind):
        return torch.optim.SGD(tensors, lr=0.01, momentum=0.9, nesterov=nesterov, **kind)

    return make


def _state_traffic(slots: int):
    """An optimizer step: params and ``slots`` state arrays read and written, gradients read."""
    return lambda case: [(1 + slots, 1)]


register(
    Kernel(
        "adam",
        "Adam.update: p, m, v read and written, g read",
        cases=(Case("float32", 1, 16_000_000), Case("float32", 400, 2_500), Case("float64", 1, 4_000_000)),
        quick=(Case("float32", 1, 1_000_000), Case("float32", 100, 2_500), Case("float64", 1, 1_000_000)),
        prepare=optimizer(baseline.NumpyAdam, optim.Adam, _adam),
        traffic=_state_traffic(2),
    )
)
register(
    Kernel(
        "adamw",
        "AdamW.update (weight_decay=0.01): Adam's traffic",
        cases=(Case("float32", 1, 16_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
        prepare=optimizer(baseline.NumpyAdamW, optim.AdamW, _adamw),
        traffic=_state_traffic(2),
    )
)
register(
    Kernel(
        "mlp",
        "AdamW.update on an MLP's 6 arrays (85,002 params): where waking threads costs more than it saves",
        cases=(layers("MLP 85,002", "float32", MLP, calls=200),),
        quick=(layers("MLP 85,002", "float32", MLP, calls=20),),
        prepare=optimizer(baseline.NumpyAdamW, optim.AdamW, _adamw),
    )
)
register(
    Kernel(
        "latency",
        "Adam.update on one 10-element array: the cost of a call",
        cases=(Case("float32", 1, 10, calls=20_000),),
        quick=(Case("float32", 1, 10, calls=2_000),),
        prepare=optimizer(baseline.NumpyAdam, optim.Adam, _adam),
    )
)
register(
    Kernel(
        "nesterov",
        "MomentumOptimizer(nesterov=True).update: p, v read and written, g read",
        cases=(Case("float32", 1, 16_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
        prepare=optimizer(baseline.NumpyMomentum, optim.MomentumOptimizer, _sgd(True), nesterov=True),
        traffic=_state_traffic(1),
    )
)
register(
    Kernel(
        "momentum",
        "MomentumOptimizer.update (classical): p, v read and written, g read",
        cases=(Case("float32", 1, 16_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
        prepare=optimizer(baseline.NumpyMomentum, optim.MomentumOptimizer, _sgd(False)),
        traffic=_state_traffic(1),
    )
)
# -- torch.optim's other element-wise optimizers, each on 4 arrays of 4M and on the MLP;
# the NumPy column is gradfast's reference (torch's single-tensor arithmetic in NumPy)
FOUR_BY_4M = (Case("float32", 4, 4_000_000),)
FOUR_BY_1M = (Case("float32", 4, 1_000_000),)


def _peer(name: str, **kw):
    """``torch.optim.<name>(tensors, **kw)``, fused or foreach as ``_torch_optimizer`` asks."""
    return lambda torch, tensors, **kind: getattr(torch.optim, name)(tensors, **kw, **kind)


def _more_optimizers(name, title, numpy_cls, gradfast_cls, torch_make, slots, **kwargs):
    prepare = optimizer(numpy_cls, gradfast_cls, torch_make, **kwargs)
    register(Kernel(name, title, FOUR_BY_4M, FOUR_BY_1M, prepare, _state_traffic(slots)))
    mlp = (layers("MLP 85,002", "float32", MLP, calls=200),)
    quick = (layers("MLP 85,002", "float32", MLP, calls=20),)
    register(Kernel(f"{name}_mlp", f"{title}, on the MLP's 6 arrays", mlp, quick, prepare))


_more_optimizers(
    "adadelta",
    "Adadelta.update: p, square_avg, acc_delta read and written, g read",
    ref.Adadelta,
    optim.Adadelta,
    _peer("Adadelta"),
    2,
)
_more_optimizers(
    "asgd",
    "ASGD(t0=0).update, averaging from the first step: p, ax read and written, g read",
    ref.ASGD,
    optim.ASGD,
    _peer("ASGD", t0=0.0),
    1,
    t0=0.0,
)
_more_optimizers(
    "radam",
    "RAdam.update: p, exp_avg, exp_avg_sq read and written, g read",
    ref.RAdam,
    optim.RAdam,
    _peer("RAdam", lr=1e-3),
    2,
)
_more_optimizers(
    "rprop",
    "Rprop.update: p, prev, step_size read and written, g read",
    ref.Rprop,
    optim.Rprop,
    _peer("Rprop"),
    2,
)
_more_optimizers(
    "sgd",
    "SGD(momentum=0.9).update, torch's rule (the engine of gradfast.torch.SGD): p, momentum_buffer read and "
    "written, g read",
    ref.optim.SGD,
    optim.SGD,
    _peer("SGD", lr=0.01, momentum=0.9),
    1,
    learning_rate=0.01,
    momentum=0.9,
)
for name, cls, moves, kwargs, slots in (
    ("adagrad", "Adagrad", "p, sum read and written, g read", {}, 1),
    ("adamax", "Adamax", "p, exp_avg, exp_inf read and written, g read", {}, 2),
    ("nadam", "NAdam", "p, exp_avg, exp_avg_sq read and written, g read", {}, 2),
    ("rmsprop", "RMSprop", "p, square_avg read and written, g read", {}, 1),
    ("rmsprop_centered", "RMSprop", "p and 3 buffers read and written, g read", {"momentum": 0.9, "centered": True}, 3),
):
    call = f"{cls}({', '.join(f'{k}={v}' for k, v in kwargs.items())}).update"
    _more_optimizers(
        name, f"{call}: {moves}", getattr(ref, cls), getattr(optim, cls), _peer(cls, **kwargs), slots, **kwargs
    )


def _lion(torch, tensors, **kind):
    """``lion_pytorch.Lion`` (plain torch ops: it has no fused or foreach variant); without it
    installed, a ``RuntimeError``, which leaves the peer out."""
    try:
        from lion_pytorch import Lion  # type: ignore[import-untyped]
    except ImportError as e:
        raise RuntimeError("lion_pytorch is not installed") from e
    return Lion(tensors, lr=1e-4, weight_decay=0.1)


register(
    Kernel(
        "lion",
        "Lion.update (weight_decay=0.1): p, exp_avg read and written, g read",
        cases=(Case("float32", 4, 4_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
        prepare=optimizer(ref.Lion, optim.Lion, _lion, learning_rate=1e-4, weight_decay=0.1),
        traffic=_state_traffic(1),
    )
)
register(
    Kernel(
        "adafactor",
        "Adafactor.update on 2000 x 2000 matrices: p read (its norm) and read and written, g read 3 times "
        "(row and column norms, the update's norm, the update), m + n state values per matrix",
        cases=(layers("4 x 2000 x 2000", "float32", ((2000, 2000),) * 4),),
        quick=(layers("4 x 500 x 500", "float32", ((500, 500),) * 4),),
        prepare=optimizer(ref.Adafactor, optim.Adafactor, _peer("Adafactor", lr=1e-2), learning_rate=1e-2),
        traffic=lambda case: [(1, 4)],
    )
)


def _muon(case: Case, impl: str):
    """``Muon.update``; the peer ``torch.optim.Muon`` built without a trial step (it has no
    fused or foreach variant to choose, and its step is slow: see the kernel's title)."""
    if impl != "torch":
        return optimizer(ref.Muon, optim.Muon, learning_rate=1e-3)(case, impl)
    torch = peers.torch()
    if torch is None:
        return None
    return torch.optim.Muon(_torch_params(torch, case.arrays_of(0), case.arrays_of(1)), lr=1e-3).step, None


register(
    Kernel(
        "muon",
        "Muon.update (bfloat16 Newton-Schulz, 5 steps) on two 1024 x 1024 and one 1024 x 4096 matrices: "
        "GEMM-bound, no roofline; 2 runs at most, torch's bfloat16 GEMM taking minutes a step on CPUs "
        "without AVX512_BF16 (the quick case takes seconds)",
        cases=(layers("2 x 1024^2 + 1024 x 4096", "float32", ((1024, 1024), (1024, 1024), (1024, 4096))),),
        quick=(layers("2 x 128^2 + 128 x 512", "float32", ((128, 128), (128, 128), (128, 512))),),
        prepare=_muon,
        most_runs=2,
    )
)


def _schedule_free(torch, tensors, **kind):
    """``schedulefree.AdamWScheduleFree`` in train mode (plain torch ops, ``foreach`` as asked);
    it divides ``p.grad`` in place, so it gets its own copies. Without it installed, a
    ``RuntimeError``, which leaves the peer out."""
    try:
        import schedulefree  # type: ignore[import-untyped]
    except ImportError as e:
        raise RuntimeError("schedulefree is not installed") from e
    if "foreach" not in kind:
        raise TypeError("schedulefree has no fused variant")
    for t in tensors:
        t.grad = t.grad.clone()
    opt = schedulefree.AdamWScheduleFree(tensors, lr=2.5e-3, **kind)
    opt.train()
    return opt


register(
    Kernel(
        "schedulefree",
        "ScheduleFreeAdamW.update (train mode): y (= p), z, exp_avg_sq read and written, g read",
        cases=(Case("float32", 4, 4_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
        prepare=optimizer(ref.ScheduleFreeAdamW, optim.ScheduleFreeAdamW, _schedule_free, learning_rate=2.5e-3),
        traffic=_state_traffic(2),
    )
)
# -- low-precision state: one Adam at three operating points, side by side. The NumPy column
# is gradfast.reference (the specification); PyTorch's only for float32 and all-bfloat16.

#: the operating points: (params dtype, the optimizer's state keywords, label with the state's
#: bytes per param); bfloat16 state by nearest and by stochastic rounding side by side
_BF16: dict[str, Any] = {"state_dtype": "bfloat16"}
LOWPREC_POINTS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("float32", {}, "f32 state 8 B/param"),
    ("float32", _BF16, "bf16 state 4 B/param"),
    ("float32", {**_BF16, "rounding": "stochastic", "seed": 0}, "bf16 state stochastic rounding 4 B/param"),
    ("float32", {"state_dtype": "8bit"}, "8-bit state 2.03 B/param"),
    ("bfloat16", _BF16, "all bf16 4 B/param"),
)
#: each case's state keywords (its params' dtype is the case's)
LOWPREC = {Case(d, 1, 16_000_000, name=f"16,000,000 {label}"): kw for d, kw, label in LOWPREC_POINTS}
LOWPREC_QUICK = {Case(d, 1, 1_000_000, name=f"1,000,000 {label}"): kw for d, kw, label in LOWPREC_POINTS}


def _torch_tensor(torch, a: np.ndarray):
    if a.dtype == np.float32:
        return torch.from_numpy(a)
    return torch.from_numpy(a.view(np.int16)).view(torch.bfloat16)  # bfloat16 bits, shared


def lowprec_adam(case: Case, impl: str):
    """``Adam(1e-3, **state keywords).update(params, grads)`` at the case's operating point."""
    state = {**LOWPREC, **LOWPREC_QUICK}[case]
    params, grads = case.arrays_of(0), case.arrays_of(1)
    if impl == "torch":
        torch = peers.torch()
        if torch is None or (state and case.dtype == "float32"):
            return None  # torch keeps Adam's state in the params' dtype
        tp = [torch.nn.Parameter(_torch_tensor(torch, p)) for p in params.values()]
        for t, g in zip(tp, grads.values()):
            t.grad = _torch_tensor(torch, g)
        opt = torch.optim.Adam(tp, lr=1e-3, fused=True)
        opt.step()
        return opt.step, None
    if impl == "numpy":
        from ..reference import optim as ref_optim

        return partial(ref_optim.Adam(1e-3, **state).update, params, grads), None
    return partial(optim.Adam(1e-3, **state).update, params, grads), None


def _lowprec_traffic(case: Case):
    # in arrays of the params' dtype: p and g, and m and v (half as wide for f32 params with
    # bf16 state, a quarter with 8-bit state: its block maxima are 1/64 more)
    state_dtype = {**LOWPREC, **LOWPREC_QUICK}[case].get("state_dtype")
    if state_dtype == "8bit":
        return [(1, 2)]
    return [(2, 1)] if state_dtype and case.dtype == "float32" else [(3, 1)]


register(
    Kernel(
        "adam_lowprec",
        "Adam.update with float32, bfloat16 (nearest and stochastic rounding) and 8-bit state, and all bfloat16 "
        "(28, 20, 20, 16, 12 bytes moved per param)",
        cases=tuple(LOWPREC),
        quick=tuple(LOWPREC_QUICK),
        prepare=lowprec_adam,
        traffic=_lowprec_traffic,
    )
)
register(
    Kernel(
        "clip",
        "clip_grad_norm(grads, max_norm=1.0): every array read for the norm, then scaled in place",
        cases=(Case("float32", 4, 4_000_000),),
        quick=(Case("float32", 4, 250_000),),
        prepare=clipping(1.0),
        traffic=lambda case: [(0, 1), (1, 0)],
    )
)


def to_bfloat16(case: Case, impl: str):
    """``compression='bf16'``'s encoding pass: float32 gradients packed as bfloat16 bits."""
    x = case.arrays_of(0)["w0"]
    if impl == "torch":
        torch = peers.torch()
        if torch is None:
            return None
        out = torch.empty(x.size, dtype=torch.bfloat16)
        return partial(out.copy_, torch.from_numpy(x)), None
    bucket = np.empty(x.size, np.uint16)
    if impl == "numpy":
        return partial(baseline.NumpyToBfloat16(x.size), x, bucket), None
    return partial(_core.pack, "bench", [x], bucket), None


register(
    Kernel(
        "bf16",
        "float32 to bfloat16 bits, rounded to nearest even (distributed's bf16 packing): 4 bytes read, 2 written",
        cases=(Case("float32", 1, 16_000_000),),
        quick=(Case("float32", 1, 1_000_000),),
        prepare=to_bfloat16,
    )
)


# -- layer-wise optimizers and adaptive clipping. Their NumPy column is gradfast.reference (the
# specification in plain NumPy); PyTorch has none of them.


def reference(name: str, method: str = "update", **kwargs):
    """``getattr(cls(**kwargs), method)(params, grads)`` with the class ``name`` of
    ``gradfast.reference.optim`` (numpy) or ``gradfast.optim`` (gradfast)."""

    def prepare(case: Case, impl: str):
        if impl == "torch":
            return None
        from ..reference import optim as ref_optim

        opt = getattr(ref_optim if impl == "numpy" else optim, name)(**kwargs)
        return partial(getattr(opt, method), case.arrays_of(0), case.arrays_of(1)), None

    return prepare


def agc(clipping: float):
    """``adaptive_grad_clip(grads, params, clipping)``; it clips in place, so the grads are
    restored before every timed run."""

    def prepare(case: Case, impl: str):
        if impl == "torch":
            return None
        from ..reference import clip as ref_clip

        params, grads = case.arrays_of(0), case.arrays_of(1)
        saved = [g.copy() for g in grads.values()]
        fn = ref_clip.adaptive_grad_clip if impl == "numpy" else clip.adaptive_grad_clip
        return partial(fn, grads, params, clipping), partial(_restore, grads, saved)

    return prepare


def adaptive_clipper(case: Case, impl: str):
    """``AdaptiveClipper(1.0, 0.01).clip_gradients(grads)``: every array over the threshold
    comes back as a new, clipped copy."""
    if impl == "torch":
        return None
    from ..reference import clip as ref_clip

    clipper = (ref_clip if impl == "numpy" else clip).AdaptiveClipper(1.0, 0.01)
    return partial(clipper.clip_gradients, case.arrays_of(1)), None


LAYERWISE = (Case("float32", 4, 4_000_000),)
LAYERWISE_QUICK = (Case("float32", 4, 250_000),)

register(
    Kernel(
        "lamb",
        "LAMB.update: moments and norms (p, g read; m, v read and written), then p moved (m, v read)",
        cases=LAYERWISE,
        quick=LAYERWISE_QUICK,
        prepare=reference("LAMB", learning_rate=1e-3),
        traffic=lambda case: [(2, 2), (1, 2)],
    )
)
register(
    Kernel(
        "lars",
        "LARS.update: norms of p and g, then momentum's pass (p, v read and written, g read)",
        cases=LAYERWISE,
        quick=LAYERWISE_QUICK,
        prepare=reference("LARS", learning_rate=0.1),
        traffic=lambda case: [(0, 2), (2, 1)],
    )
)
register(
    Kernel(
        "layer_adaptive",
        "LayerAdaptiveLR.apply_gradients: square_avg read and written, p and g read, new arrays written",
        cases=LAYERWISE,
        quick=LAYERWISE_QUICK,
        prepare=reference("LayerAdaptiveLR", "apply_gradients", base_lr=0.01),
        traffic=lambda case: [(2, 2)],
    )
)
register(
    Kernel(
        "agc",
        "adaptive_grad_clip(grads, params, 0.01): unit norms of p and g, then every unit scaled in place",
        cases=LAYERWISE,
        quick=LAYERWISE_QUICK,
        prepare=agc(0.01),
        traffic=lambda case: [(0, 2), (1, 0)],
    )
)
register(
    Kernel(
        "adaptive_clipper",
        "AdaptiveClipper.clip_gradients: every array read for its norm, then a clipped copy written",
        cases=LAYERWISE,
        quick=LAYERWISE_QUICK,
        prepare=adaptive_clipper,
        traffic=lambda case: [(0, 1), (1, 1)],
    )
)


# -- layers, initialization and regularization: the NumPy baseline is gradfast.reference ----


def _shaped(dtype: str, shape: tuple[int, ...], calls: int = 1) -> Case:
    """One array of ``shape`` (a layer's input)."""
    return Case(dtype, 1, int(np.prod(shape)), calls, (shape,), " x ".join(map(str, shape)))


def _layer_step(make, torch_step):
    """``forward(x)`` then ``backward(g)`` on ``make(module, x)``; ``torch_step(torch, x, g)``
    builds PyTorch's autograd forward and backward."""

    def prepare(case: Case, impl: str):
        x, g = case.arrays_of(0)["w0"], case.arrays_of(1)["w0"]
        if impl == "torch":
            torch = peers.torch()
            return None if torch is None else (torch_step(torch, x, g), None)
        layer = make(ref if impl == "numpy" else nn, x)
        return (lambda: (layer.forward(x), layer.backward(g))), None

    return prepare


def _torch_batchnorm(torch, x, g):
    bn = torch.nn.BatchNorm1d(x.shape[1], dtype=getattr(torch, str(x.dtype)))
    tx, tg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(g)

    def step():
        tx.grad = None
        bn.zero_grad()
        bn(tx).backward(tg)

    return step


def _torch_dropout(torch, x, g):
    tx, tg = torch.from_numpy(x).requires_grad_(), torch.from_numpy(g)

    def step():
        tx.grad = None
        torch.nn.functional.dropout(tx, 0.5, training=True).backward(tg)

    return step


def _he_normal(case: Case, impl: str):
    (shape,) = case.shapes or ((case.size,),)
    if impl == "torch":
        torch = peers.torch()
        if torch is None:
            return None
        w = torch.empty(shape, dtype=getattr(torch, case.dtype))
        return partial(torch.nn.init.kaiming_normal_, w), None
    fn = (ref if impl == "numpy" else init).initialize_weights
    return partial(fn, [shape[1], shape[0]], "he", seed=0, dtype=case.dtype), None


def _elastic_net(case: Case, impl: str):
    if impl == "torch":
        return None
    fn = (ref if impl == "numpy" else regularization).compute_regularization
    return partial(fn, case.arrays_of(0), 0.01, 0.01), None


register(
    Kernel(
        "batchnorm",
        "BatchNorm forward + backward (training): x read twice, g and x twice more, out and grad_x written",
        cases=(
            _shaped("float32", (4096, 1024)),
            _shaped("float32", (32, 256, 1024)),
            _shaped("float32", (128, 256), calls=200),
        ),
        quick=(_shaped("float32", (1024, 1024)), _shaped("float32", (128, 256), calls=20)),
        prepare=_layer_step(lambda m, x: m.BatchNorm(x.shape[1], dtype=x.dtype), _torch_batchnorm),
        traffic=lambda case: [(0, 1), (1, 1), (0, 2), (1, 2)],
    )
)
register(
    Kernel(
        "dropout",
        "Dropout(0.5) forward + backward: x and g read, out and grad_x written, a byte mask between",
        cases=(_shaped("float32", (4096, 4096)), _shaped("float32", (128, 256), calls=200)),
        quick=(_shaped("float32", (1024, 1024)), _shaped("float32", (128, 256), calls=20)),
        prepare=_layer_step(lambda m, x: m.Dropout(0.5, seed=0), _torch_dropout),
        traffic=lambda case: [(1, 1), (1, 1)],
    )
)
register(
    Kernel(
        "init",
        "initialize_weights He normal: one layer drawn (compute-bound: two hashes, ln, cos, sqrt each)",
        cases=(_shaped("float32", (4096, 4096)),),
        quick=(_shaped("float32", (1000, 1000)),),
        prepare=_he_normal,
    )
)
register(
    Kernel(
        "regularization",
        "compute_regularization: every array read once, its gradient written",
        cases=(Case("float32", 4, 4_000_000),),
        quick=(Case("float32", 4, 250_000),),
        prepare=_elastic_net,
        traffic=lambda case: [(1, 1)],
    )
)


# -- pruning. The NumPy column is the reference (np.percentile); PyTorch's is its usual recipe.


def _torch_prune(torch, weights, ratio):
    """The k-th smallest magnitude (``kthvalue``, k = ratio * n) as the threshold, then a
    masked copy."""
    out = {}
    for key, w in weights.items():
        t = torch.from_numpy(w)
        a = t.abs()
        k = max(1, int(ratio * a.numel()))
        out[key] = t * (a > a.flatten().kthvalue(k).values)
    return out


def pruning(ratio: float):
    """``prune_network(weights, ratio)``."""

    def prepare(case: Case, impl: str):
        weights = case.arrays_of(0)
        if impl == "torch":
            torch = peers.torch()
            return None if torch is None else (partial(_torch_prune, torch, weights, ratio), None)
        fn = ref.prune_network if impl == "numpy" else prune.prune_network
        return partial(fn, weights, ratio), None

    return prepare


register(
    Kernel(
        "prune",
        "prune_network(weights, 0.3): the exact np.percentile threshold by selection, then a pruned copy",
        cases=(Case("float32", 1, 16_000_000), Case("float32", 400, 40_000), Case("float64", 1, 4_000_000)),
        quick=(Case("float32", 1, 1_000_000), Case("float32", 100, 10_000)),
        prepare=pruning(0.3),
        # the weights read for the threshold, then read again and copied
        traffic=lambda case: [(0, 1), (1, 1)],
    )
)


#: bptt's sizes by case name: (T, B, I, H, O), the issue's small and medium RNNs
RNN_SIZES = {"T=200 B=1 I=16 H=32 O=8": (200, 1, 16, 32, 8), "T=100 B=32 I=64 H=128 O=16": (100, 32, 64, 128, 16)}


def _rnn_case(name: str, dtype: str, calls: int = 1) -> Case:
    T, B, I, H, O = RNN_SIZES[name]  # noqa: E741
    return Case(dtype, 1, T * B * (I + H + O), calls, name=name)


def recurrent(case: Case, impl: str):
    """Loss and gradients of a tanh RNN with a linear head over the whole sequence: ``bptt`` in
    gradfast and the reference, ``nn.RNN`` (tanh, no bias) and ``nn.Linear`` forward and
    backward in PyTorch."""
    T, B, I, H, O = RNN_SIZES[case.label]  # noqa: E741
    rng = np.random.default_rng(0)
    x = rng.standard_normal((T, I, B)).astype(case.dtype)
    y = rng.standard_normal((T, O, B)).astype(case.dtype)
    h0 = (0.1 * rng.standard_normal((H, B))).astype(case.dtype)
    w = {
        "Wx": (rng.standard_normal((H, I)) / np.sqrt(I)).astype(case.dtype),
        "Wh": (rng.standard_normal((H, H)) / np.sqrt(H)).astype(case.dtype),
        "Wy": (rng.standard_normal((O, H)) / np.sqrt(H)).astype(case.dtype),
    }
    if impl != "torch":
        fn = ref.bptt if impl == "numpy" else rnn.bptt
        return partial(fn, x, y, h0, w, T), None
    torch = peers.torch()
    if torch is None:
        return None
    dtype = getattr(torch, case.dtype)
    net = torch.nn.RNN(I, H, bias=False, nonlinearity="tanh").to(dtype)
    head = torch.nn.Linear(H, O, bias=False).to(dtype)
    xs = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 1)))  # (T, B, I)
    ys = torch.from_numpy(np.ascontiguousarray(y.transpose(0, 2, 1)))
    hs = torch.from_numpy(np.ascontiguousarray(h0.T))[None]

    def step():
        net.zero_grad()
        head.zero_grad()
        out, _ = net(xs, hs)
        ((head(out) - ys) ** 2).mean().backward()

    return step, None


register(
    Kernel(
        "bptt",
        "bptt: loss and Wx, Wh, Wy gradients of a tanh RNN over the whole sequence (torch: nn.RNN + Linear)",
        cases=tuple(_rnn_case(n, d) for n in RNN_SIZES for d in ("float32", "float64")),
        quick=(_rnn_case("T=200 B=1 I=16 H=32 O=8", "float32"),),
        prepare=recurrent,
    )
)


def least_squares(kernel: str, fn: str, title: str, dtype: str, rows: tuple[int, int], d: int = 64, **kwargs):
    """Registers ``fn`` (``gradient_descent`` or ``sgd_optimizer``) on ``X`` ``(n, d)``, ``w``
    ``(d, 1)``, from zero weights every call, with ``n`` of ``rows`` (full run, quick run);
    no PyTorch peer (it has no such loop)."""

    def prepare(case: Case, impl: str):
        if impl == "torch":
            return None
        rng = np.random.default_rng(0)
        X = rng.standard_normal((case.size // d, d)).astype(case.dtype)
        y = X @ rng.standard_normal((d, 1)).astype(case.dtype)
        w = np.zeros((d, 1), dtype=case.dtype)
        run = getattr(ref if impl == "numpy" else linear, fn)
        return partial(run, X, y, w, 0.01, **kwargs), partial(w.fill, 0.0)

    full, quick = (Case(dtype, 1, n * d, name=f"{n:,} x {d}") for n in rows)
    register(Kernel(kernel, title, cases=(full,), quick=(quick,), prepare=prepare))


least_squares(
    "gradient_descent",
    "gradient_descent",
    "gradient_descent(X, y, w, 0.01, epochs=50), X of n x 64: two passes over X per epoch in NumPy, one here",
    "float64",
    (20_000, 2_000),
    epochs=50,
)
least_squares(
    "gradient_descent_narrow",
    "gradient_descent",
    "gradient_descent(X, y, w, 0.01, epochs=50), X of n x 8: down the columns of X transposed",
    "float32",
    (5_000, 1_000),
    d=8,
    epochs=50,
)
least_squares(
    "sgd_optimizer",
    "sgd_optimizer",
    "sgd_optimizer(X, y, w, 0.01, 32, 0.9, epochs=1), X of n x 64: every mini-batch of 32 rows in one call",
    "float64",
    (20_000, 2_000),
    batch_size=32,
    momentum=0.9,
    epochs=1,
    seed=0,
)


def total_norm(case: Case, impl: str):
    """``get_total_norm(grads)``: every array read once."""
    grads = case.arrays_of(1)
    if impl == "torch":
        torch = peers.torch()
        if torch is None:
            return None
        tensors = [torch.from_numpy(g) for g in grads.values()]
        return partial(torch.nn.utils.get_total_norm, tensors, 2.0, foreach=True), None
    fn = baseline.numpy_total_norm if impl == "numpy" else clip.get_total_norm
    return partial(fn, grads), None


register(
    Kernel(
        "get_total_norm",
        "get_total_norm(grads): the global 2-norm, every array read once",
        cases=(Case("float32", 4, 4_000_000), layers("MLP", "float32", MLP)),
        quick=(Case("float32", 4, 250_000),),
        prepare=total_norm,
        traffic=lambda case: [(0, 1)],
    )
)


def value_clipping(case: Case, impl: str):
    """``clip_grad_value(grads, 0.5)``: clamped in place (the same work on every call)."""
    grads = case.arrays_of(1)
    if impl == "torch":
        torch = peers.torch()
        if torch is None:
            return None
        tensors = _torch_params(torch, grads, grads)  # clip_grad_value_ clamps their .grad
        return partial(torch.nn.utils.clip_grad_value_, tensors, 0.5, foreach=True), None
    fn = baseline.numpy_clip_grad_value if impl == "numpy" else clip.clip_grad_value
    return partial(fn, grads, 0.5), None


register(
    Kernel(
        "clip_grad_value",
        "clip_grad_value(grads, 0.5): every array clamped in place in one pass (torch: two)",
        cases=(Case("float32", 4, 4_000_000), layers("MLP", "float32", MLP)),
        quick=(Case("float32", 4, 250_000),),
        prepare=value_clipping,
        traffic=lambda case: [(1, 0)],
    )
)


def accumulation(case: Case, impl: str):
    """``Accumulate(Adam(), steps).update`` inside a cycle (steps far beyond the calls timed):
    the gradients added to the sums in place (torch: ``_foreach_add_``)."""
    grads = case.arrays_of(1)
    if impl == "torch":
        torch = peers.torch()
        if torch is None:
            return None
        sums = [torch.from_numpy(g.copy()) for g in grads.values()]
        return partial(torch._foreach_add_, sums, [torch.from_numpy(g) for g in grads.values()]), None
    params = case.arrays_of(0)
    module = ref if impl == "numpy" else average
    acc = module.Accumulate((ref.Adam if impl == "numpy" else optim.Adam)(1e-3), 2**62)
    acc.update(params, grads)  # the first call of a cycle copies; time the sums
    return partial(acc.update, params, grads), None


register(
    Kernel(
        "accumulate",
        "Accumulate(Adam(), steps).update inside a cycle: every sum read and written, every gradient read",
        cases=(Case("float32", 4, 4_000_000), layers("MLP", "float32", MLP)),
        quick=(Case("float32", 4, 250_000),),
        prepare=accumulation,
        traffic=lambda case: [(1, 1)],
    )
)


def ema_update(case: Case, impl: str):
    """``EMA(0.999).update(params)`` after the first (copying) call: the average moved toward
    the weights in place."""
    params = case.arrays_of(0)
    if impl == "torch":
        torch = peers.torch()
        if torch is None:
            return None
        averaged = [torch.from_numpy(p.copy()) for p in params.values()]
        current = [torch.from_numpy(p) for p in params.values()]
        return partial(torch._foreach_lerp_, averaged, current, 1 - 0.999), None
    ema = (ref.EMA if impl == "numpy" else average.EMA)(0.999)
    ema.update(params)
    return partial(ema.update, params), None


register(
    Kernel(
        "ema",
        "EMA(0.999).update(params): every average read and written, every weight read",
        cases=(Case("float32", 4, 4_000_000), layers("MLP", "float32", MLP)),
        quick=(Case("float32", 4, 250_000),),
        prepare=ema_update,
        traffic=lambda case: [(1, 1)],
    )
)
