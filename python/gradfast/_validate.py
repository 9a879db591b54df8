"""Argument validation shared by both implementations (Rust-backed and reference).

Every message has the shape ``"{function}: {argument} must be {expected}, got {actual}"``
so that the Rust bindings and the reference raise the same errors for the same mistakes.
All checks run before any array is written.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence

import numpy as np

try:  # NumPy >= 2.0
    from numpy.lib.array_utils import byte_bounds as _byte_bounds
except ImportError:  # pragma: no cover - NumPy 1.x
    from numpy import byte_bounds as _byte_bounds  # type: ignore[attr-defined,no-redef]

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_BF16: np.dtype | None = None


def bf16() -> np.dtype:
    """``ml_dtypes.bfloat16``, which the optimizers with low-precision state also take. ml_dtypes
    is imported on first use: it costs more than the rest of ``import gradfast``."""
    global _BF16
    if _BF16 is None:
        import ml_dtypes

        _BF16 = np.dtype(ml_dtypes.bfloat16)
    return _BF16


def is_bf16(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is bfloat16, without importing ml_dtypes: until something has imported
    it, no array can have that dtype."""
    return "ml_dtypes" in sys.modules and dtype == bf16()


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"array of dtype {a.dtype} and shape {a.shape}"
    return type(a).__name__


def ndarray(fn: str, name: str, a: object) -> np.ndarray:
    """``a`` must be an ndarray under gradfast's subclass policy: a subclass whose arithmetic
    is ndarray's (``np.memmap``) is used as it is; ``np.ma.MaskedArray`` (its mask would be
    written through) and ``np.matrix`` (its ``*`` is a matrix product) are refused."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got {_describe(a)}")
    if type(a) is not np.ndarray:
        if isinstance(a, np.ma.MaskedArray):
            raise TypeError(
                f"{fn}: {name} must be a numpy.ndarray, got a numpy.ma.MaskedArray, whose mask "
                f"gradfast does not follow (pass its data, e.g. np.ma.getdata(a), and re-apply the mask)"
            )
        if isinstance(a, np.matrix):
            raise TypeError(f"{fn}: {name} must be a numpy.ndarray, got a numpy.matrix (pass np.asarray(m))")
    return a


def float_array(fn: str, name: str, a: object, *, writeable: bool = False, bf16: bool = False) -> np.ndarray:
    """Check that ``a`` is a float32/float64 ndarray (or bfloat16 where ``bf16``); outputs must
    also be C-contiguous and writeable."""
    a = ndarray(fn, name, a)
    if a.dtype not in FLOAT_DTYPES and not (bf16 and is_bf16(a.dtype)):
        expected = "float32, float64 or bfloat16" if bf16 else "float32 or float64"
        raise TypeError(f"{fn}: {name} must have dtype {expected}, got {a.dtype}")
    if writeable:
        if not a.flags.c_contiguous:
            raise ValueError(
                f"{fn}: {name} must be C-contiguous, got a non-contiguous array (use np.ascontiguousarray)"
            )
        if not a.flags.writeable:
            raise ValueError(f"{fn}: {name} must be writeable, got a read-only array")
    return a


def same_dtype(fn: str, name: str, a: np.ndarray, dtype: np.dtype) -> None:
    if a.dtype != dtype:
        raise TypeError(f"{fn}: {name} must have dtype {dtype} like the others, got {a.dtype}")


def same_shape(fn: str, name: str, a: np.ndarray, shape: tuple[int, ...]) -> None:
    if a.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {a.shape}")


def no_alias(fn: str, name: str, a: np.ndarray, other_name: str, other: np.ndarray) -> None:
    if np.may_share_memory(a, other):
        raise ValueError(f"{fn}: {name} must not share memory with {other_name}, got overlapping arrays")


def no_overlaps(fn: str, written, read=()) -> None:
    """No array of ``written`` may share memory with any other array of ``written`` or ``read``.

    ``written`` and ``read`` are sequences of ``(name, array)``. Equivalent to calling
    ``np.may_share_memory`` (a memory-bounds test) on every pair with at least one written
    array, but a sort-and-sweep over the bounds keeps it O(n log n) for large models.
    """
    spans = []
    for writes, items in ((True, written), (False, read)):
        for name, a in items:
            if a.size:  # an empty array shares no memory with anything
                lo, hi = _byte_bounds(a)
                spans.append((lo, hi, writes, name, a))
    spans.sort(key=lambda s: s[0])
    active: list = []
    for lo, hi, writes, name, a in spans:
        active = [s for s in active if s[1] > lo]
        for _, _, other_writes, other_name, other in active:
            if writes or other_writes:
                if writes:
                    no_alias(fn, name, a, other_name, other)
                else:
                    no_alias(fn, other_name, other, name, a)
        active.append((lo, hi, writes, name, a))


def mapping(fn: str, name: str, d: object, what: str) -> Mapping:
    """A dict argument: any ``collections.abc.Mapping`` (read through its own ``__getitem__``)."""
    if not isinstance(d, Mapping):
        raise TypeError(f"{fn}: {name} must be a dict of {what}, got {_describe(d)}")
    return d


def array_dict(fn: str, name: str, d: object) -> Mapping[str, np.ndarray]:
    return mapping(fn, name, d, "numpy arrays")


def like_state(fn: str, name: str, a: np.ndarray, s: np.ndarray) -> None:
    """``a`` must have the shape and dtype of the state array ``s`` made for it."""
    if s.shape != a.shape or s.dtype != a.dtype:
        raise ValueError(
            f"{fn}: {name} must have shape {s.shape} and dtype {s.dtype} as when the optimizer "
            f"state was created, got shape {a.shape} and dtype {a.dtype}"
        )


def float_dict(fn: str, name: str, d: object) -> tuple[Mapping[str, np.ndarray], np.dtype | None]:
    """A dict of float32/float64 arrays sharing one dtype (read-only inputs); returns it and the dtype."""
    d = array_dict(fn, name, d)
    dtype = None
    for key, a in d.items():
        float_array(fn, f"{name}[{key!r}]", a)
        dtype = dtype or a.dtype
        same_dtype(fn, f"{name}[{key!r}]", a, dtype)
    return d, dtype


def float_dtype_arg(fn: str, dtype: object) -> np.dtype:
    """A ``dtype=`` argument naming float32 or float64."""
    try:
        dt = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError:
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:
        raise TypeError(f"{fn}: dtype must be float32 or float64, got {dtype!r}")
    return dt


def matching_keys(fn: str, name: str, d: Mapping, ref_name: str, ref: Mapping) -> None:
    """``d`` must have exactly the keys of ``ref``."""
    for key in ref:
        if key not in d:
            raise ValueError(f"{fn}: {name} must have key {key!r} like {ref_name}, got it missing")
    for key in d:
        if key not in ref:
            raise ValueError(f"{fn}: {name} must have only the keys of {ref_name}, got extra key {key!r}")


def params_and_grads(
    fn: str, params: object, grads: object, pname: str = "params", gname: str = "gradients", *, bf16: bool = False
) -> np.dtype | None:
    """Validate a params dict (written in place) against its gradients dict (bfloat16 arrays
    allowed where ``bf16``).

    Returns the common dtype, or None for an empty dict.
    """
    params = array_dict(fn, pname, params)
    grads = array_dict(fn, gname, grads)
    matching_keys(fn, gname, grads, pname, params)
    dtype = None
    for key, p in params.items():
        g = grads[key]
        float_array(fn, f"{pname}[{key!r}]", p, writeable=True, bf16=bf16)
        float_array(fn, f"{gname}[{key!r}]", g, bf16=bf16)
        if dtype is None:
            dtype = p.dtype
        same_dtype(fn, f"{pname}[{key!r}]", p, dtype)
        same_dtype(fn, f"{gname}[{key!r}]", g, dtype)
        same_shape(fn, f"{gname}[{key!r}]", g, p.shape)
    no_overlaps(
        fn,
        [(f"{pname}[{k!r}]", p) for k, p in params.items()],
        [(f"{gname}[{k!r}]", g) for k, g in grads.items()],
    )
    return dtype


def number(
    fn: str,
    name: str,
    value: object,
    *,
    lo: float | None = None,
    hi: float | None = None,
    lo_open: bool = False,
    hi_open: bool = False,
) -> float:
    """A finite real hyper-parameter within [lo, hi] (ends open where asked)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf  # an int beyond float64: out of range below
    left = "(" if lo_open else "["
    right = ")" if hi_open else "]"
    rng = f"in {left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
    bad = not math.isfinite(v)
    if lo is not None and (v < lo or (lo_open and v == lo)):
        bad = True
    if hi is not None and (v > hi or (hi_open and v == hi)):
        bad = True
    if bad:
        raise ValueError(f"{fn}: {name} must be a finite number {rng}, got {value!r}")
    return v


def real(fn: str, name: str, value: object) -> float:
    """Any real number, infinities and NaN included (a metric, a norm already computed)."""
    if isinstance(value, bool) or not hasattr(value, "__float__") or isinstance(value, (str, bytes)):
        raise TypeError(f"{fn}: {name} must be a real number, got {type(value).__name__}")
    return float(value)  # type: ignore[arg-type,unused-ignore]


def flag(fn: str, name: str, value: object) -> bool:
    """A bool argument (``np.bool_`` too); anything else is a ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{fn}: {name} must be a bool, got {type(value).__name__}")
    return bool(value)


#: the largest int an integer argument may be unless its own bound says otherwise: counts
#: (steps, epochs, sizes) beyond it could never be reached, and they overflow float64 and
#: uint64 arithmetic past it
MAX_INT = 2**62


def integer(
    fn: str, name: str, value: object, *, lo: int | None = None, hi: int | None = None, unbounded: bool = False
) -> int:
    """An int (or NumPy integer, not a bool) in ``[lo, hi]``; ``hi`` defaults to ``MAX_INT``,
    and ``unbounded`` lifts it, only for a count clamped before use (a batch larger than the
    data is all of it)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an int, got {type(value).__name__}")
    top = None if unbounded else MAX_INT if hi is None else hi
    too_low = lo is not None and value < lo
    if too_low or (top is not None and value > top):
        if hi is not None:
            rng = f"in [{lo}, {hi}]"
        elif too_low:
            rng = f">= {lo}"
        else:
            rng = "<= 2**62" if lo is None else f"in [{lo}, 2**62]"
        raise ValueError(f"{fn}: {name} must be an int {rng}, got {value!r}")
    return int(value)


def zeros_like(a: np.ndarray) -> np.ndarray:
    """Fresh C-contiguous state for ``a``."""
    return np.zeros(a.shape, dtype=a.dtype)


def norm_type(fn: str, norm_type: object) -> float:
    """A norm order: ``inf`` (or ``'inf'``, as PyTorch takes it) or a finite number > 0."""
    if isinstance(norm_type, str) and norm_type.strip().lower() in ("inf", "+inf", "infinity"):
        return math.inf
    if norm_type == math.inf:
        return math.inf
    return number(fn, "norm_type", norm_type, lo=0.0, lo_open=True)


def layer_dims(fn: str, layer_dims: object) -> list[int]:
    """A sequence (or 1-d integer array) of at least two layer widths >= 1."""
    if isinstance(layer_dims, np.ndarray):
        if layer_dims.ndim != 1 or not np.issubdtype(layer_dims.dtype, np.integer):
            raise TypeError(f"{fn}: layer_dims must be a sequence of ints, got {_describe(layer_dims)}")
        layer_dims = layer_dims.tolist()
    if isinstance(layer_dims, (str, bytes)) or not isinstance(layer_dims, Sequence):
        raise TypeError(f"{fn}: layer_dims must be a sequence of ints, got {type(layer_dims).__name__}")
    dims = [integer(fn, f"layer_dims[{i}]", d, lo=1) for i, d in enumerate(layer_dims)]
    if len(dims) < 2:
        raise ValueError(f"{fn}: layer_dims must have at least 2 entries (input and one layer), got {len(dims)}")
    return dims


def choice(fn: str, name: str, value: object, allowed: tuple[str, ...]) -> str:
    """A string argument naming one of ``allowed``."""
    if not isinstance(value, str):
        raise TypeError(f"{fn}: {name} must be one of {allowed}, got {type(value).__name__}")
    if value not in allowed:
        raise ValueError(f"{fn}: {name} must be one of {allowed}, got {value!r}")
    return value


#: the largest value of a 64-bit seed, stream or count
U64_MAX = 2**64 - 1


def u64(fn: str, name: str, value: object) -> int:
    """``value`` as a Python int in [0, 2**64)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{fn}: {name} must be an int in [0, 2**64) or None, got {type(value).__name__}")
    v = int(value)
    if not 0 <= v <= U64_MAX:
        raise ValueError(f"{fn}: {name} must be an int in [0, 2**64), got {v}")
    return v


def resolve_seed(seed: object, fn: str = "resolve_seed") -> int:
    """Return ``seed`` as a Python int in [0, 2**64); ``None`` draws fresh OS entropy once.

    ``fn`` names the calling routine in error messages.
    """
    if seed is None:
        return int(np.random.SeedSequence().entropy) & U64_MAX  # type: ignore[arg-type]
    return u64(fn, "seed", seed)
