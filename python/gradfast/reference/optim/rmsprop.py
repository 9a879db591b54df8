"""Reference RMSprop, ported from ``torch.optim.rmsprop._single_tensor_rmsprop``."""

from __future__ import annotations

import numpy as np

from ..._base.optim import RMSpropBase
from ._bf16 import _store, _widened, draws
from ._gradient import gradient
from .adam import _adam_moments


class RMSprop(RMSpropBase):
    __doc__ = RMSpropBase.__doc__

    def _apply(self, params, gradients, state, step):
        self._check_state(self._update_name, params, gradients, state)
        alpha, momentum = self.alpha, self.momentum
        words = draws(self, params, step)
        for key, p_stored in params.items():
            s = state[key]
            written = [p_stored, s["square_avg"], s.get("momentum_buffer"), s.get("grad_avg")]
            p, sq, buf, ga = _widened(written)
            (g,) = _widened([gradients[key]])
            t = p.dtype.type
            with np.errstate(all="ignore"):
                g = gradient(g, p, self.maximize, self.weight_decay)
                if ga is not None:
                    # Adam's moments with both betas alpha: grad_avg.lerp_(g, 1 - alpha) and
                    # square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
                    _adam_moments(g, ga, sq, alpha, alpha)
                    avg = np.sqrt(sq - ga * ga)  # square_avg.addcmul(ga, ga, value=-1).sqrt_()
                else:
                    sq *= t(alpha)
                    sq += (t(1.0 - alpha) * g) * g
                    avg = np.sqrt(sq)
                avg = avg + t(self.epsilon)
                if buf is not None:
                    buf *= t(momentum)
                    buf += g / avg  # addcdiv_(g, avg) with value 1
                    p += t(-self.learning_rate) * buf
                else:
                    p += (t(-self.learning_rate) * g) / avg
            _store(written, [p, sq, buf, ga], words[key])
