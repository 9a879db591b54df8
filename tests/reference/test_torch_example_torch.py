"""examples/train_torch.py, a torch model trained with gradfast.torch, learns its task."""

import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("torch")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "train_torch.py"


def test_the_example_trains_its_classifier(capsys):
    spec = importlib.util.spec_from_file_location("train_torch", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    accuracy = module.train(epochs=4)
    assert accuracy > 0.8  # two classes: chance is 0.5
    assert capsys.readouterr().out.rstrip().endswith(f"test accuracy: {accuracy:.4f}")
