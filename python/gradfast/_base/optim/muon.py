"""The declaration of Muon."""

from __future__ import annotations

import math
from typing import Any

from ... import _validate
from ..optimizer import Hyper, Optimizer, forget_packed
from .integer_hyper import IntegerHyper

ADJUST_LR_FNS = ("original", "match_rms_adamw", "spectral_unclamped")
NS_DTYPES = ("bfloat16", "float32")


def adjusted_lr(lr: float, adjust_lr_fn: str | None, shape: tuple[int, ...]) -> float:
    """torch's ``_adjust_lr``: the learning rate of the orthogonalised update of a matrix."""
    a, b = shape[:2]
    if adjust_lr_fn is None or adjust_lr_fn == "original":
        ratio = math.sqrt(max(1, a / b))
    elif adjust_lr_fn == "match_rms_adamw":
        ratio = 0.2 * math.sqrt(max(a, b))
    else:
        ratio = math.sqrt(a / b)
    return lr * ratio


class MuonBase(Optimizer):
    """Muon (Jordan et al., 2024) over a dict of matrices, in place; matches
    ``torch.optim.Muon`` step for step.

    Per matrix ``p`` of shape ``(A, B)``, ``buf`` the ``momentum_buffer`` slot::

        buf = lerp(buf, g, 1 - momentum)
        u = lerp(g, buf, momentum) if nesterov else buf
        X = u rounded to ns_dtype, transposed when A > B;  X = X / max(||X||, epsilon)
        ns_steps times:  G = X X^T;  H = b G + c G G;  X = a X + H X    # (a, b, c) = ns_coefficients
        p = p * (1 - learning_rate * weight_decay) + (-lr_adj) * X      # X transposed back

    ``lr_adj`` is ``learning_rate * sqrt(max(1, A / B))`` (``adjust_lr_fn=None`` or
    ``'original'``), ``0.2 * learning_rate * sqrt(max(A, B))`` (``'match_rms_adamw'``) or
    ``learning_rate * sqrt(A / B)`` (``'spectral_unclamped'``); the weight decay uses the
    unadjusted rate, as torch. ``ns_dtype='bfloat16'`` (the default, as torch) rounds every
    result of the iteration to bfloat16, products summed in float32, so results agree with
    torch's within bfloat16's error; ``ns_dtype='float32'`` runs it in float32 throughout.

    Every array must be 2-D (a ``ValueError`` names the key otherwise): Muon is for the
    hidden layers' matrices. Give biases, norms and embeddings to another optimizer::

        hidden = {k: a for k, a in params.items() if a.ndim == 2 and k != "embed"}
        rest = {k: a for k, a in params.items() if k not in hidden}
        muon, adamw = gf.Muon(0.02), gf.AdamW(3e-4)
        ...
        muon.update(hidden, {k: grads[k] for k in hidden})
        adamw.update(rest, {k: grads[k] for k in rest})
    """

    slots = ("momentum_buffer",)
    hyperparams = (
        "learning_rate",
        "weight_decay",
        "momentum",
        "nesterov",
        "ns_coefficients",
        "epsilon",
        "ns_steps",
        "adjust_lr_fn",
        "ns_dtype",
    )
    weight_decay = Hyper(lo=0.0)
    momentum = Hyper(lo=0.0, hi=1.0)
    nesterov = Hyper(flag=True)
    epsilon = Hyper(lo=0.0)
    ns_steps = IntegerHyper(lo=0, hi=99)

    def __init__(
        self,
        learning_rate: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.775, 2.0315),
        epsilon: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        ns_dtype: str = "bfloat16",
    ) -> None:
        super().__init__(learning_rate)
        self.weight_decay, self.momentum, self.nesterov = weight_decay, momentum, nesterov
        self.ns_coefficients, self.epsilon, self.ns_steps = ns_coefficients, epsilon, ns_steps
        self.adjust_lr_fn, self.ns_dtype = adjust_lr_fn, ns_dtype

    @property
    def ns_coefficients(self) -> tuple[float, float, float]:
        """``(a, b, c)`` of the quintic ``a X + b (X X^T) X + c (X X^T)^2 X``."""
        return self.__dict__["ns_coefficients"]

    @ns_coefficients.setter
    def ns_coefficients(self, value: Any) -> None:
        fn = self._name
        if not isinstance(value, (tuple, list)) or len(value) != 3:
            raise ValueError(f"{fn}: ns_coefficients must be three numbers (a, b, c), got {value!r}")
        a, b, c = (_validate.number(fn, f"ns_coefficients[{i}]", v) for i, v in enumerate(value))
        self.__dict__["ns_coefficients"] = (a, b, c)
        forget_packed(self)

    @property
    def adjust_lr_fn(self) -> str | None:
        """None (as ``'original'``), ``'original'``, ``'match_rms_adamw'`` or ``'spectral_unclamped'``."""
        return self.__dict__["adjust_lr_fn"]

    @adjust_lr_fn.setter
    def adjust_lr_fn(self, value: Any) -> None:
        if value is not None:
            _validate.choice(self._name, "adjust_lr_fn", value, ADJUST_LR_FNS)
        self.__dict__["adjust_lr_fn"] = value
        forget_packed(self)

    @property
    def ns_dtype(self) -> str:
        """The dtype of the Newton-Schulz iteration: ``'bfloat16'`` (torch's) or ``'float32'``."""
        return self.__dict__["ns_dtype"]

    @ns_dtype.setter
    def ns_dtype(self, value: Any) -> None:
        self.__dict__["ns_dtype"] = _validate.choice(self._name, "ns_dtype", value, NS_DTYPES)
        forget_packed(self)

    def _matrices(self, fn: str, params) -> None:
        """Every array of ``params`` must be 2-D."""
        for key, p in _validate.array_dict(fn, "params", params).items():
            shape = getattr(p, "shape", None)
            if shape is not None and len(shape) != 2:
                raise ValueError(
                    f"{fn}: params[{key!r}] must be a 2-D array (Muon orthogonalises matrices: give "
                    f"biases, norms and other arrays to another optimizer such as AdamW), got shape {shape}"
                )

    def _fresh_state(self, params, gradients):
        self._matrices(self._update_name, params)
        return super()._fresh_state(params, gradients)

    def _check_state(self, fn: str, params, gradients, state) -> None:
        self._matrices(fn, params)
        super()._check_state(fn, params, gradients, state)
