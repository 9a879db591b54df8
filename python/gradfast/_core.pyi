# The compiled half of gradfast. Private: call the Python API in gradfast/ instead.
# `func` is the public name used in error messages; `opt` is the optimizer object a step is
# committed to (under `lock`, Rust reads its `state` and `step` and sets them once the kernel
# has run).

from collections.abc import Mapping
from typing import Any, final

import numpy as np

MAX_THREADS: int
PARALLEL_MIN_BYTES: int

@final
class AdamHyper:
    learning_rate: float
    beta1: float
    beta2: float
    epsilon: float
    weight_decay: float
    decoupled: bool
    amsgrad: bool
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        beta1: float,
        beta2: float,
        epsilon: float,
        weight_decay: float,
        decoupled: bool,
        amsgrad: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> AdamHyper: ...

@final
class RAdamHyper:
    learning_rate: float
    beta1: float
    beta2: float
    epsilon: float
    weight_decay: float
    decoupled: bool
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        beta1: float,
        beta2: float,
        epsilon: float,
        weight_decay: float,
        decoupled: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> RAdamHyper: ...

@final
class AdadeltaHyper:
    learning_rate: float
    rho: float
    epsilon: float
    weight_decay: float
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        rho: float,
        epsilon: float,
        weight_decay: float,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> AdadeltaHyper: ...

@final
class RpropHyper:
    learning_rate: float
    etaminus: float
    etaplus: float
    step_size_min: float
    step_size_max: float
    maximize: bool
    def __new__(
        cls,
        *,
        learning_rate: float,
        etaminus: float,
        etaplus: float,
        step_size_min: float,
        step_size_max: float,
        maximize: bool,
    ) -> RpropHyper: ...

@final
class ASGDHyper:
    learning_rate: float
    lambd: float
    alpha: float
    t0: float
    weight_decay: float
    maximize: bool
    def __new__(
        cls, *, learning_rate: float, lambd: float, alpha: float, t0: float, weight_decay: float, maximize: bool
    ) -> ASGDHyper: ...

@final
class MomentumHyper:
    learning_rate: float
    momentum: float
    nesterov: bool
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        momentum: float,
        nesterov: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> MomentumHyper: ...

@final
class SgdStepHyper:
    learning_rate: float
    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        momentum: float,
        dampening: float,
        weight_decay: float,
        nesterov: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> SgdStepHyper: ...

@final
class LionHyper:
    learning_rate: float
    beta1: float
    beta2: float
    weight_decay: float
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        beta1: float,
        beta2: float,
        weight_decay: float,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> LionHyper: ...

@final
class BatchNormHyper:
    num_features: int
    eps: float
    momentum: float
    dtype: np.dtype
    def __new__(cls, *, num_features: int, eps: float, momentum: float, dtype: np.dtype) -> BatchNormHyper: ...

@final
class BatchNormState:
    grad_gamma: np.ndarray | None
    grad_beta: np.ndarray | None
    def __new__(cls, grad_gamma: np.ndarray | None = None, grad_beta: np.ndarray | None = None) -> BatchNormState: ...

@final
class DropoutHyper:
    drop_rate: float
    def __new__(cls, *, drop_rate: float) -> DropoutHyper: ...

@final
class DropoutState:
    seed: int
    num_training_calls: int
    @property
    def kept(self) -> np.ndarray | None: ...
    @property
    def last(self) -> tuple[Any, np.dtype, float] | None: ...
    def __new__(
        cls,
        seed: int,
        num_training_calls: int = 0,
        kept: np.ndarray | None = None,
        last: tuple[Any, np.dtype, float] | None = None,
    ) -> DropoutState: ...

@final
class StepState:
    state: Any
    step: int
    extra: Any
    def __new__(cls, state: Any, step: int, extra: Any = None) -> StepState: ...
    def __enter__(self) -> None: ...
    def __exit__(self, *_exc: object) -> None: ...
    def locked(self) -> bool: ...

@final
class StepLock:
    def __new__(cls) -> StepLock: ...
    def __enter__(self) -> None: ...
    def __exit__(self, *_exc: object) -> None: ...
    def locked(self) -> bool: ...

def adam(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: AdamHyper,
    groups: tuple[list[AdamHyper], dict[Any, int]] | None = None,
) -> None: ...
def adam_8bit(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: AdamHyper,
    groups: tuple[list[AdamHyper], dict[Any, int]] | None = None,
) -> None: ...
def adam_array(
    func: str,
    params: np.ndarray,
    gradients: np.ndarray,
    state: dict[str, Any],
    m: np.ndarray,
    v: np.ndarray,
    t: int,
    hyper: AdamHyper,
) -> None: ...
def radam(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: RAdamHyper,
    groups: tuple[list[RAdamHyper], dict[Any, int]] | None = None,
) -> None: ...
def adadelta(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: AdadeltaHyper,
    groups: tuple[list[AdadeltaHyper], dict[Any, int]] | None = None,
) -> None: ...
def rprop(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: RpropHyper,
    groups: tuple[list[RpropHyper], dict[Any, int]] | None = None,
) -> None: ...
def asgd(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: ASGDHyper,
    groups: tuple[list[ASGDHyper], dict[Any, int]] | None = None,
) -> None: ...
def momentum(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: MomentumHyper,
    groups: tuple[list[MomentumHyper], dict[Any, int]] | None = None,
) -> None: ...
def sgd_step(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: SgdStepHyper,
    groups: tuple[list[SgdStepHyper], dict[Any, int]] | None = None,
) -> None: ...
def momentum_8bit(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: MomentumHyper,
    groups: tuple[list[MomentumHyper], dict[Any, int]] | None = None,
) -> None: ...
def lion(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: LionHyper,
    groups: tuple[list[LionHyper], dict[Any, int]] | None = None,
) -> None: ...
def lion_8bit(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: LionHyper,
    groups: tuple[list[LionHyper], dict[Any, int]] | None = None,
) -> None: ...

@final
class ScheduleFreeAdamWHyper:
    learning_rate: float
    beta1: float
    beta2: float
    epsilon: float
    weight_decay: float
    warmup_steps: int
    r: float
    weight_lr_power: float
    def __new__(
        cls,
        *,
        learning_rate: float,
        beta1: float,
        beta2: float,
        epsilon: float,
        weight_decay: float,
        warmup_steps: int,
        r: float,
        weight_lr_power: float,
    ) -> ScheduleFreeAdamWHyper: ...

def schedule_free_adamw(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: ScheduleFreeAdamWHyper,
    groups: tuple[list[ScheduleFreeAdamWHyper], dict[Any, int]] | None = None,
) -> None: ...
def schedule_free_switch(
    func: str, params: Mapping[Any, np.ndarray], state: Mapping[Any, Mapping[str, np.ndarray]], weight: float
) -> None: ...

@final
class AdafactorHyper:
    learning_rate: float
    beta2_decay: float
    epsilon: tuple[float | None, float]
    d: float
    weight_decay: float
    maximize: bool
    def __new__(
        cls,
        *,
        learning_rate: float,
        beta2_decay: float,
        epsilon: tuple[float | None, float],
        d: float,
        weight_decay: float,
        maximize: bool,
    ) -> AdafactorHyper: ...

def adafactor(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: AdafactorHyper,
    groups: tuple[list[AdafactorHyper], dict[Any, int]] | None = None,
) -> None: ...

@final
class MuonHyper:
    learning_rate: float
    weight_decay: float
    momentum: float
    nesterov: bool
    ns_coefficients: tuple[float, float, float]
    epsilon: float
    ns_steps: int
    adjust_lr_fn: str | None
    ns_dtype: str
    def __new__(
        cls,
        *,
        learning_rate: float,
        weight_decay: float,
        momentum: float,
        nesterov: bool,
        ns_coefficients: tuple[float, float, float],
        epsilon: float,
        ns_steps: int,
        adjust_lr_fn: str | None,
        ns_dtype: str,
    ) -> MuonHyper: ...

def muon(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: MuonHyper,
    groups: tuple[list[MuonHyper], dict[Any, int]] | None = None,
) -> None: ...

@final
class InitHyper:
    seed: int
    layer: int
    normal: bool
    scale: float
    def __new__(cls, *, seed: int, layer: int, normal: bool, scale: float) -> InitHyper: ...

@final
class GradientDescentHyper:
    learning_rate: float
    epochs: int
    def __new__(cls, *, learning_rate: float, epochs: int) -> GradientDescentHyper: ...

@final
class SgdHyper:
    learning_rate: float
    batch_size: int
    momentum: float
    epochs: int
    seed: int
    def __new__(cls, *, learning_rate: float, batch_size: int, momentum: float, epochs: int, seed: int) -> SgdHyper: ...

@final
class BpttHyper:
    sequence_length: int
    def __new__(cls, *, sequence_length: int) -> BpttHyper: ...

def bptt(
    func: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    hidden_state: np.ndarray,
    weights: tuple[np.ndarray, np.ndarray, np.ndarray],
    grads: tuple[np.ndarray, np.ndarray, np.ndarray],
    hyper: BpttHyper,
) -> float: ...
def gradient_descent(
    func: str, x: np.ndarray, y: np.ndarray, weights: np.ndarray, hyper: GradientDescentHyper
) -> None: ...
def sgd_optimizer(func: str, x: np.ndarray, y: np.ndarray, weights: np.ndarray, hyper: SgdHyper) -> None: ...

@final
class ClipGradNormHyper:
    max_norm: float
    norm_type: float
    error_if_nonfinite: bool
    def __new__(cls, *, max_norm: float, norm_type: float, error_if_nonfinite: bool) -> ClipGradNormHyper: ...

def clip_grad_norm(func: str, gradients: Mapping[Any, np.ndarray], hyper: ClipGradNormHyper) -> float: ...

@final
class TotalNormHyper:
    norm_type: float
    error_if_nonfinite: bool
    def __new__(cls, *, norm_type: float, error_if_nonfinite: bool) -> TotalNormHyper: ...

@final
class ClipGradsWithNormHyper:
    max_norm: float
    total_norm: float
    def __new__(cls, *, max_norm: float, total_norm: float) -> ClipGradsWithNormHyper: ...

@final
class ClipGradValueHyper:
    clip_value: float
    def __new__(cls, *, clip_value: float) -> ClipGradValueHyper: ...

@final
class AccumulateHyper:
    first: bool
    divisor: float
    def __new__(cls, *, first: bool, divisor: float) -> AccumulateHyper: ...

@final
class EmaHyper:
    weight: float
    def __new__(cls, *, weight: float) -> EmaHyper: ...

def get_total_norm(func: str, gradients: Mapping[Any, np.ndarray], hyper: TotalNormHyper) -> float: ...
def clip_grads_with_norm(func: str, gradients: Mapping[Any, np.ndarray], hyper: ClipGradsWithNormHyper) -> None: ...
def accumulate(
    func: str, sums: Mapping[Any, np.ndarray], gradients: Mapping[Any, np.ndarray], hyper: AccumulateHyper
) -> None: ...
def ema_update(
    func: str, averaged: Mapping[Any, np.ndarray], params: Mapping[Any, np.ndarray], hyper: EmaHyper
) -> None: ...
def clip_grad_value(func: str, gradients: Mapping[Any, np.ndarray], hyper: ClipGradValueHyper) -> None: ...
def pack(func: str, tensors: list[np.ndarray], bucket: np.ndarray) -> None: ...
def unpack(func: str, bucket: np.ndarray, tensors: list[np.ndarray], divisor: float | None = None) -> None: ...
def divide(func: str, tensors: list[np.ndarray], divisor: float) -> None: ...
def sum_bf16(src: np.ndarray, acc: np.ndarray) -> None: ...
def batchnorm_forward(
    func: str,
    state: BatchNormState,
    x: np.ndarray,
    training: bool,
    channels: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    hyper: BatchNormHyper,
) -> np.ndarray: ...
def batchnorm_backward(func: str, state: BatchNormState, grad_output: np.ndarray) -> np.ndarray: ...
def dropout_forward(
    func: str, state: DropoutState, x: np.ndarray, training: bool, hyper: DropoutHyper
) -> np.ndarray: ...
def dropout_backward(func: str, state: DropoutState, grad_output: np.ndarray) -> np.ndarray: ...
def init_fill(func: str, w: np.ndarray, hyper: InitHyper) -> None: ...

@final
class RegularizationHyper:
    lambda_l1: float
    lambda_l2: float
    def __new__(cls, *, lambda_l1: float, lambda_l2: float) -> RegularizationHyper: ...

def compute_regularization(
    func: str, weights: Mapping[Any, np.ndarray], hyper: RegularizationHyper
) -> tuple[float, dict[Any, np.ndarray]]: ...

@final
class PruneHyper:
    sparsity: float
    global_scope: bool
    def __new__(cls, *, sparsity: float, global_scope: bool) -> PruneHyper: ...

def prune_network(
    func: str, weights: Mapping[Any, np.ndarray], hyper: PruneHyper
) -> tuple[Mapping[Any, np.ndarray], list[float | None]]: ...
def magnitude_masks(
    func: str, weights: Mapping[Any, np.ndarray], hyper: PruneHyper
) -> tuple[Mapping[Any, np.ndarray], list[float | None]]: ...
def apply_masks(func: str, params: Mapping[Any, np.ndarray], masks: Mapping[Any, np.ndarray]) -> None: ...
def gradual_prune(
    func: str, params: Mapping[Any, np.ndarray], masks: Mapping[Any, np.ndarray], hyper: PruneHyper
) -> list[float | None]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def _set_parallel_min_bytes(bytes: int) -> None: ...
def _memory_bandwidth(elements: int, repeat: int) -> tuple[float, float]: ...

# LAMB, LARS, LayerAdaptiveLR and the adaptive clippers
@final
class LambHyper:
    learning_rate: float
    beta1: float
    beta2: float
    epsilon: float
    weight_decay: float
    maximize: bool
    def __new__(
        cls, *, learning_rate: float, beta1: float, beta2: float, epsilon: float, weight_decay: float, maximize: bool
    ) -> LambHyper: ...

@final
class LarsHyper:
    learning_rate: float
    momentum: float
    weight_decay: float
    trust_coefficient: float
    epsilon: float
    maximize: bool
    def __new__(
        cls,
        *,
        learning_rate: float,
        momentum: float,
        weight_decay: float,
        trust_coefficient: float,
        epsilon: float,
        maximize: bool,
    ) -> LarsHyper: ...

@final
class LayerAdaptiveLRHyper:
    learning_rate: float
    beta: float
    epsilon: float
    def __new__(cls, *, learning_rate: float, beta: float, epsilon: float) -> LayerAdaptiveLRHyper: ...

@final
class AdaptiveClipperHyper:
    init_clip_value: float
    adaptation_rate: float
    min_clip_value: float
    def __new__(
        cls, *, init_clip_value: float, adaptation_rate: float, min_clip_value: float
    ) -> AdaptiveClipperHyper: ...

@final
class AdaptiveGradClipHyper:
    clipping: float
    eps: float
    def __new__(cls, *, clipping: float, eps: float) -> AdaptiveGradClipHyper: ...

def lamb(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: LambHyper,
    groups: tuple[list[LambHyper], dict[Any, int]] | None = None,
) -> None: ...
def lars(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: LarsHyper,
    groups: tuple[list[LarsHyper], dict[Any, int]] | None = None,
) -> None: ...
def layer_adaptive_lr(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray] | None,
    gradients: Mapping[Any, np.ndarray],
    state: Mapping[Any, Mapping[str, np.ndarray]],
    layer_steps: Mapping[Any, int],
    step: int | None,
    hyper: LayerAdaptiveLRHyper,
    write: str,
    groups: tuple[list[LayerAdaptiveLRHyper], dict[Any, int]] | None = None,
) -> dict[Any, np.ndarray]: ...
def adaptive_grad_clip(
    func: str,
    gradients: Mapping[Any, np.ndarray],
    params: Mapping[Any, np.ndarray],
    hyper: AdaptiveGradClipHyper,
) -> None: ...
def adaptive_clipper(
    func: str,
    gradients: Mapping[Any, np.ndarray],
    running_max: float,
    running_weight: float,
    hyper: AdaptiveClipperHyper,
) -> tuple[dict[Any, np.ndarray], float, float]: ...

@final
class AdagradHyper:
    learning_rate: float
    lr_decay: float
    weight_decay: float
    epsilon: float
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        lr_decay: float,
        weight_decay: float,
        epsilon: float,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> AdagradHyper: ...

@final
class AdamaxHyper:
    learning_rate: float
    beta1: float
    beta2: float
    epsilon: float
    weight_decay: float
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        beta1: float,
        beta2: float,
        epsilon: float,
        weight_decay: float,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> AdamaxHyper: ...

@final
class NAdamHyper:
    learning_rate: float
    beta1: float
    beta2: float
    epsilon: float
    weight_decay: float
    momentum_decay: float
    decoupled: bool
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        beta1: float,
        beta2: float,
        epsilon: float,
        weight_decay: float,
        momentum_decay: float,
        decoupled: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> NAdamHyper: ...

@final
class RMSpropHyper:
    learning_rate: float
    alpha: float
    epsilon: float
    weight_decay: float
    momentum: float
    centered: bool
    maximize: bool
    bf16_state: bool
    rounding_seed: int | None
    def __new__(
        cls,
        *,
        learning_rate: float,
        alpha: float,
        epsilon: float,
        weight_decay: float,
        momentum: float,
        centered: bool,
        maximize: bool,
        bf16_state: bool,
        rounding_seed: int | None,
    ) -> RMSpropHyper: ...

def adagrad(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: AdagradHyper,
    groups: tuple[list[AdagradHyper], dict[Any, int]] | None = None,
) -> None: ...
def adamax(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: AdamaxHyper,
    groups: tuple[list[AdamaxHyper], dict[Any, int]] | None = None,
) -> None: ...
def nadam(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: NAdamHyper,
    groups: tuple[list[NAdamHyper], dict[Any, int]] | None = None,
) -> None: ...
def rmsprop(
    func: str,
    steps: StepState,
    params: Mapping[Any, np.ndarray],
    gradients: Mapping[Any, np.ndarray],
    fresh: dict[Any, dict[str, np.ndarray]] | None,
    hyper: RMSpropHyper,
    groups: tuple[list[RMSpropHyper], dict[Any, int]] | None = None,
) -> None: ...
