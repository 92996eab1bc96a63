"""Exact pool-aware termination, beyond SnaPEA: an output is dropped as soon as an upper bound
of its final value cannot beat 0 or the largest value found so far in its max-pool window.

The upper bound is the partial sum plus the most the remaining positive terms could add:
for each input channel, the channel's remaining positive weights times a bound on that
channel's inputs (:func:`lenet_np.early.kernels.conv_relu_pool_kernel`). The input bound is
either

- ``"field"`` (default): the largest input of each channel in the receptive field, found by
  a separable max whose comparisons are counted; exact for every input, and tight; or
- ``"range"``: a per-channel constant derived from the weights of the layers before and the
  pixel range [0, 1] (:func:`guaranteed_input_bound`); it holds for every possible input,
  costs nothing per image, and is looser.

Both are guarantees, so the max-pool output equals the dense one (up to summation order).
The C bound MACs per started output are counted as the scheme's predictor MACs.
"""
import numpy as np

from ..errors import LenetError
from .base import LayerRun, Scheme
from .direct import conv_relu_pool, receptive_field_bounds, term_order

BOUNDS = ("field", "range")


def guaranteed_input_bound(model, spec):
    """(C,) upper bound of each channel of the layer's input over every input in [0, 1].

    Walks the layers from the input: pixels <= 1; a conv output <= bias + the sum of its
    positive weights times its inputs' bounds (inputs are >= 0 after a ReLU and at the
    input); ReLU and max-pool keep the bound (ReLU floors it at 0).
    """
    bound = np.ones(model.arch.in_channels)
    for name, kind, _ in model.layers[1:]:
        if name == spec.layer:
            return bound.astype(np.float32)
        if kind == "conv":
            weight = model.params[f"{name}.weight"].astype(np.float64)
            bound = model.params[f"{name}.bias"] + np.einsum(
                "fcij,c->f", np.maximum(weight, 0), bound)
        elif kind == "relu":
            bound = np.maximum(bound, 0)
        elif kind != "pool":
            raise LenetError(f"no input bound through the {kind} layer {name}")
    raise LenetError(f"{spec.layer} is not a layer of the model")


class PoolExact(Scheme):
    """Exact pool-aware termination with an input bound from ``bound`` ("field" or "range")."""
    family = "pool_exact"
    exact = True
    reference = "pool"
    needs_pool = True

    def __init__(self, bound="field"):
        super().__init__()
        if bound not in BOUNDS:
            raise LenetError(f"the input bound must be one of {', '.join(BOUNDS)}, got {bound!r}")
        self.bound = bound

    @property
    def name(self):
        return self.family if self.bound == "field" else f"{self.family}[{self.bound}]"

    @property
    def params(self):
        return {"bound": self.bound}

    def fit(self, model, spec, train=None):
        super().fit(model, spec, train)
        self.order = term_order(spec.weight, *spec.input_shape[1:], sort=True, slots="channel")
        out_h, out_w = spec.output_shape[1:]
        # (1, C, OH, OW): the same constant for every receptive field and image.
        self.range_bound = np.broadcast_to(guaranteed_input_bound(model, spec)[None, :, None, None],
                                           (1, spec.input_shape[0], out_h, out_w))
        return self

    def input_bound(self, layer_input):
        """(bound (N or 1, C, OH, OW), comparisons (N,)) for ``layer_input`` (N, C, H, W)."""
        if self.bound == "range":
            return self.range_bound, np.zeros(len(layer_input), np.int64)
        kh, kw = self.spec.weight.shape[2:]
        return receptive_field_bounds(layer_input, kh, kw, "channel")

    def run(self, layer_input, compute_mask=None):
        bound, comparisons = self.input_bound(layer_input)
        out, macs, bound_macs, checks = conv_relu_pool(
            layer_input, self.order, self.spec.bias, self.spec.output_shape, bound,
            self.spec.pool_size, compute_mask)
        return LayerRun(relu_out=out, macs=macs, comparisons=checks + comparisons,
                        predictor_macs=bound_macs)
