"""Data-parallel training over MPI (mpi4py), written once for both implementations.

The Rust-backed ``gradfast.distributed`` and the pure-NumPy ``gradfast.reference.distributed``
differ only in the kernels that pack tensors into flat buckets and back (a ``kernels``
namespace with ``pack``, ``unpack``, ``divide`` and ``sum_bf16``); the collective logic is here.

Every call except ``rank`` and ``size`` is collective: all ranks of the communicator make it,
in the same order. Each starts with one small ``Allreduce`` of a 56-bit digest of what the
rank is about to do (the function, keys, shapes, dtypes, op, compression, root) and of
whether its arguments were valid. A rank cannot tell on its own that another rank's dict
changed, so the digest is compared on every call (about 20 us on two ranks); only when digests
differ are the full descriptions gathered, and every rank raises the same ``ValueError``
naming the first key that differs. A mismatch therefore never reaches the data collectives,
where it would hang or reduce garbage.
"""

from __future__ import annotations

import os
import stat
import struct
import sys
import time
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .. import _validate
from .average import sum_buffers

INSTALL = (
    'gradfast.distributed needs mpi4py and an MPI library: pip install "gradfast[mpi]" '
    "(mpi4py and MPICH from PyPI), or pip install mpi4py built against the cluster's MPI"
)
#: arrays whose bytes on the wire reach this are reduced on their own, in place; packing
#: costs two passes over memory, more than one more collective call for arrays this large
INPLACE_MIN_BYTES = 64 << 10
#: smaller arrays are packed, in key order, into flat buckets of at most this many bytes
BUCKET_BYTES = 1 << 20
OPS = ("mean", "sum")
COMPRESSIONS = (None, "bf16")


def mpi():
    """The ``mpi4py.MPI`` module, or an ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except (ImportError, RuntimeError) as e:  # mpi4py raises RuntimeError when libmpi is missing
        raise ImportError(f"{INSTALL} ({e})") from e
    return MPI


def communicator(fn: str, comm):
    """``(MPI, comm)``: the given intracommunicator, or ``MPI.COMM_WORLD`` for None."""
    MPI = mpi()
    if comm is None:
        comm = MPI.COMM_WORLD
    elif not isinstance(comm, MPI.Intracomm):
        raise TypeError(f"{fn}: comm must be an mpi4py MPI.Intracomm such as MPI.COMM_WORLD, got {type(comm).__name__}")
    if not _abort_hook_installed and comm.Get_size() > 1:
        abort_on_uncaught_exception(MPI)
    return MPI, comm


_abort_hook_installed = False


def abort_on_uncaught_exception(MPI) -> None:
    """From now on an uncaught exception prints its traceback, then aborts ``MPI.COMM_WORLD``
    (as ``python -m mpi4py`` does): the other ranks would otherwise wait in their next
    collective call until the job is killed. Installed the first time gradfast.distributed
    is used with more than one rank; the previous ``sys.excepthook`` still runs first."""
    global _abort_hook_installed
    _abort_hook_installed = True
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        try:
            previous(kind, value, tb)
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:  # noqa: BLE001, S110 - a closed stream must not prevent the abort
                    pass
            wait_until_read((1, 2))
            MPI.COMM_WORLD.Abort(1)

    sys.excepthook = hook


def wait_until_read(fds, limit: float = 2.0) -> None:
    """Wait, at most ``limit`` seconds in all, until whoever reads these pipes (under mpiexec, its
    output forwarder) has taken everything written to them. ``Abort`` ends the job at once, and
    what a pipe still holds is lost: the traceback arrived cut after its first line when the
    forwarder had not yet read the rest. Terminals and files keep what is written to them and
    are not waited for, nor are sockets (``FIONREAD`` counts what they received, not what they
    sent) or anything on Windows, which has no ``FIONREAD``."""
    try:
        import fcntl
        import termios
    except ImportError:
        return
    deadline = time.monotonic() + limit
    for fd in fds:
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        if not stat.S_ISFIFO(mode):
            continue
        while time.monotonic() < deadline:
            try:
                unread = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
            except OSError:
                break
            if unread == 0:
                break
            time.sleep(0.005)


def rank(*, comm=None) -> int:
    """This process's rank in ``comm`` (default ``MPI.COMM_WORLD``)."""
    return communicator("rank", comm)[1].Get_rank()


def size(*, comm=None) -> int:
    """The number of processes in ``comm`` (default ``MPI.COMM_WORLD``)."""
    return communicator("size", comm)[1].Get_size()


def choice(fn: str, name: str, value, allowed) -> Any:
    if not any(value is a or (isinstance(value, str) and value == a) for a in allowed):
        raise ValueError(f"{fn}: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def tensor_dict(fn: str, name: str, d) -> list[tuple[str, np.ndarray]]:
    """The items of a dict of arrays written in place, sorted by key (the order every rank
    packs them in, whatever order each rank's dict was built in), all checked."""
    d = _validate.array_dict(fn, name, d)
    items = [(key, d[key]) for key in d]
    dtype = None
    for key, a in items:
        if not isinstance(key, str):
            raise TypeError(f"{fn}: {name} keys must be str (every rank sorts them), got {key!r}")
        where = f"{name}[{key!r}]"
        _validate.float_array(fn, where, a, writeable=True)
        if not a.flags.aligned:
            raise ValueError(
                f"{fn}: {where} must be aligned, got an unaligned array (use np.require(a, requirements='A'))"
            )
        dtype = dtype or a.dtype
        _validate.same_dtype(fn, where, a, dtype)
    # The arrays are C-contiguous: each spans [data, data + nbytes), so sorting the spans and
    # comparing neighbours finds any overlap (np.byte_bounds costs more than the whole call).
    spans = sorted((a.ctypes.data, a.nbytes, i) for i, (_, a) in enumerate(items) if a.size)
    for (lo, n, i), (next_lo, _, j) in zip(spans, spans[1:]):
        if next_lo < lo + n:
            (key, a), (next_key, b) = items[i], items[j]
            _validate.no_alias(fn, f"{name}[{next_key!r}]", b, f"{name}[{key!r}]", a)
    return sorted(items, key=lambda item: item[0])


def plain(value):
    """``value`` as the builtin it stands for (``numpy.str_`` is ``str``, ``np.int64(2)`` is
    ``2``), so that equal keys and options hash to the same digest on every rank."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe(fn: str, name: str, items, **settings) -> tuple:
    """What a rank is about to do, comparable across ranks (in plain Python types)."""
    arrays = tuple((str(key), tuple(map(int, a.shape)), a.dtype.char) for key, a in items)
    return (fn, name, tuple(sorted((k, plain(v)) for k, v in settings.items())), arrays)


def agree(MPI, comm, fn: str, description: tuple | None, error: Exception | None) -> None:
    """Collective: return if every rank has the same ``description`` and no ``error``;
    otherwise raise the same ValueError on every rank (the failing rank its own error)."""
    import hashlib  # here, not at the top: only multi-rank runs need it, and it slows `import gradfast`

    digest = int.from_bytes(hashlib.blake2b(repr(description).encode(), digest_size=7).digest(), "little")
    word = np.array([digest, -digest, error is not None], dtype=np.int64)
    comm.Allreduce(MPI.IN_PLACE, word, op=MPI.MAX)
    if word[0] == -word[1] and word[2] == 0:
        return
    mine = None if error is None else f"{type(error).__name__}: {error}"
    everyone = comm.allgather((description, mine))
    if error is not None:
        raise error
    failed = [(r, msg) for r, (_, msg) in enumerate(everyone) if msg is not None]
    if failed:
        r, msg = failed[0]
        raise ValueError(f"{fn}: rank {r} refused its arguments, so no rank went ahead: {msg}")
    raise ValueError(mismatch(fn, [d for d, _ in everyone]))


def mismatch(fn: str, descriptions: list[tuple]) -> str:
    """The first difference between rank 0's description and another rank's."""
    base = descriptions[0]
    for r, d in enumerate(descriptions[1:], start=1):
        if d[:2] != base[:2]:
            return (
                f"{fn}: every rank must make the same collective call, "
                f"got {base[0]}({base[1]}) on rank 0 and {d[0]}({d[1]}) on rank {r}"
            )
        if d[2] != base[2]:
            for (k, v0), (_, v) in zip(base[2], d[2]):
                if v0 != v:
                    return f"{fn}: {k} must be the same on every rank, got {v0!r} on rank 0 and {v!r} on rank {r}"
        name = base[1]
        mine, theirs = dict((k, s) for k, *s in base[3]), dict((k, s) for k, *s in d[3])
        for key in sorted(set(mine) | set(theirs)):
            if key not in theirs or key not in mine:
                have, lack = (0, r) if key in mine else (r, 0)
                return (
                    f"{fn}: {name}[{key!r}] must be present on every rank, got it on rank {have} and not on rank {lack}"
                )
            if mine[key] != theirs[key]:
                (s0, t0), (s, t) = mine[key], theirs[key]
                return (
                    f"{fn}: {name}[{key!r}] must have the same shape and dtype on every rank, "
                    f"got shape {s0} {np.dtype(t0).name} on rank 0 and shape {s} {np.dtype(t).name} on rank {r}"
                )
    return f"{fn}: the ranks' calls differ"  # pragma: no cover - equal descriptions, distinct digests


def plan(items, wire_itemsize: int) -> tuple[list[list[np.ndarray]], list[np.ndarray]]:
    """``(buckets, large)``: small arrays grouped into buckets of at most ``BUCKET_BYTES``
    on the wire, and the arrays reduced on their own. Empty arrays take part in neither."""
    buckets: list[list[np.ndarray]] = []
    large: list[np.ndarray] = []
    room = 0
    for _, a in items:
        wire = a.size * wire_itemsize
        if wire == 0:
            continue
        if wire >= INPLACE_MIN_BYTES:
            large.append(a)
            continue
        if wire > room:
            buckets.append([])
            room = BUCKET_BYTES
        buckets[-1].append(a)
        room -= wire
    return buckets, large


def bf16_sum_op(MPI, kernels):
    """An MPI reduction over buckets of bfloat16 bits: each pair summed in float32 and
    rounded once (by the ``sum_bf16`` kernel). Free it after use."""

    def add(src, acc, datatype):
        kernels.sum_bf16(np.frombuffer(src, np.uint16), np.frombuffer(acc, np.uint16))

    return MPI.Op.Create(add, commute=True)


def reduce(MPI, comm, kernels, fn: str, items, divisor: int | None, compression) -> None:
    """Sums ``items``' arrays over the ranks in place, then divides them by ``divisor``."""
    div = None if divisor == 1 else divisor
    if compression == "bf16":
        buckets, large = plan(items, 2)
        op = bf16_sum_op(MPI, kernels)
        try:
            for group in buckets + [[a] for a in large]:
                buf = np.empty(sum(a.size for a in group), np.uint16)
                kernels.pack(fn, group, buf)
                comm.Allreduce(MPI.IN_PLACE, [buf, MPI.UINT16_T], op=op)
                kernels.unpack(fn, buf, group, div)
        finally:
            op.Free()
        return
    if not items:
        return
    dtype = items[0][1].dtype
    buckets, large = plan(items, dtype.itemsize)
    for group in buckets:
        buf = np.empty(sum(a.size for a in group), dtype)
        kernels.pack(fn, group, buf)
        comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        kernels.unpack(fn, buf, group, div)
    for a in large:
        comm.Allreduce(MPI.IN_PLACE, a, op=MPI.SUM)
    if div is not None and large:
        kernels.divide(fn, large, div)


def allreduce_gradients(kernels, gradients, *, op="mean", compression=None, comm=None):
    """Sums (``op='sum'``) or averages (``op='mean'``) a dict of gradients over the ranks of
    ``comm`` (default ``MPI.COMM_WORLD``), in place; returns ``gradients``.

    Collective. Arrays of at least 64 KiB are reduced in place, each by one ``Allreduce``;
    smaller ones are packed, in key order, into buckets of up to 1 MiB, so a dict of hundreds
    of arrays costs a few calls. The mean is the sum divided by the number of ranks. Every
    rank ends with the same bits (each element's sum is computed once by MPI and sent to all).
    ``compression='bf16'`` sends bfloat16 (values rounded to nearest even, half the bytes);
    each pair of partial sums is added in float32 and rounded to bfloat16 again.
    Arrays must be C-contiguous, writeable float32 or float64 of one dtype, keys str.
    """
    fn = "allreduce_gradients"
    MPI, comm = communicator(fn, comm)
    description, error = None, None
    try:
        choice(fn, "op", op, OPS)
        choice(fn, "compression", compression, COMPRESSIONS)
        items = tensor_dict(fn, "gradients", gradients)
        description = describe(fn, "gradients", items, op=op, compression=compression)
    except (TypeError, ValueError) as e:
        error = e
    agree(MPI, comm, fn, description, error)
    divisor = comm.Get_size() if op == "mean" else None
    reduce(MPI, comm, kernels, fn, items, divisor, compression)
    return gradients


def broadcast_parameters(kernels, params, root=0, *, comm=None):
    """Copies rank ``root``'s ``params`` into every rank's, in place; returns ``params``.

    Collective; the dicts must have the same keys, shapes and dtype on every rank.
    """
    fn = "broadcast_parameters"
    MPI, comm = communicator(fn, comm)
    description, error = None, None
    try:
        root = _validate.integer(fn, "root", root, lo=0)
        if root >= comm.Get_size():
            raise ValueError(f"{fn}: root must be a rank of comm, in [0, {comm.Get_size() - 1}], got {root}")
        items = tensor_dict(fn, "params", params)
        description = describe(fn, "params", items, root=root)
    except (TypeError, ValueError) as e:
        error = e
    agree(MPI, comm, fn, description, error)
    if not items:
        return params
    dtype = items[0][1].dtype
    buckets, large = plan(items, dtype.itemsize)
    is_root = comm.Get_rank() == root
    for group in buckets:
        buf = np.empty(sum(a.size for a in group), dtype)
        if is_root:
            kernels.pack(fn, group, buf)
        comm.Bcast(buf, root=root)
        if not is_root:
            kernels.unpack(fn, buf, group, None)
    for a in large:
        comm.Bcast(a, root=root)
    return params


class DataParallelBase:
    """Data-parallel training: gradients accumulated locally, averaged over steps and ranks.

    ``DataParallel(optimizer, *, accumulation_steps=1, compression=None, comm=None)`` wraps any
    optimizer with ``update(params, gradients)``. Each ``update(params, gradients)`` adds the
    local gradients to buffers it owns (the caller's arrays are only read). Every
    ``accumulation_steps``-th call is collective: it sums the buffers over all ranks (see
    ``allreduce_gradients``; ``compression='bf16'`` rounds them to bfloat16 on the wire),
    divides by ``accumulation_steps * size``, calls ``optimizer.update(params, averaged)`` and
    returns True; the other calls return False. Start from identical parameters
    (``broadcast_parameters``) and every rank keeps bitwise identical parameters.

    Construction is collective too: it checks that every rank chose the same
    ``accumulation_steps`` and ``compression`` (ranks that disagree would wait for each other
    at different calls). ``state_dict()``/``load_state_dict()`` are the optimizer's; loading
    drops the gradients accumulated since the last step.
    """

    _kernels: ClassVar[Any]

    #: the sum kernel (``gradfast.average.accumulate`` or the reference's), set by each sibling
    _accumulate: Any = None

    def __init__(self, optimizer, *, accumulation_steps=1, compression=None, comm=None) -> None:
        fn = "DataParallel"
        MPI, comm = communicator(fn, comm)
        description, error = None, None
        try:
            if not callable(getattr(optimizer, "update", None)):
                raise TypeError(
                    f"{fn}: optimizer must have an update(params, gradients) method, got {type(optimizer).__name__}"
                )
            steps = _validate.integer(fn, "accumulation_steps", accumulation_steps, lo=1)
            choice(fn, "compression", compression, COMPRESSIONS)
            description = describe(fn, "settings", (), accumulation_steps=steps, compression=compression)
        except (TypeError, ValueError) as e:
            error = e
        agree(MPI, comm, fn, description, error)
        self.optimizer = optimizer
        self.accumulation_steps = steps
        self.compression = compression
        self.comm = comm
        self._mpi = MPI
        self._sums: dict[str, np.ndarray] = {}
        self._count = 0

    def _check(self, fn: str, params, gradients) -> Mapping[str, np.ndarray]:
        """Validates a call; writes nothing."""
        _validate.params_and_grads(fn, params, gradients)
        grads = _validate.array_dict(fn, "gradients", gradients)
        for key in grads:
            if not isinstance(key, str):
                raise TypeError(f"{fn}: gradients keys must be str (every rank sorts them), got {key!r}")
        sums = self._sums
        if self._count:
            _validate.matching_keys(fn, "gradients", grads, "the gradients accumulated so far", sums)
            for key, s in sums.items():
                g = grads[key]
                if g.shape != s.shape or g.dtype != s.dtype:
                    raise ValueError(
                        f"{fn}: gradients[{key!r}] must have shape {s.shape} and dtype {s.dtype} like the "
                        f"gradients accumulated so far, got shape {g.shape} and dtype {g.dtype}"
                    )
        return grads

    def _add(self, fn: str, grads: Mapping[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        """Adds checked gradients to the sums (the first of a cycle is copied) with the sum
        kernel ``Accumulate`` runs; returns the sums' items in key order."""
        if self._count == 0:
            self._sums = sum_buffers(self._sums, grads)
        sums = self._sums
        self._accumulate(fn, sums, grads, self._count == 0, 1.0)
        self._count += 1
        return sorted(sums.items(), key=lambda item: item[0])

    def update(self, params, gradients) -> bool:
        """Accumulates ``gradients``; every ``accumulation_steps`` calls, averages them over
        steps and ranks and updates ``params`` in place. Returns True when it did."""
        fn = "DataParallel.update"
        if self._count + 1 < self.accumulation_steps:
            self._add(fn, self._check(fn, params, gradients))
            return False
        description, error = None, None
        try:
            grads = self._check(fn, params, gradients)
            items = sorted(grads.items(), key=lambda item: item[0])
            description = describe(fn, "gradients", items, compression=self.compression)
        except (TypeError, ValueError) as e:
            error = e
        agree(self._mpi, self.comm, fn, description, error)
        items = self._add(fn, grads)
        self._count = 0
        divisor = self.accumulation_steps * self.comm.Get_size()
        reduce(self._mpi, self.comm, self._kernels, fn, items, divisor, self.compression)
        self.optimizer.update(params, self._sums)
        return True

    def state_dict(self) -> dict:
        """The wrapped optimizer's state dict."""
        return self.optimizer.state_dict()

    def load_state_dict(self, state_dict: Mapping) -> None:
        """Loads the wrapped optimizer's state; gradients accumulated since its last step are dropped."""
        self.optimizer.load_state_dict(state_dict)
        self._count = 0
