"""MNIST-format data: IDX files read with idx2numpy after their headers are checked.

A data folder holds the four files under their official names, gzip-compressed (``.gz``) or
plain. Fashion-MNIST (Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist/) has
the same names and format and loads unchanged.

Files are identified by the SHA-256 of their decompressed content. The project's own folder,
``data/mnist``, must hold exactly the official MNIST files; in any other folder, a split whose
files partly match a known data set and partly do not is refused as corrupt, and files that
match nothing known are accepted as another data set, their checksums recorded for provenance.
"""
import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import idx2numpy
import numpy as np

from .errors import LenetError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data" / "mnist"

SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
          "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}

# IDX magic numbers: two zero bytes, the element type (0x08 = unsigned byte), the rank.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801
IMAGE_SIDE = 28
N_CLASSES = 10

# SHA-256 of the decompressed content of known data sets.
KNOWN_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}


@dataclass
class Split:
    """One split of a data set as stored: images (N, 28, 28) uint8 and labels (N,) uint8."""
    name: str             # "train" or "test"
    images: np.ndarray
    labels: np.ndarray
    dataset: str          # "mnist", "fashion-mnist" or "unverified"
    sha256: dict          # file name (without .gz) -> SHA-256 of its decompressed content
    data_dir: str

    def inputs(self, index=slice(None)):
        """The network's input for the selected images: (n, 1, 28, 28) float32 pixel/255."""
        return to_input(self.images[index])


def to_input(images):
    """(N, 28, 28) uint8 -> (N, 1, 28, 28) float32 in [0, 1]."""
    return (images.astype(np.float32) / np.float32(255.0))[:, None, :, :]


def _find_file(folder, name):
    for candidate in (folder / (name + ".gz"), folder / name):
        if candidate.is_file():
            return candidate
    raise LenetError(f"{folder}: no {name} or {name}.gz in the data folder")


def _read_bytes(path):
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise LenetError(f"{path}: cannot read ({err.strerror})") from None
    if raw[:2] == b"\x1f\x8b":                           # gzip magic
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as err:
            raise LenetError(f"{path}: corrupt or truncated gzip stream ({err})") from None
    return raw


def read_idx(path, magic):
    """Read one IDX file after checking its magic number and that its size fits its header.

    Returns ``(array, sha256 of the decompressed content)``.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise LenetError(f"{path}: truncated, {len(raw)} bytes is shorter than an IDX header")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise LenetError(f"{path}: wrong IDX magic number 0x{found:08x}, expected 0x{magic:08x}")
    rank = magic & 0xFF
    header_len = 4 + 4 * rank
    if len(raw) < header_len:
        raise LenetError(f"{path}: truncated inside its header")
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    expected_len = header_len + int(np.prod(dims, dtype=np.int64))
    if len(raw) < expected_len:
        raise LenetError(f"{path}: truncated, header promises {'×'.join(map(str, dims))} bytes of "
                         f"data but the file has {len(raw) - header_len}")
    if len(raw) > expected_len:
        raise LenetError(f"{path}: {len(raw) - expected_len} unexpected bytes after the "
                         f"{'×'.join(map(str, dims))} data its header declares")
    array = idx2numpy.convert_from_string(raw)
    return array, hashlib.sha256(raw).hexdigest()


def identify(sha256, strict_mnist):
    """Name the data set the files' checksums belong to, or raise on a partial match.

    ``strict_mnist`` (the project's own data folder) demands the official MNIST files.
    """
    for dataset, known in KNOWN_SHA256.items():       # "mnist" first
        mismatched = [name for name in sha256 if known[name] != sha256[name]]
        if not mismatched:
            return dataset
        if len(mismatched) < len(sha256) or (strict_mnist and dataset == "mnist"):
            name = mismatched[0]
            raise LenetError(f"{name}: checksum mismatch, the SHA-256 of its content is "
                             f"{sha256[name][:16]}…, {dataset} expects {known[name][:16]}…; "
                             f"the file is corrupt or replaced")
    return "unverified"


def load_split(split, data_dir=None):
    """Load and validate the ``"train"`` or ``"test"`` split of a folder of IDX files."""
    if split not in SPLITS:
        raise LenetError(f"unknown split {split!r}, expected one of {', '.join(SPLITS)}")
    folder = Path(data_dir) if data_dir is not None else DEFAULT_DATA_DIR
    if not folder.is_dir():
        raise LenetError(f"{folder}: data folder not found")
    images_name, labels_name = SPLITS[split]
    images_path = _find_file(folder, images_name)
    labels_path = _find_file(folder, labels_name)
    images, images_sha = read_idx(images_path, IMAGES_MAGIC)
    labels, labels_sha = read_idx(labels_path, LABELS_MAGIC)
    if images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise LenetError(f"{images_path}: images are {images.shape[1]}×{images.shape[2]}, "
                         f"expected {IMAGE_SIDE}×{IMAGE_SIDE}")
    if len(images) != len(labels):
        raise LenetError(f"{labels_path}: {len(labels)} labels for {len(images)} images in "
                         f"{images_path.name}")
    if len(labels) and labels.max() >= N_CLASSES:
        raise LenetError(f"{labels_path}: label {int(labels.max())} outside the classes "
                         f"0-{N_CLASSES - 1}")
    sha256 = {images_name: images_sha, labels_name: labels_sha}
    strict = DEFAULT_DATA_DIR.is_dir() and os.path.samefile(folder, DEFAULT_DATA_DIR)
    dataset = identify(sha256, strict_mnist=strict)
    return Split(name=split, images=images, labels=labels, dataset=dataset, sha256=sha256,
                 data_dir=str(folder))
