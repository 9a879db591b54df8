"""The ``GRADFAST_NUM_THREADS`` environment variable, read once at import."""

from __future__ import annotations

import os
import warnings

from ._core import MAX_THREADS, set_num_threads


def apply_env_threads() -> None:
    """Size the pool from ``GRADFAST_NUM_THREADS``; a bad value warns and keeps the default
    (one thread per CPU) rather than making ``import gradfast`` fail."""
    value = os.environ.get("GRADFAST_NUM_THREADS", "").strip()
    if not value:
        return
    try:
        set_num_threads(int(value))
    except ValueError:
        warnings.warn(
            f"gradfast: GRADFAST_NUM_THREADS must be an int in [1, {MAX_THREADS}], got {value!r}; "
            "using one thread per CPU",
            RuntimeWarning,
            stacklevel=3,
        )
