"""The ``GRADFAST_NUM_THREADS`` environment variable, read once at import."""

from __future__ import annotations

import os
import warnings

from ._core import set_num_threads


def apply_env_threads() -> None:
    value = os.environ.get("GRADFAST_NUM_THREADS", "").strip()
    if not value:
        return
    try:
        n = int(value)
        set_num_threads(n)
    except ValueError:
        warnings.warn(
            f"gradfast: GRADFAST_NUM_THREADS must be an int >= 1, got {value!r}; using one thread per CPU",
            RuntimeWarning,
            stacklevel=3,
        )
