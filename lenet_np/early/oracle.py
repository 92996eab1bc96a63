"""The oracles: skip exactly what the ReLU (or the ReLU and the max-pool) will discard.

They look at the dense layer's output to decide, so they are not realisable: they are the
bound every table shows. The ReLU oracle computes only the outputs that end positive; the
pool-aware oracle only the maximum of each max-pool window, and only when it is positive.
Each computed output costs its full C*KH*KW MACs; the deciding costs nothing.
"""
import numpy as np

from .. import layers
from .base import LayerRun, Scheme
from .direct import conv_relu_masked, term_order


def window_argmax_mask(values, pool):
    """Where each ``pool``×``pool`` window of ``values`` has its first maximum, if positive.

    values : (N, F, OH, OW) -> (N, F, OH, OW) bool; outputs outside a whole window are False.
    """
    n_img, n_filt, out_h, out_w = values.shape
    ph, pw = out_h // pool, out_w // pool
    windows = values[:, :, :ph * pool, :pw * pool].reshape(n_img, n_filt, ph, pool, pw, pool)
    windows = windows.transpose(0, 1, 2, 4, 3, 5).reshape(n_img, n_filt, ph, pw, pool * pool)
    first = windows.argmax(axis=-1)                                  # (N, F, PH, PW)
    positive = windows.max(axis=-1) > 0
    onehot = (np.arange(pool * pool) == first[..., None]) & positive[..., None]
    mask = np.zeros(values.shape, dtype=bool)
    mask[:, :, :ph * pool, :pw * pool] = (onehot.reshape(n_img, n_filt, ph, pw, pool, pool)
                                          .transpose(0, 1, 2, 4, 3, 5)
                                          .reshape(n_img, n_filt, ph * pool, pw * pool))
    return mask


class _Oracle(Scheme):
    oracle = True
    exact = True

    def fit(self, model, spec, train=None):
        super().fit(model, spec, train)
        self.order = term_order(spec.weight, *spec.input_shape[1:], sort=False)
        return self

    def _dense(self, layer_input):
        out, _ = layers.conv_forward(layer_input, {"weight": self.spec.weight,
                                                   "bias": self.spec.bias})
        return out                                                   # (N, F, OH, OW)

    def _run_mask(self, layer_input, needed):
        out, macs = conv_relu_masked(layer_input, self.order, self.spec.bias,
                                     self.spec.output_shape, needed)
        return LayerRun(relu_out=out, macs=macs, comparisons=np.zeros_like(macs),
                        skip_mask=~needed)


class ReluOracle(_Oracle):
    """Compute exactly the outputs the ReLU keeps (positive ones)."""
    family = "oracle_relu"
    reference = "relu"

    def run(self, layer_input):
        return self._run_mask(layer_input, self._dense(layer_input) > 0)


class PoolOracle(_Oracle):
    """Compute exactly the positive maximum of each max-pool window."""
    family = "oracle_pool"
    reference = "pool"
    needs_pool = True

    def run(self, layer_input):
        needed = window_argmax_mask(self._dense(layer_input), self.spec.pool_size)
        return self._run_mask(layer_input, needed)


class Dense(_Oracle):
    """The dense layer as a direct convolution: every term of every output (the baseline)."""
    family = "dense"
    oracle = False

    def run(self, layer_input):
        shape = (len(layer_input), *self.spec.output_shape)
        return self._run_mask(layer_input, np.ones(shape, dtype=bool))
