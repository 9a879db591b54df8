"""Reference optimizers in plain NumPy, one file each."""

from .adafactor import Adafactor
from .adam import Adam, AdamW, adam_optimizer
from .lamb import LAMB
from .lars import LARS
from .layer_adaptive_lr import LayerAdaptiveLR
from .lion import Lion
from .momentum import MomentumOptimizer
from .muon import Muon
from .schedule_free import ScheduleFreeAdamW

__all__ = [
    "LAMB",
    "LARS",
    "Adafactor",
    "Adam",
    "AdamW",
    "LayerAdaptiveLR",
    "Lion",
    "MomentumOptimizer",
    "Muon",
    "ScheduleFreeAdamW",
    "adam_optimizer",
]
