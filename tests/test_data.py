"""IDX reading and validation, through the library and through the CLI."""
import gzip
import shutil

import numpy as np
import pytest

from lenet_np.data import (DEFAULT_DATA_DIR, IMAGES_MAGIC, KNOWN_SHA256, SPLITS, load_split,
                           read_idx)
from lenet_np.errors import LenetError
from tests.conftest import assert_one_line_error, idx_bytes, run_cli, write_idx_folder


def test_committed_mnist_is_the_official_data():
    test = load_split("test")
    assert test.dataset == "mnist"
    assert test.images.shape == (10000, 28, 28) and test.images.dtype == np.uint8
    assert test.labels.shape == (10000,)
    assert list(test.labels[:8]) == [7, 2, 1, 0, 4, 1, 4, 9]     # the published first labels
    assert np.bincount(test.labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028,
                                                 974, 1009]
    assert test.sha256 == {name: KNOWN_SHA256["mnist"][name] for name in SPLITS["test"]}


def test_plain_and_gzip_read_the_same(tmp_path):
    write_idx_folder(tmp_path / "gz", compress=True)
    write_idx_folder(tmp_path / "plain", compress=False)
    a, b = load_split("test", tmp_path / "gz"), load_split("test", tmp_path / "plain")
    np.testing.assert_array_equal(a.images, b.images)
    assert a.sha256 == b.sha256 and a.dataset == "unverified"


def test_inputs_are_scaled_float32(idx_folder):
    split = load_split("train", idx_folder)
    x = split.inputs(slice(0, 3))
    assert x.shape == (3, 1, 28, 28) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 0] * 255, split.images[:3], rtol=1e-6)


def test_fashion_mnist_checksums_are_recognised(tmp_path):
    """A folder whose files carry Fashion-MNIST's checksums is named so (the IDX format is the
    same, so loading it needs nothing else)."""
    from lenet_np.data import identify
    sums = {name: KNOWN_SHA256["fashion-mnist"][name] for name in SPLITS["test"]}
    assert identify(sums, strict_mnist=False) == "fashion-mnist"


def corrupt(folder, name, mutate):
    path = folder / (name + ".gz")
    raw = bytearray(gzip.decompress(path.read_bytes()))
    path.write_bytes(gzip.compress(bytes(mutate(raw))))


def test_truncated_file(idx_folder):
    corrupt(idx_folder, "t10k-images-idx3-ubyte", lambda raw: raw[:-100])
    with pytest.raises(LenetError, match="t10k-images-idx3-ubyte.gz: truncated"):
        load_split("test", idx_folder)


def test_wrong_magic(idx_folder):
    def mutate(raw):
        raw[3] = 0x02
        return raw
    corrupt(idx_folder, "t10k-labels-idx1-ubyte", mutate)
    with pytest.raises(LenetError, match="wrong IDX magic number 0x00000802"):
        load_split("test", idx_folder)


def test_corrupt_gzip_stream(idx_folder):
    path = idx_folder / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(LenetError, match="corrupt or truncated gzip"):
        load_split("test", idx_folder)


def test_count_mismatch(idx_folder):
    labels = np.zeros(99, np.uint8)
    (idx_folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(labels, 0x00000801)))
    with pytest.raises(LenetError, match="99 labels for 100 images"):
        load_split("test", idx_folder)


def test_label_outside_classes(idx_folder):
    labels = np.full(100, 12, np.uint8)
    (idx_folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(labels, 0x00000801)))
    with pytest.raises(LenetError, match="label 12 outside the classes 0-9"):
        load_split("test", idx_folder)


def test_wrong_image_size(tmp_path):
    folder = write_idx_folder(tmp_path / "idx")
    images = np.zeros((100, 20, 20), np.uint8)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(images, IMAGES_MAGIC)))
    with pytest.raises(LenetError, match="images are 20×20, expected 28×28"):
        load_split("test", folder)


def test_partial_mnist_match_is_a_checksum_mismatch(tmp_path):
    """Real MNIST images beside a replaced label file: the folder claims MNIST but is corrupt."""
    folder = tmp_path / "mnist-copy"
    folder.mkdir()
    shutil.copy(DEFAULT_DATA_DIR / "t10k-images-idx3-ubyte.gz", folder)
    labels = load_split("test").labels.copy()
    labels[0] = (labels[0] + 1) % 10
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels, 0x801)))
    with pytest.raises(LenetError, match="t10k-labels-idx1-ubyte: checksum mismatch"):
        load_split("test", folder)


def test_read_idx_reports_trailing_bytes(tmp_path):
    path = tmp_path / "x"
    path.write_bytes(idx_bytes(np.zeros((2, 28, 28), np.uint8), IMAGES_MAGIC) + b"\0\0")
    with pytest.raises(LenetError, match="2 unexpected bytes"):
        read_idx(path, IMAGES_MAGIC)


@pytest.mark.parametrize("case", ["missing-folder", "missing-file", "truncated"])
def test_cli_bad_data_is_one_line(tmp_path, case):
    folder = write_idx_folder(tmp_path / "idx")
    if case == "missing-folder":
        folder = tmp_path / "nowhere"
        expected = "data folder not found"
    elif case == "missing-file":
        (folder / "train-labels-idx1-ubyte.gz").unlink()
        expected = "no train-labels-idx1-ubyte or train-labels-idx1-ubyte.gz"
    else:
        corrupt(folder, "train-images-idx3-ubyte", lambda raw: raw[:5000])
        expected = "truncated"
    out = tmp_path / "model.npz"
    result = run_cli("lenet_np.train", "--data-dir", folder, "--out", out, "--epochs", "1")
    assert_one_line_error(result, expected)
    assert not out.exists()
