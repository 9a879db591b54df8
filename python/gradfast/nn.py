"""Rust-backed layers: the classes of ``gradfast._base.nn`` with their arithmetic done by
``_core``. Each forward and backward is one call into Rust that validates the input and the
layer's arrays, runs the kernel (without the GIL on large inputs) and commits what the layer
keeps before returning, under the layer's lock.
"""

from __future__ import annotations

import numpy as np

from . import _core, _validate
from ._base.nn import BatchNormBase, DropoutBase


class BatchNorm(BatchNormBase):
    __doc__ = BatchNormBase.__doc__
    _hyper_class = _core.BatchNormHyper
    _new_lock = _core.StepLock

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        if training is not True and training is not False:
            training = _validate.flag("BatchNorm.forward", "training", training)
        return _core.batchnorm_forward(self, self._lock, x, training, self._packed or self._pack())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return _core.batchnorm_backward(self, self._lock, grad_output)


class Dropout(DropoutBase):
    __doc__ = DropoutBase.__doc__
    _hyper_class = _core.DropoutHyper
    _new_lock = _core.StepLock

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        if training is not True and training is not False:
            training = _validate.flag("Dropout.forward", "training", training)
        return _core.dropout_forward(self, self._lock, x, training, self._packed or self._pack())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return _core.dropout_backward(self, self._lock, grad_output)
