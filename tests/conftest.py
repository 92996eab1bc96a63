"""Shared fixtures: small random models, synthetic IDX folders and a CLI runner."""
import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lenet_np.data import IMAGES_MAGIC, LABELS_MAGIC, SPLITS
from lenet_np.model import Architecture, LeNet

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def idx_bytes(array, magic):
    """Serialise a uint8 array as an IDX file: magic, one big-endian uint32 per dim, data."""
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def write_idx_folder(folder, n_train=200, n_test=100, seed=0, compress=True):
    """A folder of the four IDX files holding random images with learnable labels.

    Each label is drawn, then its image is noise plus a bright bar whose row depends on the
    label, so a network can learn it in a few steps.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for split, count in (("train", n_train), ("test", n_test)):
        labels = rng.integers(0, 10, count).astype(np.uint8)
        images = rng.integers(0, 60, (count, 28, 28)).astype(np.uint8)
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label:4 + 2 * label, 4:24] = 255
        images_name, labels_name = SPLITS[split]
        for name, array, magic in ((images_name, images, IMAGES_MAGIC),
                                   (labels_name, labels, LABELS_MAGIC)):
            data = idx_bytes(array, magic)
            if compress:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
    return folder


@pytest.fixture
def idx_folder(tmp_path):
    return write_idx_folder(tmp_path / "idx")


@pytest.fixture
def small_model():
    """A narrow random LeNet (float32): 3 conv1 filters, 5 conv2 filters, dense 16, 12."""
    return LeNet.initialize(Architecture(conv1=3, conv2=5, fc=(16, 12)), seed=1)


def run_cli(module, *args, cwd=None):
    """Run ``python -m module args`` in a subprocess; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONPATH=str(PROJECT_ROOT))
    return subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or PROJECT_ROOT, env=env, timeout=600)


def assert_one_line_error(result, *fragments):
    """A bad-input run: exit status 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
