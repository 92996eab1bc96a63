"""Checkpoints: one ``.npz`` with the weights under PyTorch state_dict names and layouts,
the optimizer's velocities under ``optimizer.<name>``, and a JSON metadata string under
``meta``. Written atomically, read without pickle.

``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in params.items()})`` loads
the weights into the same architecture built from ``torch.nn`` layers.
"""
import hashlib
import json
import zipfile

import numpy as np

from . import __version__
from .data import PROJECT_ROOT
from .errors import LenetError
from .fileio import atomic_path
from .model import Architecture, LeNet

OPTIMIZER_PREFIX = "optimizer."
DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "lenet.npz"


def params_checksum(params):
    """SHA-256 over the parameters' names, dtypes, shapes and bytes.

    It identifies a model independently of the file's zip timestamps, so the same seed gives
    the same checksum.
    """
    digest = hashlib.sha256()
    for name in sorted(params):
        value = np.ascontiguousarray(params[name])
        digest.update(f"{name}:{value.dtype.str}:{value.shape};".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def save_checkpoint(path, model, meta, velocity=None):
    """Write ``model``'s parameters, optional optimizer velocities and ``meta`` to ``path``."""
    meta = dict(meta, architecture=model.arch.to_dict(), version=__version__,
                params_sha256=params_checksum(model.params))
    arrays = dict(model.params)
    for name, value in (velocity or {}).items():
        arrays[OPTIMIZER_PREFIX + name] = value
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    with atomic_path(path) as tmp:
        np.savez(tmp, **arrays)


def load_checkpoint(path):
    """Read a checkpoint: returns ``(model, meta, velocity)``; bad files raise LenetError."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
    except FileNotFoundError:
        raise LenetError(f"{path}: checkpoint not found") from None
    except IsADirectoryError:
        raise LenetError(f"{path}: is a folder, expected a checkpoint .npz file") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise LenetError(f"{path}: not a readable checkpoint ({err})") from None
    if "meta" not in arrays:
        raise LenetError(f"{path}: not a lenet_np checkpoint (no meta record)")
    try:
        meta = json.loads(str(arrays.pop("meta")))
        arch = Architecture.from_dict(meta["architecture"])
        velocity = {name[len(OPTIMIZER_PREFIX):]: arrays.pop(name)
                    for name in list(arrays) if name.startswith(OPTIMIZER_PREFIX)}
        model = LeNet(arch, arrays)
    except (ValueError, KeyError, TypeError) as err:
        raise LenetError(f"{path}: inconsistent checkpoint ({err})") from None
    return model, meta, velocity


def load_model(path=None):
    """The trained model stored in a checkpoint (default: the committed ``models/lenet.npz``)."""
    return load_checkpoint(DEFAULT_MODEL_PATH if path is None else path)[0]
