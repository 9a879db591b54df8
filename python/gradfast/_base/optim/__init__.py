"""Declarations of the optimizers, one file each: hyper-parameters, state slots, docstrings.

The siblings over each declaration are ``gradfast.optim`` (the step in Rust) and
``gradfast.reference.optim`` (the step in NumPy); neither subclasses the other.
"""

from .adafactor import AdafactorBase
from .adam import AdamBase, AdamWBase, adam_hypers
from .lamb import LAMBBase
from .lars import LARSBase
from .layer_adaptive_lr import LayerAdaptiveLRBase
from .lion import LionBase
from .low_precision import LowPrecisionState
from .momentum import MomentumBase
from .muon import MuonBase
from .schedule_free import ScheduleFreeAdamWBase

__all__ = [
    "AdafactorBase",
    "AdamBase",
    "AdamWBase",
    "LAMBBase",
    "LARSBase",
    "LayerAdaptiveLRBase",
    "LionBase",
    "LowPrecisionState",
    "MomentumBase",
    "MuonBase",
    "ScheduleFreeAdamWBase",
    "adam_hypers",
]
