"""numba kernels of the early-prediction schemes: direct convolutions that really skip work.

Every kernel is a module-level ``@njit`` function taking arrays and scalars and writing into
outputs its caller allocated; the njit options come from :mod:`lenet_np.kernels`, the one
place that decides them. Each kernel counts, per image, the operations it performs, in the
same loop that performs them, so the reported counts are what the kernel did. The naive
references they are tested against are in :mod:`lenet_np.early.reference`.

A conv layer is handled as a direct convolution over a "term order" per filter
(:func:`lenet_np.early.base.term_order`): ``offsets[f, t]`` is the flat offset
``c*H*W + i*W + j`` of the input the term ``t`` of filter ``f`` multiplies, relative to the
receptive field's corner, and ``weights[f, t]`` its weight. The exact schemes put the positive
weights first and then the negative ones from the most negative (SnaPEA's order);
``n_positive[f]`` says where the negative ones start.
"""
import numpy as np

from ..kernels import njit, njit_inline

@njit
def _partial_dot(weights, offsets, x_flat, base, start, end):
    """sum of weights[t] * x_flat[base + offsets[t]] for start <= t < end.

    Four running sums break the chain of dependent adds (each add waits for the previous
    one otherwise, which bounds a scalar loop at one MAC per add latency); fastmath stays
    off, so the order is this fixed one and reruns are bit-identical.
    """
    s0 = np.float32(0.0)
    s1 = np.float32(0.0)
    s2 = np.float32(0.0)
    s3 = np.float32(0.0)
    t = start
    while t + 4 <= end:
        s0 += weights[t] * x_flat[base + offsets[t]]
        s1 += weights[t + 1] * x_flat[base + offsets[t + 1]]
        s2 += weights[t + 2] * x_flat[base + offsets[t + 2]]
        s3 += weights[t + 3] * x_flat[base + offsets[t + 3]]
        t += 4
    while t < end:
        s0 += weights[t] * x_flat[base + offsets[t]]
        t += 1
    return (s0 + s1) + (s2 + s3)


@njit_inline
def _negative_phase(weights, offsets, x_flat, base, start, end_of_terms, chunk, acc, threshold):
    """Add terms ``start:end_of_terms`` to ``acc`` ``chunk`` at a time, testing before each
    chunk and once at the end whether ``acc <= threshold`` (the output is then dropped).

    The terms left are negative (or multiply inputs >= 0 by weights <= 0), so once ``acc`` is
    at or below the threshold it can only stay there. Returns ``(acc, t, tests, dropped)``:
    ``t`` is the index after the last term added, ``tests`` the comparisons made.
    """
    t = start
    tests = 0
    while True:
        tests += 1
        if acc <= threshold:
            return acc, t, tests, True
        if t == end_of_terms:
            return acc, t, tests, False
        end = min(t + chunk, end_of_terms)
        acc += _partial_dot(weights, offsets, x_flat, base, t, end)
        t = end


@njit
def conv_relu_masked_kernel(x, offsets, weights, bias, compute_mask, out, macs):
    """ReLU(conv(x)) at the outputs ``compute_mask`` selects, every term of each: a direct
    convolution over a mask (the dense layer when the mask is all true).

    x            : (N, C, H, W) float32 input.
    offsets      : (F, K) int64 term offsets; weights (F, K) float32, in term order.
    bias         : (F,) float32.
    compute_mask : (N, F, OH, OW) bool; an output outside it is written 0 at no cost.
    out          : (N, F, OH, OW) float32 output, max(sum, 0) where computed, else 0.
    macs         : (N,) int64 output, the MACs performed per image.
    """
    n_img, _, _, width = x.shape
    n_filt, n_terms = weights.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for n in range(n_img):
        x_flat = x[n].ravel()                  # (C*H*W,): the offsets index it directly
        count = 0
        for f in range(n_filt):
            w = weights[f]
            off = offsets[f]
            for oh in range(out_h):
                for ow in range(out_w):
                    if not compute_mask[n, f, oh, ow]:
                        out[n, f, oh, ow] = 0.0
                        continue
                    base = oh * width + ow
                    acc = bias[f] + _partial_dot(w, off, x_flat, base, 0, n_terms)
                    count += n_terms
                    out[n, f, oh, ow] = acc if acc > 0.0 else 0.0
        macs[n] = count


@njit
def conv_relu_snapea_kernel(x, offsets, weights, n_positive, bias, compute_mask, chunk, out,
                            macs, checks):
    """SnaPEA's exact mode: ReLU(conv(x)) with the negative terms cut short.

    The terms are in SnaPEA's order (positive weights first). With x >= 0 the sum only falls
    once the positive terms are in, so as soon as it is <= 0 the ReLU output is 0 and the
    remaining terms are skipped. The sign is tested once per ``chunk`` negative terms
    (chunk 1: after every term): a larger chunk does a few more MACs past the point where
    the sum went <= 0, but its terms run as independent products instead of one chain of
    dependent test-and-add steps. Arguments as :func:`conv_relu_masked_kernel`, plus
    ``n_positive`` (F,) int64, ``chunk`` >= 1 and ``checks`` (N,) int64, the sign tests made.
    """
    n_img, _, _, width = x.shape
    n_filt, n_terms = weights.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for n in range(n_img):
        x_flat = x[n].ravel()                  # (C*H*W,)
        count = 0
        tests = 0
        for f in range(n_filt):
            w = weights[f]
            off = offsets[f]
            n_pos = n_positive[f]
            for oh in range(out_h):
                for ow in range(out_w):
                    out[n, f, oh, ow] = 0.0
                    if not compute_mask[n, f, oh, ow]:
                        continue
                    base = oh * width + ow
                    acc = bias[f] + _partial_dot(w, off, x_flat, base, 0, n_pos)
                    # One sign test before each chunk of negative terms and one at the end
                    # (the ReLU's).
                    acc, t, n_tests, dropped = _negative_phase(w, off, x_flat, base, n_pos,
                                                               n_terms, chunk, acc,
                                                               np.float32(0.0))
                    tests += n_tests
                    count += t
                    if not dropped:
                        out[n, f, oh, ow] = acc
        macs[n] = count
        checks[n] = tests


@njit
def conv_relu_pool_window_kernel(x, offsets, weights, n_positive, bias, compute_mask, pool,
                                 chunk, out, macs, checks):
    """Pool-aware exact termination, window by window: only an output that can still be its
    max-pool window's largest positive value is finished.

    Terms in SnaPEA's order (positive weights first). With x >= 0, once an output's bias and
    positive terms are in (its "positive sum") the rest can only lower it, so the positive
    sum is an upper bound of its final value. For each pool×pool window:

    1. the positive sums of its outputs (those ``compute_mask`` selects) are computed;
    2. the outputs are visited from the largest positive sum down, against a threshold that
       starts at 0 (the ReLU) and is the largest finished value of the window so far: an
       output whose positive sum is <= the threshold is dropped with the rest of the window
       (they are no larger); otherwise its negative terms are added, ``chunk`` at a time,
       until the sum is <= the threshold (dropped) or all are in (finished: the threshold
       rises to its value).

    x            : (N, C, H, W) float32, >= 0.
    offsets, weights : (F, K) in SnaPEA's order; n_positive (F,) int64; bias (F,) float32.
    compute_mask : (N, F, OH, OW) bool, the outputs to consider.
    pool, chunk  : window side (outputs outside a whole window are not computed); terms
                   between two tests of the negative phase.
    out          : (N, F, OH, OW) float32 output: a finished output holds its value (> 0),
                   the others 0; its max-pool is that of ReLU(conv).
    macs         : (N,) int64 output, the MACs done (positive phases and negative terms).
    checks       : (N,) int64 output, comparisons: the sort of the window's positive sums
                   (insertion sort, each comparison counted) and every threshold test.
    """
    n_img, _, _, width = x.shape
    n_filt, n_terms = weights.shape
    out_h, out_w = out.shape[2], out.shape[3]
    window = pool * pool
    positive_sum = np.empty(window, np.float32)   # per slot of the window
    visit = np.empty(window, np.int64)            # slots sorted by decreasing positive sum
    for n in range(n_img):
        x_flat = x[n].ravel()                     # (C*H*W,)
        count = 0
        tests = 0
        out[n] = 0.0
        for f in range(n_filt):
            w = weights[f]
            off = offsets[f]
            n_pos = n_positive[f]
            for ph in range(out_h // pool):
                for pw in range(out_w // pool):
                    n_visit = 0
                    for s in range(window):
                        oh = ph * pool + s // pool
                        ow = pw * pool + s % pool
                        if not compute_mask[n, f, oh, ow]:
                            continue
                        positive_sum[s] = bias[f] + _partial_dot(w, off, x_flat,
                                                                 oh * width + ow, 0, n_pos)
                        count += n_pos
                        # Insertion into visit[:n_visit], largest positive sum first.
                        k = n_visit
                        while k > 0:
                            tests += 1
                            if positive_sum[visit[k - 1]] >= positive_sum[s]:
                                break
                            visit[k] = visit[k - 1]
                            k -= 1
                        visit[k] = s
                        n_visit += 1
                    best = np.float32(0.0)        # ReLU: a value <= 0 cannot matter
                    for v in range(n_visit):
                        s = visit[v]
                        acc = positive_sum[s]
                        tests += 1
                        if acc <= best:
                            break                 # the rest of the window is no larger
                        oh = ph * pool + s // pool
                        ow = pw * pool + s % pool
                        base = oh * width + ow
                        t = n_pos
                        dropped = False
                        while t < n_terms:
                            end = min(t + chunk, n_terms)
                            acc += _partial_dot(w, off, x_flat, base, t, end)
                            count += end - t
                            t = end
                            tests += 1
                            if acc <= best:
                                dropped = True
                                break
                        if not dropped:
                            best = acc
                            out[n, f, oh, ow] = acc
        macs[n] = count
        checks[n] = tests


@njit
def conv_relu_pool_kernel(x, offsets, weights, group_end, group_slot, group_positive_sum,
                          n_positive, bias, compute_mask, slot_bound, pool, out, macs,
                          bound_macs, checks):
    """Pool-aware exact termination: each output of a max-pool window is dropped as soon as
    an upper bound of its final value cannot beat 0 or the window's largest value so far.

    The positive terms are split into groups (group ``g`` of filter ``f`` ends before term
    ``group_end[f, g]``, and its inputs all lie in bound slot ``group_slot[f, g]``: an input
    channel, or a row of one, of the receptive field); the negative terms follow, most
    negative first. With x >= 0:

    - before group g, the positive terms not yet added can add at most the sum over groups
      g, g+1, ... of ``group_positive_sum[f, g'] * slot_bound[n, group_slot[f, g'], oh, ow]``;
      if the partial sum plus that is <= the threshold the output is dropped;
    - in the negative phase the sum only falls: it is dropped once it is <= the threshold.

    The threshold starts at 0 (the ReLU) and rises to the largest output found so far in the
    window, so only outputs that could still become the window's maximum are finished.

    x                  : (N, C, H, W) float32, >= 0.
    offsets, weights   : (F, K) in this term order; n_positive (F,) int64.
    group_end          : (F, G) int64; group_slot (F, G) int64.
    group_positive_sum : (F, G) float32, the sum of each group's (positive) weights.
    bias               : (F,) float32.
    compute_mask       : (N, F, OH, OW) bool, the outputs to consider.
    slot_bound         : (N, S, OH, OW) float32, an upper bound of the inputs of slot s in the
                         receptive field of (oh, ow).
    pool               : window side; outputs outside a whole window are not computed.
    out                  : (N, F, OH, OW) float32 output: an output finished to the end holds
                           max(sum, 0), a skipped or dropped one 0; its max-pool is exact.
    macs                 : (N,) int64 output, the MACs of the layer's terms.
    bound_macs           : (N,) int64 output, the MACs of the bounds (C per output started).
    checks               : (N,) int64 output, the comparisons of the termination tests.
    """
    n_img, _, _, width = x.shape
    n_filt, n_terms = weights.shape
    n_groups = group_end.shape[1]
    out_h, out_w = out.shape[2], out.shape[3]
    products = np.empty(n_groups, np.float32)
    for n in range(n_img):
        x_flat = x[n].ravel()                  # (C*H*W,)
        count = 0
        bound_count = 0
        tests = 0
        out[n] = 0.0
        for f in range(n_filt):
            w = weights[f]
            off = offsets[f]
            n_pos = n_positive[f]
            for ph in range(out_h // pool):
                for pw in range(out_w // pool):
                    best = np.float32(0.0)     # ReLU: a value <= 0 cannot matter
                    for i in range(pool):
                        for j in range(pool):
                            oh = ph * pool + i
                            ow = pw * pool + j
                            if not compute_mask[n, f, oh, ow]:
                                continue
                            base = oh * width + ow
                            remaining = np.float32(0.0)
                            for g in range(n_groups):
                                products[g] = (group_positive_sum[f, g]
                                               * slot_bound[n, group_slot[f, g], oh, ow])
                                remaining += products[g]
                            bound_count += n_groups
                            acc = bias[f]
                            t = 0
                            dropped = False
                            for g in range(n_groups):
                                tests += 1
                                if acc + remaining <= best:
                                    dropped = True
                                    break
                                end = group_end[f, g]
                                acc += _partial_dot(w, off, x_flat, base, t, end)
                                t = end
                                remaining -= products[g]
                            if not dropped:
                                acc, t, n_tests, dropped = _negative_phase(
                                    w, off, x_flat, base, n_pos, n_terms, 1, acc, best)
                                tests += n_tests
                            count += t
                            if not dropped:
                                best = acc
                                out[n, f, oh, ow] = acc
        macs[n] = count
        bound_macs[n] = bound_count
        checks[n] = tests


@njit
def receptive_field_max_kernel(x, kh, kw, row_max, out, comparisons):
    """Largest input of each channel in every receptive field: a separable max.

    x           : (N, C, H, W).
    row_max     : (N, C, H, OW) output, the max over each row segment of width ``kw``.
    out         : (N, C, OH, OW) output, the max over each kh×kw window of a channel.
    comparisons : (N,) int64 output, the comparisons made per image.
    """
    n_img, n_ch, height, _ = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for n in range(n_img):
        for c in range(n_ch):
            for y in range(height):
                for ox in range(out_w):
                    m = x[n, c, y, ox]
                    for j in range(1, kw):
                        v = x[n, c, y, ox + j]
                        m = v if v > m else m
                    row_max[n, c, y, ox] = m
            for oy in range(out_h):
                for ox in range(out_w):
                    m = row_max[n, c, oy, ox]
                    for i in range(1, kh):
                        v = row_max[n, c, oy + i, ox]
                        m = v if v > m else m
                    out[n, c, oy, ox] = m
        comparisons[n] = n_ch * (height * out_w * (kw - 1) + out_h * out_w * (kh - 1))


@njit
def lowbit_conv_kernel(xq, wq, bias_q, out, macs):
    """Integer direct convolution, the low-bit copy of a layer.

    xq     : (N, C, H, W) int64, the quantised input (k-bit codes).
    wq     : (F, C, KH, KW) int64, the quantised weights (signed k-bit codes).
    bias_q : (F,) int64, the bias in units of (input scale × the filter's weight scale).
    out    : (N, F, OH, OW) int64 output, the sums in the same units.
    macs   : (N,) int64 output, the low-bit MACs performed per image.
    """
    n_img, n_ch, height, width = xq.shape
    n_filt, _, kh, kw = wq.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for n in range(n_img):
        macs[n] = 0
        for f in range(n_filt):
            for oh in range(out_h):
                for ow in range(out_w):
                    acc = bias_q[f]
                    for c in range(n_ch):
                        for i in range(kh):
                            for j in range(kw):
                                acc += wq[f, c, i, j] * xq[n, c, oh + i, ow + j]
                    out[n, f, oh, ow] = acc
                    macs[n] += n_ch * kh * kw


@njit
def lowbit_interval_kernel(codes, weight_codes, channel_step, weight_step, bias, error_const,
                           row_sum, box_sum, field, estimate, error, lowbit_macs,
                           predictor_macs, box_adds):
    """The low-bit copy of a layer with a guaranteed error bound per output.

    With dequantised inputs x̂ = δx_c·code and weights ŵ = δw_f·code, each output's exact
    value v = b + Σ w·x satisfies |v - q| <= E, where q = b + Σ ŵ·x̂ and, since
    w·x - ŵ·x̂ = w·(x - x̂) + (w - ŵ)·x̂ with |x - x̂| <= δx_c/2 and |w - ŵ| <= δw_f/2,
    E = Σ |w|·δx_c/2 + δw_f/2 · Σ x̂ (+ a rounding margin): the first part and the margin are
    the per-filter ``error_const``; Σ x̂ over the receptive field is Σ_c δx_c · (box sum of
    channel c's codes), shared by every filter.

    codes          : (N, C, H, W) int64, input codes 0 .. 2^k - 1 (live channels only).
    weight_codes   : (F, C, KH, KW) int64, signed weight codes.
    channel_step   : (C,) float64, δx_c; weight_step (F,) float64, δw_f.
    bias           : (F,) float64; error_const (F,) float64.
    row_sum        : (C, H, OW) int64 scratch; box_sum (C, OH, OW) int64 scratch;
    field          : (OH, OW) float64 scratch, Σ x̂ over each receptive field.
    estimate       : (N, F, OH, OW) float64 output, q.
    error          : (N, F, OH, OW) float64 output, E.
    lowbit_macs    : (N,) int64 output, code × code MACs (C·KH·KW per output).
    predictor_macs : (N,) int64 output, full-precision multiply-adds: C per position for Σ x̂,
                     then per output C to scale the channel sums, 1 for δw_f and 1 for E.
    box_adds       : (N,) int64 output, integer adds of the separable box sums.
    """
    n_img, n_ch, height, _ = codes.shape
    n_filt, _, kh, kw = weight_codes.shape
    out_h, out_w = estimate.shape[2], estimate.shape[3]
    channel_sum = np.empty(n_ch, np.int64)
    for n in range(n_img):
        adds = 0
        for c in range(n_ch):
            for y in range(height):
                for ox in range(out_w):
                    s = codes[n, c, y, ox]
                    for j in range(1, kw):
                        s += codes[n, c, y, ox + j]
                        adds += 1
                    row_sum[c, y, ox] = s
            for oy in range(out_h):
                for ox in range(out_w):
                    s = row_sum[c, oy, ox]
                    for i in range(1, kh):
                        s += row_sum[c, oy + i, ox]
                        adds += 1
                    box_sum[c, oy, ox] = s
        fp_macs = 0
        for oy in range(out_h):
            for ox in range(out_w):
                total = 0.0
                for c in range(n_ch):
                    total += channel_step[c] * box_sum[c, oy, ox]
                    fp_macs += 1
                field[oy, ox] = total
        low = 0
        for f in range(n_filt):
            half_step = 0.5 * weight_step[f]
            for oh in range(out_h):
                for ow in range(out_w):
                    for c in range(n_ch):
                        acc = 0
                        for i in range(kh):
                            for j in range(kw):
                                acc += weight_codes[f, c, i, j] * codes[n, c, oh + i, ow + j]
                        low += kh * kw
                        channel_sum[c] = acc
                    # Channels have their own input steps: the integer sums are scaled here.
                    total = 0.0
                    for c in range(n_ch):
                        total += channel_step[c] * channel_sum[c]
                    estimate[n, f, oh, ow] = bias[f] + weight_step[f] * total
                    error[n, f, oh, ow] = error_const[f] + half_step * field[oh, ow]
                    fp_macs += n_ch + 2
        lowbit_macs[n] = low
        predictor_macs[n] = fp_macs
        box_adds[n] = adds


@njit
def conv_relu_interval_pool_kernel(x, offsets, weights, n_positive, bias, estimate, error,
                                   pool, chunk, terminate, out, candidate, macs, checks):
    """Pool-aware exact computation decided by guaranteed intervals [q - E, q + E].

    For each pool×pool window: the threshold T = max(0, the largest lower bound q - E); an
    output whose upper bound q + E is <= T is no larger than another output of the window
    (or than 0) and is skipped. The others, the candidates, are computed in full precision
    from the largest estimate down:

    - ``terminate`` false: every live term of every candidate; the largest positive value is
      written;
    - ``terminate`` true: a candidate after the first is skipped when its upper bound is <=
      the window's best value so far; otherwise its bias and positive terms are added, then
      its negative terms ``chunk`` at a time, and it is dropped once the sum is <= the best
      (0 at first: the ReLU); a candidate finished to the end becomes the best and is written.

    Either way the window's max-pool is that of ReLU(conv).

    x                : (N, C, H, W) float32, >= 0.
    offsets, weights : (F, K) in SnaPEA's order; n_positive (F,) int64; bias (F,) float32.
    estimate, error  : (N, F, OH, OW) float64, q and E (:func:`lowbit_interval_kernel`).
    pool, chunk      : window side (outputs outside a whole window are not computed); terms
                       between two tests of the negative phase.
    terminate        : bool, as above.
    out              : (N, F, OH, OW) float32 output, the window's best value where it was
                       found, else 0.
    candidate        : (N, F, OH, OW) bool output, the outputs the intervals did not rule out.
    macs             : (N,) int64 output, full-precision MACs of the candidates.
    checks           : (N,) int64 output, comparisons: lower bounds against T, upper bounds
                       against T, the insertion sort by estimate, and the termination tests.
    """
    n_img, _, _, width = x.shape
    n_filt, n_terms = weights.shape
    out_h, out_w = out.shape[2], out.shape[3]
    window = pool * pool
    visit = np.empty(window, np.int64)          # candidate slots, largest estimate first
    for n in range(n_img):
        x_flat = x[n].ravel()                   # (C*H*W,)
        count = 0
        tests = 0
        out[n] = 0.0
        candidate[n] = False
        for f in range(n_filt):
            w = weights[f]
            off = offsets[f]
            n_pos = n_positive[f]
            for ph in range(out_h // pool):
                for pw in range(out_w // pool):
                    threshold = 0.0             # ReLU: a value <= 0 cannot matter
                    for s in range(window):
                        oh = ph * pool + s // pool
                        ow = pw * pool + s % pool
                        lower = estimate[n, f, oh, ow] - error[n, f, oh, ow]
                        tests += 1
                        if lower > threshold:
                            threshold = lower
                    n_visit = 0
                    for s in range(window):
                        oh = ph * pool + s // pool
                        ow = pw * pool + s % pool
                        tests += 1
                        if estimate[n, f, oh, ow] + error[n, f, oh, ow] <= threshold:
                            continue
                        candidate[n, f, oh, ow] = True
                        k = n_visit
                        while k > 0:
                            tests += 1
                            prev = visit[k - 1]
                            if (estimate[n, f, ph * pool + prev // pool, pw * pool + prev % pool]
                                    >= estimate[n, f, oh, ow]):
                                break
                            visit[k] = prev
                            k -= 1
                        visit[k] = s
                        n_visit += 1
                    best = np.float32(0.0)
                    for v in range(n_visit):
                        s = visit[v]
                        oh = ph * pool + s // pool
                        ow = pw * pool + s % pool
                        base = oh * width + ow
                        if not terminate:
                            acc = bias[f] + _partial_dot(w, off, x_flat, base, 0, n_terms)
                            count += n_terms
                            if acc > best:
                                best = acc
                                out[n, f, oh, ow] = acc
                            continue
                        if v > 0:
                            tests += 1
                            if estimate[n, f, oh, ow] + error[n, f, oh, ow] <= best:
                                continue
                        acc = bias[f] + _partial_dot(w, off, x_flat, base, 0, n_pos)
                        acc, t, n_tests, dropped = _negative_phase(w, off, x_flat, base, n_pos,
                                                                   n_terms, chunk, acc, best)
                        tests += n_tests
                        count += t
                        if not dropped:
                            best = acc
                            out[n, f, oh, ow] = acc
        macs[n] = count
        checks[n] = tests
