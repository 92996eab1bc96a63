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
positive; without one, every output predicted positive. The copy costs the dense layer's
MACs at k bits (reported apart, and converted at k/32, :func:`lenet_np.flops.fp32_equivalent`),
plus pool² - 1 comparisons per window for the arg-max and one for the sign.
``termination="snapea"`` finishes the chosen outputs with SnaPEA's exact termination.
"""
import numpy as np

from ..errors import LenetError
from .base import LayerRun, Scheme, check_bits
from .direct import conv_relu_masked, conv_relu_snapea, lowbit_conv, term_order
from .oracle import window_argmax_mask

TERMINATIONS = ("none", "snapea")


class LowBit(Scheme):
    """A ``bits``-bit copy of the layer chooses the outputs computed in full precision."""
    family = "lowbit"
    reference = "pool"

    def __init__(self, bits, termination="none"):
        super().__init__()
        self.bits = check_bits(bits)
        if termination not in TERMINATIONS:
            raise LenetError(f"termination must be one of {', '.join(TERMINATIONS)}, "
                             f"got {termination!r}")
        self.termination = termination

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
        flat = spec.weight.reshape(len(spec.weight), -1).astype(np.float64)
        largest = np.abs(flat).max(axis=1)
        weight_scale = np.where(largest > 0, largest / weight_levels, 1.0)     # (F,)
        self.weight_codes = np.rint(spec.weight / weight_scale[:, None, None, None]).astype(
            np.int64)                                          # (F, C, KH, KW)
        # One unit of an integer sum of filter f is input_step * weight_scale[f].
        input_step = self.input_max / self.input_levels
        self.bias_codes = np.rint(spec.bias / (input_step * weight_scale)).astype(np.int64)
        self.order = term_order(spec.weight, *spec.input_shape[1:],
                                sort=self.termination == "snapea")
        return self

    def predict(self, layer_input):
        """The integer sums of the low-bit copy: (N, C, H, W) -> (N, F, OH, OW) int64."""
        codes = np.rint(np.minimum(layer_input, self.input_max)
                        * (self.input_levels / self.input_max)).astype(np.int64)
        return lowbit_conv(codes, self.weight_codes, self.bias_codes)

    def run(self, layer_input):
        n_img = len(layer_input)
        predicted = self.predict(layer_input)
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
                                                 self.spec.output_shape, needed)
        else:
            out, macs = conv_relu_masked(layer_input, self.order, self.spec.bias,
                                         self.spec.output_shape, needed)
            checks = np.zeros(n_img, np.int64)
        return LayerRun(relu_out=out, macs=macs, comparisons=checks + comparisons,
                        lowbit_macs=np.full(n_img, self.spec.dense_macs, np.int64),
                        bits=self.bits, skip_mask=~needed)
