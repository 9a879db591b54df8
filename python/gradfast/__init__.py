"""gradfast: Rust-accelerated, in-place NumPy kernels for training neural-network weights.

Every name here has a pure-NumPy twin with the same signature in ``gradfast.reference``.
"""

from ._core import get_num_threads, set_num_threads
from ._threads import apply_env_threads
from .optim import Adam, AdamW, MomentumOptimizer, adam_optimizer, clip_grad_norm

apply_env_threads()

__all__ = [
    "Adam",
    "AdamW",
    "MomentumOptimizer",
    "adam_optimizer",
    "clip_grad_norm",
    "get_num_threads",
    "set_num_threads",
]
