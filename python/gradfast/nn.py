"""Rust-backed layers: the classes of ``gradfast._base.nn`` with their arithmetic done by
``_core``. Each forward and backward is one call into Rust that validates the input and the
layer's arrays, runs the kernel (without the GIL on large inputs) and commits what the layer
keeps to its ``_core`` state before returning, under the state's lock.
"""

from __future__ import annotations

import numpy as np

from . import _core, _validate
from ._base.nn import BatchNormBase, DropoutBase


class BatchNorm(BatchNormBase):
    __doc__ = BatchNormBase.__doc__
    _hyper_class = _core.BatchNormHyper
    _new_state = _core.BatchNormState

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        fn = "BatchNorm.forward"
        if training is not True and training is not False:
            training = _validate.flag(fn, "training", training)
        channels = (self.gamma, self.beta, self.running_mean, self.running_var)
        return _core.batchnorm_forward(fn, self._state, x, training, channels, self._packed or self._pack())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return _core.batchnorm_backward("BatchNorm.backward", self._state, grad_output)


class Dropout(DropoutBase):
    __doc__ = DropoutBase.__doc__
    _hyper_class = _core.DropoutHyper
    _new_state = _core.DropoutState

    def forward(self, x: np.ndarray, training=True) -> np.ndarray:
        fn = "Dropout.forward"
        if training is not True and training is not False:
            training = _validate.flag(fn, "training", training)
        return _core.dropout_forward(fn, self._state, x, training, self._packed or self._pack())

    def backward(self, grad_output: np.ndarray) -> np.ndarray:
        return _core.dropout_backward("Dropout.backward", self._state, grad_output)
