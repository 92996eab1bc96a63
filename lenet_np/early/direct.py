"""Python wrappers of the early kernels: term orders, validation, allocation.

Each wrapper checks shapes, allocates the outputs and calls one kernel of
:mod:`lenet_np.early.kernels`; the schemes call these, never the kernels directly.
"""
from dataclasses import dataclass

import numpy as np

from .kernels import (conv_relu_interval_pool_kernel, conv_relu_masked_kernel,
                      conv_relu_pool_kernel, conv_relu_pool_window_kernel,
                      conv_relu_snapea_kernel, lowbit_conv_kernel, lowbit_interval_kernel,
                      receptive_field_max_kernel)


@dataclass(frozen=True)
class TermOrder:
    """The order in which each filter's terms are accumulated (see :mod:`.kernels`).

    The positive terms are split into groups, each with one bound "slot": all inputs of a
    group lie in the same slot (an input channel, or one row of one channel, of the receptive
    field), whose largest value bounds them. Terms of input channels that are provably 0
    (``live`` false) are left out of the order altogether: they add exactly 0.
    """
    offsets: np.ndarray               # (F, K) int64, c*H*W + i*W + j of each term
    weights: np.ndarray               # (F, K) float32, the weight of each term
    n_positive: np.ndarray            # (F,) int64, terms 0 .. n_positive-1 have weight > 0
    group_end: np.ndarray             # (F, G) int64, end of each group of positive terms
    group_slot: np.ndarray            # (F, G) int64, the bound slot of each group
    group_positive_sum: np.ndarray    # (F, G) float32, sum of the group's (positive) weights
    in_height: int                    # H and W of the input the offsets are for
    in_width: int
    slots: str                        # "channel" (G = live C) or "row" (G = live C*KH)
    pruned_terms: int = 0             # terms per output left out (provably-zero channels)


SLOTS = ("channel", "row")
# Negative terms between two termination tests of the early-exit kernels (1 = after every
# term); chosen by benchmarks/bench_early.py --all, see the README.
DEFAULT_CHUNK = 4


def term_order(weight, in_height, in_width, sort=True, slots="channel", live=None,
               channel_scale=None):
    """Term order of a conv weight (F, C, KH, KW) over inputs of side ``in_height``×``in_width``.

    ``sort=True`` gives the exact schemes' order: the positive weights first, grouped by bound
    slot (``slots="channel"``: one group per input channel; ``"row"``: one per row of a
    channel), the groups with the largest weight sum first and, within a group, the largest
    ``w × channel_scale[c]`` first; then the zero and negative weights by increasing
    ``w × channel_scale[c]``, i.e. the terms expected to pull the sum down most come first.
    ``channel_scale`` (C,) is the mean input of each channel (default 1: order by weight
    alone); the order never changes a result, only how soon a test can stop the sum.
    ``sort=False`` keeps the natural (c, i, j) order of a plain direct convolution.

    ``live`` (C,) bool, default all: the channels whose terms are kept. A channel whose input
    is 0 for every possible input (a dead filter of the layer before) contributes exactly 0,
    so leaving its terms out is a static pruning that keeps every scheme exact.
    """
    if slots not in SLOTS:
        raise ValueError(f"slots must be one of {SLOTS}, got {slots!r}")
    n_filt, n_ch, kh, kw = weight.shape
    live = np.ones(n_ch, bool) if live is None else np.asarray(live, bool)
    scale = (np.ones(n_ch) if channel_scale is None
             else np.asarray(channel_scale, np.float64))
    ch, row, col = np.meshgrid(np.arange(n_ch), np.arange(kh), np.arange(kw), indexing="ij")
    kept = live[ch.ravel()]                                                        # (C*KH*KW,)
    natural_offsets = (ch * in_height * in_width + row * in_width + col).ravel()[kept]  # (K,)
    term_channel = ch.ravel()[kept]                                                # (K,)
    term_slot = (ch.ravel() if slots == "channel" else (ch * kh + row).ravel())[kept]
    n_slots = n_ch if slots == "channel" else n_ch * kh
    live_slots = np.unique(term_slot)                                              # (G,)
    flat = weight.reshape(n_filt, -1)[:, kept].astype(np.float32)                  # (F, K)
    n_terms = flat.shape[1]
    positive = flat > 0
    per_slot = np.zeros((n_filt, n_slots))
    per_slot_count = np.zeros((n_filt, n_slots), np.int64)
    for f in range(n_filt):
        np.add.at(per_slot[f], term_slot, np.where(positive[f], flat[f], 0))
        np.add.at(per_slot_count[f], term_slot, positive[f])
    # Groups: the live slots, the largest positive weight sum first.
    group_slot = live_slots[np.argsort(-per_slot[:, live_slots], axis=1, kind="stable")]  # (F, G)
    group_end = np.cumsum(np.take_along_axis(per_slot_count, group_slot, axis=1), axis=1)
    if sort:
        # Positives by (rank of their slot's group, decreasing w × scale), then the rest by
        # increasing w × scale; lexsort sorts by its last key first.
        rank = np.zeros((n_filt, n_slots), np.int64)
        np.put_along_axis(rank, group_slot, np.arange(group_slot.shape[1])[None, :], axis=1)
        term_rank = rank[:, term_slot]                                             # (F, K)
        expected = flat * scale[term_channel]                                      # (F, K)
        order = np.stack([np.lexsort((np.where(positive[f], -expected[f], expected[f]),
                                      np.where(positive[f], term_rank[f], n_slots),
                                      ~positive[f]))
                          for f in range(n_filt)])
    else:
        order = np.tile(np.arange(n_terms), (n_filt, 1))
    return TermOrder(offsets=np.ascontiguousarray(natural_offsets[order].astype(np.int64)),
                     weights=np.ascontiguousarray(np.take_along_axis(flat, order, axis=1)),
                     n_positive=positive.sum(axis=1).astype(np.int64),
                     group_end=np.ascontiguousarray(group_end.astype(np.int64)),
                     group_slot=np.ascontiguousarray(group_slot.astype(np.int64)),
                     group_positive_sum=np.take_along_axis(per_slot, group_slot, axis=1)
                     .astype(np.float32),
                     in_height=in_height, in_width=in_width, slots=slots,
                     pruned_terms=int((~kept).sum()))


def _prepare(x, order, out_shape, compute_mask, non_negative):
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[2:] != (order.in_height, order.in_width):
        raise ValueError(f"term order is for {order.in_height}×{order.in_width} inputs, "
                         f"got {x.shape[2]}×{x.shape[3]}")
    if non_negative and x.size and x.min() < 0:
        raise ValueError("early termination needs non-negative inputs")
    shape = (x.shape[0], *out_shape)
    if compute_mask is None:
        compute_mask = np.ones(shape, dtype=np.bool_)
    if compute_mask.shape != shape:
        raise ValueError(f"compute_mask has shape {compute_mask.shape}, expected {shape}")
    return x, np.ascontiguousarray(compute_mask), np.empty(shape, np.float32)


def conv_relu_masked(x, order, bias, out_shape, compute_mask=None):
    """ReLU(conv(x)) at the outputs of ``compute_mask`` (default all), every term of each.

    x : (N, C, H, W); order : TermOrder; bias : (F,); out_shape : (F, OH, OW);
    compute_mask : (N, F, OH, OW) bool. Returns out (N, F, OH, OW) float32, macs (N,) int64.
    """
    x, compute_mask, out = _prepare(x, order, out_shape, compute_mask, non_negative=False)
    macs = np.empty(x.shape[0], np.int64)
    conv_relu_masked_kernel(x, order.offsets, order.weights, np.asarray(bias, np.float32),
                            compute_mask, out, macs)
    return out, macs


def _check_chunk(chunk):
    if int(chunk) != chunk or chunk < 1:
        raise ValueError(f"chunk must be a positive integer, got {chunk}")
    return int(chunk)


def conv_relu_snapea(x, order, bias, out_shape, compute_mask=None, chunk=1):
    """SnaPEA's exact mode. x >= 0 (N, C, H, W), order from ``term_order(sort=True)``; the sign
    is tested once per ``chunk`` negative terms.

    Returns out (N, F, OH, OW) float32 (= ReLU(conv) where computed), macs and checks (N,).
    """
    x, compute_mask, out = _prepare(x, order, out_shape, compute_mask, non_negative=True)
    macs = np.empty(x.shape[0], np.int64)
    checks = np.empty(x.shape[0], np.int64)
    conv_relu_snapea_kernel(x, order.offsets, order.weights, order.n_positive,
                            np.asarray(bias, np.float32), compute_mask, _check_chunk(chunk),
                            out, macs, checks)
    return out, macs, checks


def conv_relu_pool_window(x, order, bias, out_shape, pool, compute_mask=None, chunk=1):
    """Pool-aware exact termination window by window
    (:func:`.kernels.conv_relu_pool_window_kernel`).

    x >= 0 (N, C, H, W), order from ``term_order(sort=True)``. Returns out (N, F, OH, OW)
    float32 whose ``pool``×``pool`` max-pool is that of ReLU(conv), macs and checks (N,) int64.
    """
    x, compute_mask, out = _prepare(x, order, out_shape, compute_mask, non_negative=True)
    macs = np.empty(x.shape[0], np.int64)
    checks = np.empty(x.shape[0], np.int64)
    conv_relu_pool_window_kernel(x, order.offsets, order.weights, order.n_positive,
                                 np.asarray(bias, np.float32), compute_mask, int(pool),
                                 _check_chunk(chunk), out, macs, checks)
    return out, macs, checks


def conv_relu_pool(x, order, bias, out_shape, slot_bound, pool, compute_mask=None):
    """Pool-aware exact termination (see :func:`.kernels.conv_relu_pool_kernel`).

    x >= 0 (N, C, H, W); slot_bound (N, S, OH, OW), the bound of each slot of each receptive
    field (S = C or C*KH as ``order.slots`` says), or (1, S, OH, OW) broadcast to every image.
    Returns out (N, F, OH, OW) float32 whose ``pool``×``pool`` max-pool is that of
    ReLU(conv), macs, bound_macs and checks (N,) int64.
    """
    x, compute_mask, out = _prepare(x, order, out_shape, compute_mask, non_negative=True)
    n_img = x.shape[0]
    bound_shape = (n_img, slot_bound.shape[1], *out_shape[1:])
    slot_bound = np.ascontiguousarray(np.broadcast_to(slot_bound, bound_shape),
                                      dtype=np.float32)
    macs, bound_macs, checks = (np.empty(n_img, np.int64) for _ in range(3))
    conv_relu_pool_kernel(x, order.offsets, order.weights, order.group_end, order.group_slot,
                          order.group_positive_sum, order.n_positive,
                          np.asarray(bias, np.float32), compute_mask, slot_bound, pool, out,
                          macs, bound_macs, checks)
    return out, macs, bound_macs, checks


def receptive_field_bounds(x, kh, kw, slots="channel"):
    """The largest input of each bound slot of each receptive field.

    x : (N, C, H, W) -> (bound, comparisons): bound (N, C, OH, OW) for ``slots="channel"``,
    (N, C*KH, OH, OW) for ``"row"`` (slot ``c*KH + i`` is row ``i`` of channel ``c``), float32;
    comparisons (N,) int64, made by the separable max that finds them.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n_img, n_ch, height, width = x.shape
    out_h, out_w = height - kh + 1, width - kw + 1
    row_max = np.empty((n_img, n_ch, height, out_w), np.float32)   # (N, C, H, OW)
    channel_max = np.empty((n_img, n_ch, out_h, out_w), np.float32)
    comparisons = np.empty(n_img, np.int64)
    receptive_field_max_kernel(x, kh, kw, row_max, channel_max, comparisons)
    if slots == "channel":
        return channel_max, comparisons
    # Rows of the receptive field at (oh, ow): row_max[:, c, oh + i, ow] for i < KH. The
    # channel maxima are not needed then: only the row stage's comparisons are counted.
    rows = np.stack([row_max[:, :, i:i + out_h, :] for i in range(kh)], axis=2)  # (N, C, KH, OH, OW)
    row_comparisons = np.full(n_img, n_ch * height * out_w * (kw - 1), np.int64)
    return np.ascontiguousarray(rows.reshape(n_img, n_ch * kh, out_h, out_w)), row_comparisons


def lowbit_conv(xq, wq, bias_q):
    """Integer direct convolution: xq (N, C, H, W), wq (F, C, KH, KW), bias_q (F,) ->
    (sums (N, F, OH, OW) int64, macs (N,) int64 the low-bit MACs performed)."""
    xq = np.ascontiguousarray(xq, dtype=np.int64)
    wq = np.ascontiguousarray(wq, dtype=np.int64)
    n_img, _, height, width = xq.shape
    n_filt, _, kh, kw = wq.shape
    out = np.empty((n_img, n_filt, height - kh + 1, width - kw + 1), np.int64)
    macs = np.empty(n_img, np.int64)
    lowbit_conv_kernel(xq, wq, np.asarray(bias_q, np.int64), out, macs)
    return out, macs


def lowbit_intervals(codes, weight_codes, channel_step, weight_step, bias, error_const):
    """The low-bit copy with guaranteed error bounds (:func:`.kernels.lowbit_interval_kernel`).

    codes (N, C, H, W) int, weight_codes (F, C, KH, KW) int, channel_step (C,), weight_step
    (F,), bias (F,), error_const (F,). Returns estimate and error (N, F, OH, OW) float64, and
    lowbit_macs, predictor_macs, box_adds (N,) int64.
    """
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    weight_codes = np.ascontiguousarray(weight_codes, dtype=np.int64)
    n_img, n_ch, height, width = codes.shape
    n_filt, code_ch, kh, kw = weight_codes.shape
    if code_ch != n_ch:
        raise ValueError(f"weight codes have {code_ch} channels, the input codes {n_ch}")
    out_h, out_w = height - kh + 1, width - kw + 1
    row_sum = np.empty((n_ch, height, out_w), np.int64)            # (C, H, OW) scratch
    box_sum = np.empty((n_ch, out_h, out_w), np.int64)             # (C, OH, OW) scratch
    field = np.empty((out_h, out_w), np.float64)                   # (OH, OW) scratch
    estimate = np.empty((n_img, n_filt, out_h, out_w), np.float64)
    error = np.empty_like(estimate)
    lowbit_macs, predictor_macs, box_adds = (np.empty(n_img, np.int64) for _ in range(3))
    lowbit_interval_kernel(codes, weight_codes,
                           np.ascontiguousarray(channel_step, dtype=np.float64),
                           np.ascontiguousarray(weight_step, dtype=np.float64),
                           np.ascontiguousarray(bias, dtype=np.float64),
                           np.ascontiguousarray(error_const, dtype=np.float64),
                           row_sum, box_sum, field, estimate, error, lowbit_macs,
                           predictor_macs, box_adds)
    return estimate, error, lowbit_macs, predictor_macs, box_adds


def conv_relu_interval_pool(x, order, bias, estimate, error, pool, chunk=1, terminate=True):
    """Pool-aware exact computation decided by the intervals [estimate - error,
    estimate + error] (:func:`.kernels.conv_relu_interval_pool_kernel`).

    x >= 0 (N, C, H, W), order from ``term_order(sort=True)``, estimate and error
    (N, F, OH, OW). Returns out (N, F, OH, OW) float32 whose ``pool``×``pool`` max-pool is
    that of ReLU(conv), candidate (N, F, OH, OW) bool, macs and checks (N,) int64.
    """
    out_shape = estimate.shape[1:]
    x, _, out = _prepare(x, order, out_shape, None, non_negative=True)
    if estimate.shape != out.shape or error.shape != out.shape:
        raise ValueError(f"estimate {estimate.shape} and error {error.shape} must both have "
                         f"the output's shape {out.shape}")
    candidate = np.empty(out.shape, np.bool_)
    macs = np.empty(x.shape[0], np.int64)
    checks = np.empty(x.shape[0], np.int64)
    conv_relu_interval_pool_kernel(x, order.offsets, order.weights, order.n_positive,
                                   np.asarray(bias, np.float32),
                                   np.ascontiguousarray(estimate, dtype=np.float64),
                                   np.ascontiguousarray(error, dtype=np.float64), int(pool),
                                   _check_chunk(chunk), bool(terminate), out, candidate, macs,
                                   checks)
    return out, candidate, macs, checks
