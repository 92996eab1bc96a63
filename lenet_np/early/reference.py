"""Naive references of the early kernels, written for reading: one output at a time, with
the same decisions as the kernels, in plain Python. The tests compare kernels and references
on small random cases, values and operation counts alike.
"""
import numpy as np


def _terms(x_img, order, f, oh, ow):
    """The (weight, input) pairs of output (f, oh, ow) in term order."""
    flat = x_img.ravel()
    base = oh * order.in_width + ow
    return [(float(order.weights[f, t]), float(flat[base + order.offsets[f, t]]))
            for t in range(order.weights.shape[1])]


def _negative_phase(acc, terms, done, threshold, chunk):
    """Add ``terms[done:]`` to ``acc``, ``chunk`` at a time, testing ``acc <= threshold``
    before each chunk and once at the end: (acc, terms added in all, dropped, tests)."""
    tests = 0
    while True:
        tests += 1
        if acc <= threshold:
            return acc, done, True, tests
        if done == len(terms):
            return acc, done, False, tests
        step = terms[done:done + chunk]
        acc += sum(w * v for w, v in step)
        done += len(step)


def snapea_naive(x, order, bias, out_shape, chunk=1):
    """SnaPEA exact mode, per output, the sign tested before each ``chunk`` of negative
    terms: (out (N, F, OH, OW), macs (N,), checks (N,))."""
    n_img = len(x)
    out = np.zeros((n_img, *out_shape))
    macs = np.zeros(n_img, np.int64)
    checks = np.zeros(n_img, np.int64)
    for n in range(n_img):
        for f, oh, ow in np.ndindex(*out_shape):
            terms = _terms(x[n], order, f, oh, ow)
            n_pos = int(order.n_positive[f])
            acc = float(bias[f]) + sum(w * v for w, v in terms[:n_pos])
            acc, done, _, tests = _negative_phase(acc, terms, n_pos, 0.0, chunk)
            checks[n] += tests
            macs[n] += done
            out[n, f, oh, ow] = max(acc, 0.0)
    return out, macs, checks


def pool_window_naive(x, order, bias, out_shape, pool, compute_mask=None, chunk=1):
    """Pool-aware exact termination window by window: (out, macs (N,), checks (N,)).

    Per window: the positive sums (bias + positive terms) of its outputs; then from the
    largest down (ties: the earlier output first), each is dropped with the rest of the
    window if its positive sum is <= the window's best so far (0 at first), else its negative
    terms are added ``chunk`` at a time until the sum is <= the best (dropped) or all are in
    (finished, the new best). Comparisons: those of an insertion sort, then every test.
    """
    n_img = len(x)
    n_filt, out_h, out_w = out_shape
    out = np.zeros((n_img, *out_shape))
    macs = np.zeros(n_img, np.int64)
    checks = np.zeros(n_img, np.int64)
    for n, f in np.ndindex(n_img, n_filt):
        n_pos = int(order.n_positive[f])
        for ph, pw in np.ndindex(out_h // pool, out_w // pool):
            visit, positive_sum = [], {}
            for i, j in np.ndindex(pool, pool):
                oh, ow = ph * pool + i, pw * pool + j
                if compute_mask is not None and not compute_mask[n, f, oh, ow]:
                    continue
                terms = _terms(x[n], order, f, oh, ow)
                positive_sum[(oh, ow)] = float(bias[f]) + sum(w * v for w, v in terms[:n_pos])
                macs[n] += n_pos
                # Insertion sort: walk down from the end while the new sum is larger.
                k = len(visit)
                while k > 0:
                    checks[n] += 1
                    if positive_sum[visit[k - 1]] >= positive_sum[(oh, ow)]:
                        break
                    k -= 1
                visit.insert(k, (oh, ow))
            best = 0.0
            for oh, ow in visit:
                acc = positive_sum[(oh, ow)]
                checks[n] += 1
                if acc <= best:
                    break
                terms = _terms(x[n], order, f, oh, ow)
                done, dropped = n_pos, False
                while done < len(terms):
                    step = terms[done:done + chunk]
                    acc += sum(w * v for w, v in step)
                    macs[n] += len(step)
                    done += len(step)
                    checks[n] += 1
                    if acc <= best:
                        dropped = True
                        break
                if not dropped:
                    best = acc
                    out[n, f, oh, ow] = acc
    return out, macs, checks


def pool_exact_naive(x, order, bias, out_shape, slot_bound, pool, compute_mask=None):
    """Pool-aware exact termination, per window and output: (out, macs, bound_macs, checks)."""
    n_img = len(x)
    n_filt, out_h, out_w = out_shape
    out = np.zeros((n_img, *out_shape))
    macs = np.zeros(n_img, np.int64)
    bound_macs = np.zeros(n_img, np.int64)
    checks = np.zeros(n_img, np.int64)
    n_groups = order.group_end.shape[1]
    for n in range(n_img):
        for f in range(n_filt):
            for ph in range(out_h // pool):
                for pw in range(out_w // pool):
                    best = 0.0
                    for i in range(pool):
                        for j in range(pool):
                            oh, ow = ph * pool + i, pw * pool + j
                            if compute_mask is not None and not compute_mask[n, f, oh, ow]:
                                continue
                            terms = _terms(x[n], order, f, oh, ow)
                            # Bound of each group: its positive weight sum times its slot's
                            # largest input.
                            caps = [float(order.group_positive_sum[f, g])
                                    * float(slot_bound[n, order.group_slot[f, g], oh, ow])
                                    for g in range(n_groups)]
                            bound_macs[n] += n_groups
                            acc, done, dropped = float(bias[f]), 0, False
                            for g in range(n_groups):
                                checks[n] += 1
                                if acc + sum(caps[g:]) <= best:
                                    dropped = True
                                    break
                                end = int(order.group_end[f, g])
                                acc += sum(w * v for w, v in terms[done:end])
                                done = end
                            if not dropped:
                                acc, done, dropped, tests = _negative_phase(
                                    acc, terms, int(order.n_positive[f]), best, 1)
                                checks[n] += tests
                            macs[n] += done
                            if not dropped:
                                best = acc
                                out[n, f, oh, ow] = acc
    return out, macs, bound_macs, checks


def receptive_field_max_naive(x, kh, kw):
    """(N, C, OH, OW): the largest input of each channel in each receptive field."""
    n_img, n_ch, height, width = x.shape
    out = np.zeros((n_img, n_ch, height - kh + 1, width - kw + 1), x.dtype)
    for oh in range(out.shape[2]):
        for ow in range(out.shape[3]):
            out[:, :, oh, ow] = x[:, :, oh:oh + kh, ow:ow + kw].max(axis=(2, 3))
    return out


def lowbit_conv_naive(xq, wq, bias_q):
    """Integer direct convolution with numpy sums: (N, F, OH, OW) int64 (its MACs are
    C*KH*KW per output)."""
    n_img, _, height, width = xq.shape
    n_filt, _, kh, kw = wq.shape
    out = np.zeros((n_img, n_filt, height - kh + 1, width - kw + 1), np.int64)
    for n, f, oh, ow in np.ndindex(*out.shape):
        out[n, f, oh, ow] = bias_q[f] + int(np.sum(wq[f].astype(np.int64)
                                                   * xq[n, :, oh:oh + kh, ow:ow + kw]))
    return out


def lowbit_intervals_naive(codes, weight_codes, channel_step, weight_step, bias, error_const):
    """The low-bit estimate and its error bound, output by output with numpy sums:
    (estimate, error (N, F, OH, OW) float64, lowbit_macs, predictor_macs, box_adds (N,)).

    q = b + δw_f · Σ_c δx_c · Σ(code_w · code_x) and E = error_const_f + δw_f/2 · Σ_c δx_c ·
    Σ code_x over the receptive field. Counts: C·KH·KW low-bit MACs per output; C
    multiply-adds per position (Σx̂) and C + 2 per output (scaling, δw_f, E); the box sums'
    adds of a separable sum, C·(H·OW·(KW-1) + OH·OW·(KH-1)).
    """
    n_img, n_ch, height, width = codes.shape
    n_filt, _, kh, kw = weight_codes.shape
    out_h, out_w = height - kh + 1, width - kw + 1
    estimate = np.zeros((n_img, n_filt, out_h, out_w))
    error = np.zeros_like(estimate)
    for n, f, oh, ow in np.ndindex(*estimate.shape):
        patch = codes[n, :, oh:oh + kh, ow:ow + kw].astype(np.int64)        # (C, KH, KW)
        per_channel = (weight_codes[f].astype(np.int64) * patch).sum(axis=(1, 2))   # (C,)
        estimate[n, f, oh, ow] = bias[f] + weight_step[f] * float(
            np.dot(channel_step, per_channel))
        error[n, f, oh, ow] = error_const[f] + weight_step[f] / 2 * float(
            np.dot(channel_step, patch.sum(axis=(1, 2))))
    outputs = n_filt * out_h * out_w
    lowbit_macs = np.full(n_img, outputs * n_ch * kh * kw, np.int64)
    predictor_macs = np.full(n_img, out_h * out_w * n_ch + outputs * (n_ch + 2), np.int64)
    box_adds = np.full(n_img, n_ch * (height * out_w * (kw - 1) + out_h * out_w * (kh - 1)),
                       np.int64)
    return estimate, error, lowbit_macs, predictor_macs, box_adds


def interval_pool_naive(x, order, bias, estimate, error, pool, chunk=1, terminate=True):
    """Pool-aware computation decided by the intervals [q - E, q + E], per window:
    (out, candidate, macs (N,), checks (N,)).

    T = max(0, the window's largest q - E); outputs with q + E <= T are skipped; the others
    (candidates) are visited by decreasing q (ties: the earlier output first). Without
    ``terminate`` each is computed in full and the largest positive value kept; with it, a
    candidate after the first is skipped if q + E <= the best so far, otherwise its positive
    sum is tested against the best, then its negative terms are added ``chunk`` at a time,
    each chunk followed by a test, until the sum is <= the best (dropped) or all are in (the
    new best). Comparisons: 2 per output of the window, the insertion sort's, every test.
    """
    n_img = len(x)
    n_filt, out_h, out_w = estimate.shape[1:]
    out = np.zeros(estimate.shape)
    candidate = np.zeros(estimate.shape, bool)
    macs = np.zeros(n_img, np.int64)
    checks = np.zeros(n_img, np.int64)
    for n, f in np.ndindex(n_img, n_filt):
        n_pos = int(order.n_positive[f])
        for ph, pw in np.ndindex(out_h // pool, out_w // pool):
            cells = [(ph * pool + i, pw * pool + j) for i, j in np.ndindex(pool, pool)]
            upper = {c: estimate[n, f, c[0], c[1]] + error[n, f, c[0], c[1]] for c in cells}
            lower = [estimate[n, f, c[0], c[1]] - error[n, f, c[0], c[1]] for c in cells]
            threshold = max([0.0] + lower)
            checks[n] += 2 * len(cells)
            visit = []
            for cell in cells:
                if upper[cell] <= threshold:
                    continue
                candidate[(n, f) + cell] = True
                k = len(visit)
                while k > 0:
                    checks[n] += 1
                    if estimate[(n, f) + visit[k - 1]] >= estimate[(n, f) + cell]:
                        break
                    k -= 1
                visit.insert(k, cell)
            best = 0.0
            for v, cell in enumerate(visit):
                terms = _terms(x[n], order, f, *cell)
                if not terminate:
                    acc = float(bias[f]) + sum(w * u for w, u in terms)
                    macs[n] += len(terms)
                    if acc > best:
                        best = acc
                        out[(n, f) + cell] = acc
                    continue
                if v > 0:
                    checks[n] += 1
                    if upper[cell] <= best:
                        continue
                acc = float(bias[f]) + sum(w * u for w, u in terms[:n_pos])
                acc, done, dropped, tests = _negative_phase(acc, terms, n_pos, best, chunk)
                checks[n] += tests
                macs[n] += done
                if not dropped:
                    best = acc
                    out[(n, f) + cell] = acc
    return out, candidate, macs, checks
