"""Exact pool-aware termination, beyond SnaPEA: only the outputs that can still be the largest
positive value of their max-pool window are finished.

Strategies (``strategy``):

- ``"window"`` (default): window by window, the positive phase (bias + positive terms) of
  every output first; that sum bounds the output from above, since only negative terms are
  left. The outputs are then finished from the largest positive sum down, each stopped as
  soon as its sum is <= 0 or the window's largest finished value, and skipped outright when
  its positive sum already is (:func:`lenet_np.early.kernels.conv_relu_pool_window_kernel`).
- ``"field"`` / ``"range"``: output by output, dropped as soon as the partial sum plus the
  most the remaining positive terms could add (per input channel: their weights times a bound
  on the channel's inputs) cannot beat 0 or the window's running maximum
  (:func:`lenet_np.early.kernels.conv_relu_pool_kernel`). The input bound is ``field``, the
  largest input of each channel in the receptive field (a separable max, its comparisons
  counted), or ``range``, a per-channel constant from the weights of the layers before and the
  pixel range [0, 1] (:func:`.base.guaranteed_input_bound`), free per image and looser. Their
  C bound MACs per started output are counted as predictor MACs.

All are guarantees, so the max-pool output equals the dense one (up to summation order). The
terms of provably-zero input channels are left out (``prune``), as in :mod:`.exact`.
"""
import numpy as np

from ..errors import LenetError
from .base import LayerRun, Scheme, fitted_term_order, guaranteed_input_bound
from .direct import DEFAULT_CHUNK, conv_relu_pool, conv_relu_pool_window, receptive_field_bounds
from .exact import variant_name

STRATEGIES = ("window", "field", "range")

__all__ = ["PoolExact", "STRATEGIES", "guaranteed_input_bound"]


class PoolExact(Scheme):
    """Exact pool-aware termination with ``strategy`` "window", "field" or "range"."""
    family = "pool_exact"
    exact = True
    reference = "pool"
    needs_pool = True

    def __init__(self, strategy="window", prune=True, chunk=DEFAULT_CHUNK):
        super().__init__()
        if strategy not in STRATEGIES:
            raise LenetError(f"the pool-aware strategy must be one of {', '.join(STRATEGIES)}, "
                             f"got {strategy!r}")
        self.strategy = strategy
        self.prune = prune
        # The bound strategies test after every negative term (their kernel has no chunks).
        self.chunk = chunk if strategy == "window" else DEFAULT_CHUNK

    @property
    def name(self):
        extra = [] if self.strategy == "window" else [self.strategy]
        return variant_name(self.family, self.prune, self.chunk, extra)

    @property
    def params(self):
        return {"strategy": self.strategy, "prune": self.prune, "chunk": self.chunk}

    def fit(self, model, spec, train=None):
        super().fit(model, spec, train)
        self.order = fitted_term_order(model, spec, train, prune=self.prune)
        out_h, out_w = spec.output_shape[1:]
        # (1, C, OH, OW): the same constant for every receptive field and image.
        self.range_bound = np.broadcast_to(guaranteed_input_bound(model, spec)[None, :, None, None],
                                           (1, spec.input_shape[0], out_h, out_w))
        return self

    def input_bound(self, layer_input):
        """(bound (N or 1, C, OH, OW), comparisons (N,)) for ``layer_input`` (N, C, H, W)."""
        if self.strategy == "range":
            return self.range_bound, np.zeros(len(layer_input), np.int64)
        kh, kw = self.spec.weight.shape[2:]
        return receptive_field_bounds(layer_input, kh, kw, "channel")

    def run(self, layer_input, compute_mask=None):
        if self.strategy == "window":
            out, macs, checks = conv_relu_pool_window(
                layer_input, self.order, self.spec.bias, self.spec.output_shape,
                self.spec.pool_size, compute_mask, self.chunk)
            return LayerRun(relu_out=out, macs=macs, comparisons=checks)
        bound, comparisons = self.input_bound(layer_input)
        out, macs, bound_macs, checks = conv_relu_pool(
            layer_input, self.order, self.spec.bias, self.spec.output_shape, bound,
            self.spec.pool_size, compute_mask)
        return LayerRun(relu_out=out, macs=macs, comparisons=checks + comparisons,
                        predictor_macs=bound_macs)
