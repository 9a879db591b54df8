"""The declaration of LAMB."""

from __future__ import annotations

from ..optimizer import Hyper, Optimizer


class LAMBBase(Optimizer):
    """LAMB (You et al., 2019, arXiv 1904.00962) with Adam's bias correction, in place.

    Each dict entry is a layer. At step ``t`` (1-based), per layer, in the array's dtype, with
    Adam's moment update (``torch.optim.Adam``'s arithmetic, as ``gradfast.Adam``)::

        m = m + (1 - beta1) * (g - m)
        v = beta2 * v + ((1 - beta2) * g) * g
        r = (m * c1) / (sqrt(v) * c2 + epsilon) + weight_decay * p
        p = p - (learning_rate * trust) * r

    with the bias corrections ``c1 = 1 / (1 - beta1**t)`` and ``c2 = 1 / sqrt(1 - beta2**t)``
    formed in float64 and rounded once (so ``r`` is the bias-corrected Adam direction
    ``m_hat / (sqrt(v_hat) + epsilon)``), where the ``weight_decay * p`` term is omitted when
    ``weight_decay == 0`` and the trust ratio is formed in float64 from float64 norms::

        trust = ||p|| / ||r||   if ||p|| > 0 and ||r|| > 0   else 1.0

    (so a NaN norm also gives 1.0 and the NaN propagates element-wise through ``r``).
    ``||p||`` is taken before the update. Weight decay applies to every layer, biases too.
    ``maximize=True`` ascends: the gradient is negated before anything else, as torch does.
    This is optax's ``lamb`` (``scale_by_adam``, ``add_decayed_weights``,
    ``scale_by_trust_ratio``) up to rounding; only the default ``weight_decay`` differs
    (optax: 0). State slots per parameter: ``exp_avg`` (m), ``exp_avg_sq`` (v).
    """

    slots = ("exp_avg", "exp_avg_sq")
    hyperparams = ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay", "maximize")
    beta1 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    beta2 = Hyper(lo=0.0, hi=1.0, hi_open=True)
    epsilon = Hyper(lo=0.0)
    weight_decay = Hyper(lo=0.0)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-6,
        weight_decay: float = 0.01,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.beta1, self.beta2, self.epsilon, self.weight_decay = beta1, beta2, epsilon, weight_decay
        self.maximize = maximize
