# The compiled half of gradfast. Private: call the Python API in gradfast/ instead.
# `func` is the public name used in error messages.

from typing import Any

import numpy as np

def adam(
    func: str,
    params: dict[Any, np.ndarray],
    gradients: dict[Any, np.ndarray],
    state: dict[Any, dict[str, np.ndarray]],
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
    weight_decay: float,
    decoupled: bool,
    amsgrad: bool,
) -> None: ...
def adam_array(
    func: str,
    params: np.ndarray,
    gradients: np.ndarray,
    m: np.ndarray,
    v: np.ndarray,
    step: int,
    lr: float,
    beta1: float,
    beta2: float,
    eps: float,
) -> None: ...
def momentum(
    func: str,
    params: dict[Any, np.ndarray],
    gradients: dict[Any, np.ndarray],
    state: dict[Any, dict[str, np.ndarray]],
    lr: float,
    momentum: float,
    nesterov: bool,
) -> None: ...
def clip_grad_norm(
    func: str,
    gradients: dict[Any, np.ndarray],
    max_norm: float,
    norm_type: float,
    error_if_nonfinite: bool,
) -> float: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def bandwidth_probe(written: list[np.ndarray], read: list[np.ndarray]) -> None: ...
