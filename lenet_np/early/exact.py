"""SnaPEA's exact mode: the bias and the positive terms first, then the negative ones from
the most negative; once the partial sum is <= 0 the ReLU output is 0 and the rest is skipped.

The layer's input must be >= 0 (it is the output of a ReLU and a max-pool, or pixels in
[0, 1]): then after the positive terms the sum can only fall. The outputs equal ReLU(conv)
up to the rounding of a different summation order, so the predictions are the dense ones.
"""
from .base import LayerRun, Scheme
from .direct import conv_relu_snapea, term_order


class SnapeaExact(Scheme):
    """Exact early termination of each output on its sign (no fitting needed)."""
    family = "snapea_exact"
    exact = True
    reference = "relu"

    def fit(self, model, spec, train=None):
        super().fit(model, spec, train)
        self.order = term_order(spec.weight, *spec.input_shape[1:], sort=True)
        return self

    def run(self, layer_input):
        out, macs, checks = conv_relu_snapea(layer_input, self.order, self.spec.bias,
                                             self.spec.output_shape)
        return LayerRun(relu_out=out, macs=macs, comparisons=checks)
