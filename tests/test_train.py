"""Training: the loss falls, seeds reproduce, checkpoints round-trip and resume exactly."""
import json

import numpy as np
import pytest

from lenet_np import load_model
from lenet_np.checkpoint import (DEFAULT_MODEL_PATH, load_checkpoint, params_checksum,
                                 save_checkpoint)
from lenet_np.data import load_split
from lenet_np.errors import LenetError
from lenet_np.model import Architecture, LeNet
from lenet_np.optim import SGD
from lenet_np.train import TrainConfig, train
from tests.conftest import assert_one_line_error, run_cli

SMALL = dict(conv1=3, conv2=6, fc="24,16", batch_size=32, lr=0.05)


def test_loss_falls_on_a_fixed_seed_subset():
    split = load_split("train")
    x, y = split.inputs(slice(0, 512)), split.labels[:512].astype(np.int64)
    model = LeNet.initialize(seed=0)
    optimizer = SGD(model.params, momentum=0.9, weight_decay=5e-4)
    first, _, _ = model.loss_and_grads(x, y)
    for _ in range(3):
        for i in range(0, 512, 64):
            _, grads, _ = model.loss_and_grads(x[i:i + 64], y[i:i + 64])
            optimizer.step(grads, lr=0.05)
    last, _, _ = model.loss_and_grads(x, y)
    assert last < 0.5 * first, (first, last)


def test_same_seed_gives_identical_weights(tmp_path, idx_folder):
    a = train(TrainConfig(epochs=1, seed=5, data_dir=str(idx_folder),
                          out=str(tmp_path / "a.npz"), **SMALL))
    b = train(TrainConfig(epochs=1, seed=5, data_dir=str(idx_folder),
                          out=str(tmp_path / "b.npz"), **SMALL))
    c = train(TrainConfig(epochs=1, seed=6, data_dir=str(idx_folder),
                          out=str(tmp_path / "c.npz"), **SMALL))
    for name in a.params:
        np.testing.assert_array_equal(a.params[name], b.params[name])
    assert params_checksum(a.params) == params_checksum(b.params) != params_checksum(c.params)


def test_resume_continues_exactly(tmp_path, idx_folder):
    """Two epochs in one run equal a run stopped by Ctrl-C in epoch 2 and then --resume'd."""
    common = dict(seed=2, data_dir=str(idx_folder), **SMALL)
    whole = train(TrainConfig(epochs=2, out=str(tmp_path / "whole.npz"), **common))
    partial = tmp_path / "partial.npz"
    _train_first_epoch_of_two(partial, common)
    resumed = train(TrainConfig(epochs=2, out=str(partial), resume=True, **common))
    for name in whole.params:
        np.testing.assert_array_equal(whole.params[name], resumed.params[name])
    assert load_checkpoint(partial)[1]["epochs_done"] == 2


def _train_first_epoch_of_two(path, common):
    """The checkpoint a 2-epoch run leaves after its first epoch (as after Ctrl-C in epoch 2)."""
    import lenet_np.train as train_module
    real_epoch = train_module.train_epoch
    calls = []

    def stop_in_second_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)
    train_module.train_epoch = stop_in_second_epoch
    try:
        with pytest.raises(SystemExit) as stop:
            train(TrainConfig(epochs=2, out=str(path), **common))
        assert stop.value.code == 130
    finally:
        train_module.train_epoch = real_epoch
    assert load_checkpoint(path)[1]["epochs_done"] == 1


def test_checkpoint_round_trip(tmp_path, small_model):
    velocity = {k: np.full_like(v, 0.5) for k, v in small_model.params.items()}
    save_checkpoint(tmp_path / "m.npz", small_model, {"note": "x"}, velocity)
    model, meta, loaded_velocity = load_checkpoint(tmp_path / "m.npz")
    assert model.arch == small_model.arch
    for name, value in small_model.params.items():
        np.testing.assert_array_equal(model.params[name], value)
        np.testing.assert_array_equal(loaded_velocity[name], velocity[name])
    assert meta["note"] == "x" and meta["params_sha256"] == params_checksum(model.params)
    with np.load(tmp_path / "m.npz") as archive:           # PyTorch names and layouts
        assert archive["conv1.weight"].shape == (3, 1, 5, 5)
        assert archive["fc1.weight"].shape == (16, 5 * 4 * 4)


def test_bad_checkpoints(tmp_path):
    with pytest.raises(LenetError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(LenetError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.npz")
    np.savez(tmp_path / "nometa.npz", x=np.zeros(3))
    with pytest.raises(LenetError, match="no meta record"):
        load_checkpoint(tmp_path / "nometa.npz")


def test_committed_model_accuracy_matches_a_fresh_evaluation():
    model, meta, _ = load_checkpoint(DEFAULT_MODEL_PATH)
    assert model.arch == Architecture()
    test = load_split("test")
    accuracy = model.accuracy(test.inputs(), test.labels)
    assert accuracy == pytest.approx(meta["test_accuracy"], abs=1e-9)
    assert accuracy >= 0.99
    assert meta["data_sha256"]["t10k-images-idx3-ubyte"] == test.sha256["t10k-images-idx3-ubyte"]
    assert params_checksum(model.params) == meta["params_sha256"]


def test_public_api_shapes():
    model = load_model()
    x = load_split("test").inputs(slice(0, 3))
    logits, acts = model.forward(x)
    expected = {"input": (1, 28, 28), "conv1": (6, 24, 24), "relu1": (6, 24, 24),
                "pool1": (6, 12, 12), "conv2": (18, 8, 8), "relu2": (18, 8, 8),
                "pool2": (18, 4, 4), "flatten": (288,), "fc1": (120,), "relu3": (120,),
                "fc2": (84,), "relu4": (84,), "fc3": (10,)}
    assert list(acts) == list(expected)
    for name, shape in expected.items():
        assert acts[name].shape == (3, *shape), name
    np.testing.assert_array_equal(acts["fc3"], logits)


def test_cli_trains_and_writes_a_checkpoint(tmp_path, idx_folder):
    out = tmp_path / "m.npz"
    result = run_cli("lenet_np.train", "--data-dir", idx_folder, "--out", out, "--epochs", "2",
                     "--conv1", "3", "--conv2", "6", "--fc", "24,16", "--seed", "4")
    assert result.returncode == 0, result.stderr
    assert "epoch 2/2" in result.stderr                      # the progress bar
    _, meta, _ = load_checkpoint(out)
    assert meta["epochs_done"] == 2 and len(meta["history"]) == 2
    assert meta["dataset"] == "unverified" and meta["config"]["seed"] == 4
    json.dumps(meta)


@pytest.mark.parametrize("args,expected", [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--lr", "-1"], "--lr must be positive"),
    (["--fc", "12,x"], "--fc takes comma-separated integers"),
    (["--out", "/nonexistent/dir/m.npz"], "output folder not found"),
    (["--resume", "--out", "MISSING"], "checkpoint not found"),
])
def test_cli_bad_options(tmp_path, args, expected):
    args = [a.replace("MISSING", str(tmp_path / "missing.npz")) for a in args]
    result = run_cli("lenet_np.train", *args)
    assert_one_line_error(result, "lenet_np.train: error: ", expected)


def test_interrupt_keeps_the_last_checkpoint(tmp_path, idx_folder):
    path = tmp_path / "m.npz"
    common = dict(seed=2, data_dir=str(idx_folder), **SMALL)
    _train_first_epoch_of_two(path, common)
    model, meta, _ = load_checkpoint(path)
    assert meta["epochs_done"] == 1
    assert not list(tmp_path.glob(".tmp-*"))                 # no half-written file left
