"""``gradfast demo``: every mode trains to its accuracy line and writes a readable PNG."""

import argparse
import os
import re

import gradfast
import numpy as np
import pytest

_NEEDS = 'needs the demo extra: pip install "gradfast[demo]"'
for _name in ("sklearn", "matplotlib", "threadpoolctl"):
    pytest.importorskip(_name, reason=_NEEDS)

from gradfast import demo  # noqa: E402
from gradfast.__main__ import main  # noqa: E402
from matplotlib.image import imread  # noqa: E402
from test_distributed import run_mpi  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

EPOCH = re.compile(
    r"^epoch +(\d+)/(\d+)  loss (\d+\.\d{4})  train acc ([01]\.\d{4})  test acc ([01]\.\d{4})  "
    r"lr (\S+)  sparsity ([01]\.\d\d)  \d+\.\d\d s$"
)
RNN = re.compile(r"^rnn: 300 bptt updates, loss (\d+\.\d{4}) -> (\d+\.\d{4}) \(\d+x lower\)  \d+\.\d\d s$")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """As the command does (``demo.run``), for the tests that call its training directly."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def run_demo(capsys, out, *args) -> list[str]:
    assert main(["demo", "--out", str(out), *args]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    return captured.out.splitlines()


def final_accuracy(lines: list[str]) -> float:
    """The value of the last line, which must be ``test accuracy: 0.XXXX``."""
    match = re.fullmatch(r"test accuracy: ([01]\.\d{4})", lines[-1])
    assert match, lines[-1]
    return float(match[1])


def check_png(lines: list[str], out) -> None:
    """The PNG is where the printed line says, of the expected size, and not blank."""
    path = os.path.join(str(out), "gradfast-demo.png")
    assert f"curves: {path}" in lines
    image = imread(path)
    assert image.shape[:2] == (600, 1040)  # 13 x 7.5 inches at 80 dpi
    assert np.ptp(image[..., :3]) > 0.5 and (image[..., :3] < 0.5).mean() > 0.01  # drawn on, not blank


def test_defaults_reach_95_percent_and_the_rnn_loss_falls_10x(capsys, tmp_path):
    lines = run_demo(capsys, tmp_path)
    assert lines[0] == "gradfast demo: gradfast, adamw, 30 epochs, seed 0"
    epochs = [EPOCH.match(line) for line in lines if line.startswith("epoch")]
    assert all(epochs) and [int(m[1]) for m in epochs] == list(range(1, 31))
    assert float(epochs[-1][7]) == pytest.approx(demo.FINAL_SPARSITY, abs=0.01)
    assert float(epochs[-1][5]) == final_accuracy(lines) >= 0.95
    [rnn] = [RNN.match(line) for line in lines if line.startswith("rnn:")]
    assert float(rnn[1]) >= 10 * float(rnn[2])
    assert re.fullmatch(r"time: gradfast \d+\.\d\d s", lines[-3])
    check_png(lines, tmp_path)


def test_pruned_weights_stay_pruned_through_optimizer_steps():
    """Between pruning rounds the optimizer's momentum would revive pruned weights; the masks
    applied after each step keep the sparsity from ever falling."""
    args = argparse.Namespace(epochs=3, seed=1, optimizer="adam", lr=3e-3, state_dtype=None)
    history = demo.History()
    demo.train_mlp(gradfast, args, None, history, log=lambda message: None)
    sparsity = np.array(history.step_sparsity)
    assert np.all(np.diff(sparsity) >= 0)
    begin = len(sparsity) // 5  # the pruner's begin_step
    assert np.all(sparsity[:begin] == 0.0) and sparsity[-1] == pytest.approx(demo.FINAL_SPARSITY, abs=0.01)
    lr = np.array(history.step_lr)
    warmup = max(1, len(lr) // 10)  # LinearLR from 1 / warmup of the peak, then CosineAnnealingLR
    assert lr.max() == pytest.approx(3e-3) and lr[0] == pytest.approx(3e-3 / warmup) and lr[-1] < 1e-5
    assert lr[warmup] == pytest.approx(3e-3) and np.all(np.diff(lr[: warmup + 1]) > 0)


@pytest.mark.parametrize("optimizer", sorted(set(demo.OPTIMIZERS) - {"adamw"}))  # adamw: the default
def test_every_optimizer_learns_with_its_default_rate(optimizer):
    args = argparse.Namespace(epochs=4, seed=2, optimizer=optimizer, lr=demo.OPTIMIZERS[optimizer][1], state_dtype=None)
    history = demo.History()
    demo.train_mlp(gradfast, args, None, history, log=lambda message: None)
    assert history.epoch_test_acc[-1] >= 0.9


def test_bfloat16_state_reaches_the_float32_accuracy_within_half_a_point(capsys, tmp_path):
    full = final_accuracy(run_demo(capsys, tmp_path))
    lines = run_demo(capsys, tmp_path, "--state-dtype", "bfloat16")
    assert lines[0] == "gradfast demo: gradfast, adamw, bfloat16 state, 30 epochs, seed 0"
    assert abs(final_accuracy(lines) - full) <= 0.005  # 2 of the 450 test images


def test_8bit_state_reaches_the_float32_accuracy_within_two_points(capsys, tmp_path):
    full = final_accuracy(run_demo(capsys, tmp_path))
    lines = run_demo(capsys, tmp_path, "--state-dtype", "8bit")
    assert lines[0] == "gradfast demo: gradfast, adamw, 8bit state, 30 epochs, seed 0"
    # measured: 0.9733 against 0.9844 (5 of the 450 test images); most of the MLP's arrays
    # are above 4,096 elements, so nearly all its state is 8-bit
    assert abs(final_accuracy(lines) - full) <= 0.02


def test_the_png_goes_outside_the_working_directory_by_default(capsys, tmp_path, monkeypatch):
    # the default is the temporary directory: a run inside a clone leaves git status clean
    assert os.path.isabs(demo.DEFAULT_OUT)
    assert os.path.commonpath([demo.DEFAULT_OUT, os.getcwd()]) != os.getcwd()
    clone, cache = tmp_path / "clone", tmp_path / "tmp"
    clone.mkdir()
    monkeypatch.chdir(clone)
    monkeypatch.setattr(demo, "DEFAULT_OUT", str(cache))
    assert main(["demo", "--epochs", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert list(clone.iterdir()) == []
    assert f"curves: {cache / 'gradfast-demo.png'}" in lines


def test_bfloat16_state_needs_an_optimizer_that_has_it(capsys):
    assert main(["demo", "--optimizer", "lamb", "--state-dtype", "bfloat16"]) == 2
    assert "--state-dtype bfloat16 needs one of adamw, adam, momentum" in capsys.readouterr().err


def test_reference_trains_the_same_and_reports_both_times(capsys, tmp_path):
    lines = run_demo(capsys, tmp_path, "--impl", "reference")
    assert lines[0] == "gradfast demo: reference, adamw, 30 epochs, seed 0"
    times = re.fullmatch(
        r"time: gradfast \d+\.\d\d s \(test accuracy ([01]\.\d{4})\), reference \d+\.\d\d s \(\d+\.\dx\)", lines[-3]
    )
    assert times, lines[-3]
    fast, reference = float(times[1]), final_accuracy(lines)
    assert min(fast, reference) >= 0.95 and abs(fast - reference) <= 0.02  # 9 of the 450 test images
    check_png(lines, tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--epochs", "0"], "argument --epochs: must be an int >= 1, got '0'"),
        (["--seed", "-1"], "argument --seed: must be an int >= 0, got '-1'"),
        (["--lr", "nan"], "argument --lr: must be a number > 0, got 'nan'"),
        (["--optimizer", "sgd"], "argument --optimizer: invalid choice: 'sgd'"),
        (["--state-dtype", "float16"], "argument --state-dtype: invalid choice: 'float16'"),
    ],
)
def test_bad_arguments_are_refused(capsys, args, message):
    with pytest.raises(SystemExit) as exc:
        main(["demo", *args])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_distributed_under_mpiexec_reaches_the_same_accuracy(tmp_path):
    out = run_mpi(2, "-m", "gradfast", "demo", "--distributed", "--out", str(tmp_path))
    lines = out.splitlines()
    assert lines[0] == "gradfast demo: gradfast, adamw, 30 epochs, seed 0, 2 processes"
    assert len([line for line in lines if EPOCH.match(line)]) == 30  # printed by rank 0 only
    assert final_accuracy(lines) >= 0.95
    check_png(lines, tmp_path)
