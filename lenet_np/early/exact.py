"""SnaPEA's exact mode: the bias and the positive terms first, then the negative ones, the
largest expected decrease (weight × the channel's mean input) first; once the partial sum is
<= 0 the ReLU output is 0 and the rest is skipped.

The layer's input must be >= 0 (it is the output of a ReLU and a max-pool, or pixels in
[0, 1]): then after the positive terms the sum can only fall. The terms of input channels that
are provably 0 for every input are left out (``prune``, :func:`.base.live_channels`): they add
exactly 0. The outputs equal ReLU(conv) up to the rounding of a different summation order, so
the predictions are the dense ones.
"""
from .base import LayerRun, Scheme, fitted_term_order
from .direct import DEFAULT_CHUNK, conv_relu_snapea


def variant_name(family, prune, chunk, extra=()):
    """``family[tags]``: the tags of the non-default options (``no-prune``, ``chunk=c``)."""
    tags = list(extra) + ([] if prune else ["no-prune"])
    tags += [] if chunk == DEFAULT_CHUNK else [f"chunk={chunk}"]
    return f"{family}[{','.join(tags)}]" if tags else family


class SnapeaExact(Scheme):
    """Exact early termination of each output on its sign; the sign is tested once per
    ``chunk`` negative terms."""
    family = "snapea_exact"
    exact = True
    reference = "relu"

    def __init__(self, prune=True, chunk=DEFAULT_CHUNK):
        super().__init__()
        self.prune = prune
        self.chunk = chunk

    @property
    def name(self):
        return variant_name(self.family, self.prune, self.chunk)

    @property
    def params(self):
        return {"prune": self.prune, "chunk": self.chunk}

    def fit(self, model, spec, train=None):
        super().fit(model, spec, train)
        self.order = fitted_term_order(model, spec, train, prune=self.prune)
        return self

    def run(self, layer_input):
        out, macs, checks = conv_relu_snapea(layer_input, self.order, self.spec.bias,
                                             self.spec.output_shape, chunk=self.chunk)
        return LayerRun(relu_out=out, macs=macs, comparisons=checks)
