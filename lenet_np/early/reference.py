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
            done = n_pos
            while True:
                checks[n] += 1
                if acc <= 0 or done == len(terms):
                    break
                step = terms[done:done + chunk]
                acc += sum(w * v for w, v in step)
                done += len(step)
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
                                done = int(order.n_positive[f])
                                while True:
                                    checks[n] += 1
                                    if acc <= best:
                                        dropped = True
                                        break
                                    if done == len(terms):
                                        break
                                    w, v = terms[done]
                                    acc += w * v
                                    done += 1
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
