"""The declaration of LARS."""

from __future__ import annotations

from ..optimizer import Hyper, Optimizer


class LARSBase(Optimizer):
    """LARS (You, Gitman and Ginsburg, 2017, arXiv 1708.03888) with momentum, in place.

    Each dict entry is a layer. Per layer, the local rate is formed in float64 from float64
    norms of ``p`` and ``g`` (taken before the update), with the paper's norm convention
    ``||g|| + weight_decay * ||p||`` (optax's ``lars`` takes ``||g + weight_decay * p||``
    instead; the two agree when ``weight_decay == 0``)::

        local_lr = trust_coefficient * ||p|| / ((||g|| + weight_decay * ||p||) + epsilon)
                   if ||p|| > 0 and ||g|| > 0 else 1.0

    (a NaN norm also gives 1.0), then, in the array's dtype::

        d = g + weight_decay * p                     (d = g when weight_decay == 0)
        velocity = momentum * velocity + (learning_rate * local_lr) * d
        p = p - velocity

    ``maximize=True`` ascends: the gradient is negated before anything else, as torch does.
    With ``weight_decay == 0`` this is optax's ``lars`` (``nesterov=False``) up to rounding,
    whose momentum trace is ``-velocity``. State slot per parameter: ``velocity``.
    """

    slots = ("velocity",)
    hyperparams = ("learning_rate", "momentum", "weight_decay", "trust_coefficient", "epsilon", "maximize")
    momentum = Hyper(lo=0.0, hi=1.0, hi_open=True)
    weight_decay = Hyper(lo=0.0)
    trust_coefficient = Hyper(lo=0.0)
    epsilon = Hyper(lo=0.0)
    maximize = Hyper(flag=True)

    def __init__(
        self,
        learning_rate: float = 0.1,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        trust_coefficient: float = 0.001,
        epsilon: float = 1e-9,
        *,
        maximize: bool = False,
    ) -> None:
        super().__init__(learning_rate)
        self.momentum, self.weight_decay = momentum, weight_decay
        self.trust_coefficient, self.epsilon, self.maximize = trust_coefficient, epsilon, maximize
