"""The per-object lock of every stateful class (optimizers, layers, the adaptive clipper, the
gradual pruner): calls on one object take turns, and copies get a lock of their own."""

from __future__ import annotations

import threading
from typing import Any, ClassVar


class Locked:
    """Holds ``self._lock``, made by ``_new_lock``: ``threading.Lock``, or for a Rust-backed
    class ``_core.StepLock``, which its binding holds and which waits without the GIL. Copies
    and pickles leave out the attributes named in ``_not_copied`` (the lock, caches) and make a
    new lock."""

    _new_lock: ClassVar[Any] = threading.Lock
    #: attributes a copy does not take: the lock, and caches rebuilt on use
    _not_copied: ClassVar[tuple[str, ...]] = ("_lock",)

    def __init__(self) -> None:
        self._lock = self._new_lock()

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._not_copied}

    def __setstate__(self, d: dict[str, Any]) -> None:
        self.__dict__.update(d)
        self._lock = self._new_lock()
