"""Exact low-bit prediction: a k-bit copy of the layer with a guaranteed error bound per output
decides which outputs of each max-pool window can still be its positive maximum; only those
are computed in full precision.

Quantisation (decided from the weights alone, no training data):

- inputs x >= 0 of channel c to unsigned codes ``round(x / δx_c)``, ``δx_c = B_c / (2^k - 1)``,
  where B_c is the guaranteed bound of the channel over every input in [0, 1]
  (:func:`.base.guaranteed_input_bound`): no input can exceed it, so nothing is clipped and
  every input is within δx_c/2 of its dequantised value (a larger code is refused);
- weights per filter to signed codes ``round(w / δw_f)``, ``δw_f = max|w_f| / (2^(k-1) - 1)``.

Error bound: with x̂ and ŵ the dequantised values, ``w·x - ŵ·x̂ = w·(x - x̂) + (w - ŵ)·x̂``, so
each output lies within ``E = Σ|w|·δx_c/2 + δw_f/2·Σx̂`` of the low-bit estimate
``q = b + Σŵ·x̂`` (sums over the receptive field). The first part is a per-filter constant; Σx̂
comes from a box sum of the codes per channel, shared by the filters
(:func:`.kernels.lowbit_interval_kernel`). A margin for the float32 rounding of the full-
precision sums is added (:func:`rounding_margin`), so that the decisions hold for the float32
values the kernel computes, not only for exact arithmetic.

Decision per window (:func:`.kernels.conv_relu_interval_pool_kernel`): T = max(0, the largest
q - E); an output with q + E <= T is skipped; the others are computed in full precision from
the largest q down, with SnaPEA-style termination against the window's best value
(``termination="snapea"``, default) or in full (``"none"``). Channels that are provably 0
(B_c = 0) are left out of the copy and of the full-precision sums alike, as in the other
exact schemes.

Costs: the code × code MACs at k bits (``lowbit_macs``, converted at k/32); the predictor's
full-precision multiply-adds (channel scaling, Σx̂, E: ``predictor_macs``); the integer adds
of the box sums, reported apart (``predictor_adds``, not converted to MACs); the comparisons.
"""
from dataclasses import dataclass

import numpy as np

from .base import (LayerRun, Scheme, check_bits, check_choice, fitted_term_order,
                   guaranteed_input_bound)
from .direct import DEFAULT_CHUNK, conv_relu_interval_pool, lowbit_intervals

TERMINATIONS = ("snapea", "none")
UNIT_ROUNDOFF = 2.0 ** -24        # float32


def rounding_margin(magnitude, n_terms):
    """Bound of |float32 sum - exact sum| for an output b + Σ_{k<n_terms} w_k·x_k.

    However the sum is ordered (the kernels use four running sums and termination chunks),
    the rounding error of n products and additions is at most γ_n · (|b| + Σ|w_k·x_k|), with
    γ_n = n·u / (1 - n·u) and u = 2^-24 (Higham, Accuracy and Stability of Numerical
    Algorithms, §3.1); with 0 <= x_k <= B_c that is at most γ_n · ``magnitude``, ``magnitude``
    = |b| + Σ|w_k|·B_c. The relative factor is max(1e-5, 2·(n + 2)·u): above γ_{n+1} (for
    LeNet's 125-150 terms, γ is about 9e-6). The absolute 1e-6 covers the float64 rounding of
    q and E themselves (relative 1e-16 of values of order 10) and of the input steps.
    """
    relative = max(1e-5, 2.0 * (n_terms + 2) * UNIT_ROUNDOFF)
    return relative * np.asarray(magnitude, np.float64) + 1e-6


@dataclass(frozen=True)
class LowBitCopy:
    """A layer's k-bit copy with its error bounds, decided from the weights and input bounds."""
    bits: int
    live: np.ndarray             # (C,) bool, channels with a positive bound (the others are 0)
    input_levels: int            # 2^k - 1, the largest input code
    channel_step: np.ndarray     # (C_live,) float64, δx_c = B_c / (2^k - 1)
    weight_step: np.ndarray      # (F,) float64, δw_f = max|w_f| / (2^(k-1) - 1)
    weight_codes: np.ndarray     # (F, C_live, KH, KW) int64, round(w / δw_f)
    bias: np.ndarray             # (F,) float64
    error_const: np.ndarray      # (F,) float64, Σ|w|·δx_c/2 + the float32 rounding margin

    def quantise(self, layer_input):
        """(N, C, H, W) float32 -> (N, C_live, H, W) int64 codes of the live channels; a
        ValueError if an input lies above its guaranteed bound by more than half a step
        (its code would need clipping and the error bound would not hold)."""
        live_input = layer_input[:, self.live].astype(np.float64)            # (N, C_live, H, W)
        codes = np.rint(live_input / self.channel_step[None, :, None, None]).astype(np.int64)
        if codes.size and codes.max() > self.input_levels:
            raise ValueError("an input exceeds its channel's guaranteed bound: the low-bit "
                             "error bound would not hold")
        return codes

    def intervals(self, layer_input):
        """(estimate, error (N, F, OH, OW) float64, lowbit_macs, predictor_macs, box_adds
        (N,) int64) for ``layer_input`` (N, C, H, W): |output - estimate| <= error for the
        exact output and for its float32 sum in any order."""
        return lowbit_intervals(self.quantise(layer_input), self.weight_codes,
                                self.channel_step, self.weight_step, self.bias,
                                self.error_const)


def lowbit_copy(weight, bias, input_bound, bits):
    """The :class:`LowBitCopy` of a conv layer: weight (F, C, KH, KW), bias (F,), input_bound
    (C,) a guaranteed upper bound of each input channel (inputs are >= 0), bits in 2..16."""
    bits = check_bits(bits)
    bound = np.asarray(input_bound, np.float64)                               # (C,)
    live = bound > 0
    live_bound = bound[live]                                                  # (C_live,)
    input_levels = 2 ** bits - 1
    channel_step = live_bound / input_levels                                  # (C_live,)
    live_weight = np.asarray(weight, np.float64)[:, live]                     # (F, C_live, KH, KW)
    largest = np.abs(live_weight).reshape(len(live_weight), -1).max(axis=1)   # (F,)
    weight_step = np.where(largest > 0, largest / (2 ** (bits - 1) - 1), 1.0)   # (F,)
    weight_codes = np.rint(live_weight / weight_step[:, None, None, None]).astype(np.int64)
    abs_per_channel = np.abs(live_weight).sum(axis=(2, 3))                   # (F, C_live)
    bias = np.asarray(bias, np.float64)
    magnitude = np.abs(bias) + abs_per_channel @ live_bound                   # (F,)
    n_terms = int(np.prod(live_weight.shape[1:]))
    error_const = 0.5 * abs_per_channel @ channel_step + rounding_margin(magnitude, n_terms)
    return LowBitCopy(bits=bits, live=live, input_levels=input_levels, channel_step=channel_step,
                      weight_step=weight_step, weight_codes=weight_codes, bias=bias,
                      error_const=error_const)


class LowBitExact(Scheme):
    """A ``bits``-bit copy with guaranteed error bounds rules out the outputs that cannot be
    their window's positive maximum; the rest are computed in full precision."""
    family = "lowbit_exact"
    exact = True
    reference = "pool"
    needs_pool = True

    def __init__(self, bits, termination="snapea", chunk=DEFAULT_CHUNK):
        super().__init__()
        self.bits = check_bits(bits)
        self.termination = check_choice("termination", termination, TERMINATIONS)
        self.chunk = chunk

    @property
    def name(self):
        suffix = "[no-stop]" if self.termination == "none" else ""
        return f"{self.family}{suffix} k={self.bits}"

    @property
    def params(self):
        return {"bits": self.bits}

    def fit(self, model, spec, train=None):
        """Quantise from the weights and the guaranteed input bounds; ``train`` (optional)
        only orders the full-precision terms (:func:`.base.fitted_term_order`)."""
        super().fit(model, spec, train)
        self.copy = lowbit_copy(spec.weight, spec.bias, guaranteed_input_bound(model, spec),
                                self.bits)
        self.order = fitted_term_order(model, spec, train)
        return self

    def run(self, layer_input):
        estimate, error, lowbit_macs, predictor_macs, box_adds = self.copy.intervals(
            layer_input)
        out, candidate, macs, checks = conv_relu_interval_pool(
            layer_input, self.order, self.spec.bias, estimate, error, self.spec.pool_size,
            self.chunk, self.termination == "snapea")
        return LayerRun(relu_out=out, macs=macs, comparisons=checks,
                        predictor_macs=predictor_macs, lowbit_macs=lowbit_macs, bits=self.bits,
                        skip_mask=~candidate, predictor_adds=box_adds)
