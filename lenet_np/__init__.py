"""lenet_np: LeNet from scratch in NumPy and numba, with every intermediate exposed by name.

>>> from lenet_np import load_model
>>> model = load_model("models/lenet.npz")
>>> logits, acts = model.forward(x)     # x: (N, 1, 28, 28) float32 pixel/255
>>> acts["conv2"].shape                 # (N, 18, 8, 8)
"""
__version__ = "0.1.0"

from .checkpoint import load_model  # noqa: E402  (after __version__, which checkpoint reads)

__all__ = ["load_model", "__version__"]
