"""Low-bit prediction (SeerNet): a k-bit quantised copy of the layer predicts each output's
sign and each max-pool window's arg-max; only those outputs are computed in full precision.

Quantisation, fitted on the training split:

- inputs (>= 0) to unsigned k-bit codes, ``round(min(x, x_max) / x_max * (2^k - 1))``, with
  ``x_max`` the largest layer input seen in training (larger inputs are clipped: the copy is
  a predictor, not a guarantee);
- weights to signed k-bit codes per filter, ``round(w / max|w_f| * (2^(k-1) - 1))``;
- the bias to the same units as the integer sums.

The integer sum of an output is its prediction, up to a positive per-filter scale, so its
sign and its window's arg-max can be read directly. With a max-pool after the ReLU, the
predicted arg-max of each window is computed in full precision if its prediction is
positive; without one, every output predicted positive. The copy costs its MACs at k bits
(counted by its kernel, reported apart, and converted at k/32,
:func:`lenet_np.flops.fp32_equivalent`),
plus pool² - 1 comparisons per window for the arg-max and one for the sign.
``termination="snapea"`` finishes the chosen outputs with SnaPEA's exact termination.

Input channels that are provably 0 for every input (:func:`.base.live_channels`) are left out
of the copy and of the full-precision sums alike: they add exactly 0 to both, so the copy
costs the live channels' share of the dense layer's MACs.
"""
import numpy as np

from ..errors import LenetError
from .base import (LayerRun, Scheme, check_bits, check_choice, fitted_term_order,
                   live_channels)
from .direct import DEFAULT_CHUNK, conv_relu_masked, conv_relu_snapea, lowbit_conv
from .oracle import window_argmax_mask

TERMINATIONS = ("none", "snapea")


class LowBit(Scheme):
    """A ``bits``-bit copy of the layer chooses the outputs computed in full precision."""
    family = "lowbit"
    reference = "pool"

    def __init__(self, bits, termination="none"):
        super().__init__()
        self.bits = check_bits(bits)
        self.termination = check_choice("termination", termination, TERMINATIONS)

    @property
    def name(self):
        suffix = "+snapea" if self.termination == "snapea" else ""
        return f"{self.family}{suffix} k={self.bits}"

    @property
    def params(self):
        return {"bits": self.bits}

    def fit(self, model, spec, train=None):
        if train is None:
            raise LenetError("the low-bit copy must be fitted on the training split")
        super().fit(model, spec, train)
        self.reference = "pool" if spec.pool else "relu"
        self.input_max = float(train.layer_input.max()) or 1.0
        self.input_levels = 2 ** self.bits - 1                 # unsigned codes 0 .. 2^k - 1
        weight_levels = 2 ** (self.bits - 1) - 1               # signed codes -(2^(k-1)-1) ..
        self.live = live_channels(model, spec)                 # (C,) bool
        flat = spec.weight[:, self.live].reshape(len(spec.weight), -1).astype(np.float64)
        largest = np.abs(flat).max(axis=1)
        weight_scale = np.where(largest > 0, largest / weight_levels, 1.0)     # (F,)
        self.weight_codes = np.rint(spec.weight[:, self.live]
                                    / weight_scale[:, None, None, None]).astype(
            np.int64)                                          # (F, C_live, KH, KW)
        # One unit of an integer sum of filter f is input_step * weight_scale[f].
        input_step = self.input_max / self.input_levels
        self.bias_codes = np.rint(spec.bias / (input_step * weight_scale)).astype(np.int64)
        self.order = fitted_term_order(model, spec, train)
        return self

    def predict(self, layer_input):
        """The low-bit copy on the live channels: (N, C, H, W) -> (sums (N, F, OH, OW) int64,
        low-bit MACs (N,) int64)."""
        live_input = layer_input[:, self.live]                 # (N, C_live, H, W)
        codes = np.rint(np.minimum(live_input, self.input_max)
                        * (self.input_levels / self.input_max)).astype(np.int64)
        return lowbit_conv(codes, self.weight_codes, self.bias_codes)

    def run(self, layer_input):
        n_img = len(layer_input)
        predicted, lowbit_macs = self.predict(layer_input)
        n_outputs = int(np.prod(self.spec.output_shape))
        if self.spec.pool:
            needed = window_argmax_mask(predicted, self.spec.pool_size)
            windows = n_outputs // self.spec.pool_size ** 2
            comparisons = windows * self.spec.pool_size ** 2    # arg-max, then the sign
        else:
            needed = predicted > 0
            comparisons = n_outputs
        if self.termination == "snapea":
            out, macs, checks = conv_relu_snapea(layer_input, self.order, self.spec.bias,
                                                 self.spec.output_shape, needed,
                                                 chunk=DEFAULT_CHUNK)
        else:
            out, macs = conv_relu_masked(layer_input, self.order, self.spec.bias,
                                         self.spec.output_shape, needed)
            checks = np.zeros(n_img, np.int64)
        return LayerRun(relu_out=out, macs=macs, comparisons=checks + comparisons,
                        lowbit_macs=lowbit_macs,
                        bits=self.bits, skip_mask=~needed)
