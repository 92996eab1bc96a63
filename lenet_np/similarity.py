"""2-D similarity of a conv layer's output maps: the computations behind ``--similarity``.

Every function here is pure: arrays in, arrays out, shapes in the docstrings. The report
section that runs them on a model and draws the figures is :mod:`lenet_np.similarity_report`.

Vocabulary. A *map* is one filter's H×W output for one image. The *pre-activation* map is the
conv layer's output; the *mask* is where the ReLU after it is nonzero. Maps are handled
flattened, P = H*W positions, as (N, C, P) arrays.

Similarity of two images' maps, per filter:

- cosine of the pre-activation maps, ``a·b / (|a| |b|)``;
- Pearson correlation of the pre-activation maps, the cosine of the maps minus their means;
- IoU (Jaccard) of the masks, ``|A ∩ B| / |A ∪ B|``.

Undefined values. Cosine of a map that is all zero, Pearson of a constant map and IoU of two
empty masks (a dead filter, or an image that leaves a filter silent) are 0/0. They are NaN,
left out of every mean, median and quartile, and counted (``n_undefined``), never treated as
0 or 1.

All pairs of up to 10,000 images are summarised in blocks, never as an N×N×P array. Mask IoU
of every pair: masks as bit sets, a numba kernel counting intersections and folding each
block into per-digit-pair sums and fixed-bin histograms (``N_BINS`` bins over [-1, 1]: means
exact, medians and quartiles to within 0.002). Cosine and Pearson means of every pair: exact
from per-digit sums of unit vectors (:func:`linear_pair_means`), O(N). Cosine and Pearson
histograms (quartiles): from blocks of Gram matrices (BLAS) over a smaller set of images.
"""
import math
from dataclasses import dataclass

import numpy as np

from .errors import LenetError
from .kernels import njit

MEASURES = ("cosine", "pearson", "iou")
N_BINS = 1000                 # histogram bins over [-1, 1]: quantiles to within 0.002
N_DIGITS = 10
GRAM_BUDGET = 4_000_000       # elements of one (C, B, B) Gram block: ~16 MB in float32


def analysed_layers(model, layer):
    """The pre-activation conv layer and its ReLU for ``--layer``.

    A conv layer is the pre-activation and the ReLU after it gives the masks; a ReLU that
    follows a conv gives the masks and that conv is the pre-activation.

    Returns
    -------
    (pre, relu) : two layer names, e.g. ("conv2", "relu2").

    Raises
    ------
    LenetError
        For any other layer (no 2-D maps, or no conv/ReLU pair).
    """
    names = model.layer_names
    kinds = {name: kind for name, kind, _ in model.layers}
    i = names.index(layer)
    if kinds[layer] == "conv" and i + 1 < len(names) and kinds[names[i + 1]] == "relu":
        return layer, names[i + 1]
    if kinds[layer] == "relu" and kinds[names[i - 1]] == "conv":
        return names[i - 1], layer
    convs = [n for n in names if kinds[n] == "conv"]
    raise LenetError(f"--similarity needs a conv layer or the ReLU after one, got --layer "
                     f"{layer} ({kinds[layer]}); choose one of "
                     f"{', '.join(n for c in convs for n in (c, names[names.index(c) + 1]))}")


def receptive_field(model, layer):
    """Size and stride, in input pixels, of one output position of ``layer``.

    Walks the layers from the input: a k×k stride-1 conv widens the field by (k-1) times the
    current stride; a p×p stride-p max-pool widens it by (p-1) times the current stride and
    multiplies the stride by p. Nothing is padded, so output (i, j) starts at input pixel
    (i*stride, j*stride).

    Returns
    -------
    (size, stride) : ints; (14, 2) for conv2 of the default LeNet, (5, 1) for conv1.
    """
    size, stride = 1, 1
    for name, kind, _ in model.layers[1:]:
        if kind == "conv":
            kernel = model.params[f"{name}.weight"].shape[-1]    # (C_out, C_in, k, k)
            size += (kernel - 1) * stride
        elif kind == "pool":
            size += (model.arch.pool - 1) * stride
            stride *= model.arch.pool
        elif kind != "relu":
            raise ValueError(f"no spatial receptive field through a {kind} layer")
        if name == layer:
            return size, stride
    raise ValueError(f"{layer!r} is not a layer of this model")


def receptive_field_boxes(model, layer):
    """Input rows and columns each output position of ``layer`` sees.

    Returns
    -------
    boxes : (H, W, 4) int array, ``[y0, y1, x0, x1]`` half-open, for output position (i, j).
    """
    size, stride = receptive_field(model, layer)
    height, width = next(shape for name, _, shape in model.layers if name == layer)[1:]
    rows = np.arange(height)[:, None] * stride                 # (H, 1)
    cols = np.arange(width)[None, :] * stride                  # (1, W)
    boxes = np.empty((height, width, 4), dtype=np.int64)
    boxes[..., 0], boxes[..., 1] = rows, rows + size
    boxes[..., 2], boxes[..., 3] = cols, cols + size
    return boxes


def patch_ink(images, boxes):
    """Ink (sum of pixel/255) inside each box of each image, from a summed-area table.

    images : (N, Hin, Win) uint8 or float. boxes : (H, W, 4) from :func:`receptive_field_boxes`.
    Returns (N, H, W) float64.
    """
    ink = np.asarray(images, dtype=np.float64) / (255.0 if images.dtype == np.uint8 else 1.0)
    table = np.zeros((ink.shape[0], ink.shape[1] + 1, ink.shape[2] + 1))
    table[:, 1:, 1:] = ink.cumsum(axis=1).cumsum(axis=2)        # (N, Hin+1, Win+1)
    y0, y1, x0, x1 = (boxes[..., k] for k in range(4))          # each (H, W)
    return table[:, y1, x1] - table[:, y0, x1] - table[:, y1, x0] + table[:, y0, x0]


def pearson_by_filter(x, y):
    """Pearson correlation of ``x`` and ``y`` over images and positions, per filter.

    x, y : (N, C, H, W) or (N, C, P). Returns (C,) float64; NaN where either is constant.
    """
    n_img, n_filters = x.shape[:2]
    xs = np.moveaxis(np.asarray(x, np.float64).reshape(n_img, n_filters, -1), 1, 0)
    ys = np.moveaxis(np.asarray(y, np.float64).reshape(n_img, n_filters, -1), 1, 0)
    xs = xs.reshape(n_filters, -1) - xs.reshape(n_filters, -1).mean(axis=1, keepdims=True)
    ys = ys.reshape(n_filters, -1) - ys.reshape(n_filters, -1).mean(axis=1, keepdims=True)
    numerator = (xs * ys).sum(axis=1)
    denominator = np.sqrt((xs * xs).sum(axis=1) * (ys * ys).sum(axis=1))
    return _safe_divide(numerator, denominator)


def _safe_divide(numerator, denominator):
    """numerator / denominator, NaN where the denominator is 0 (no RuntimeWarning)."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    out = np.full(np.broadcast(numerator, denominator).shape, np.nan)
    np.divide(numerator, denominator, out=out, where=denominator != 0)
    return out[()] if out.ndim == 0 else out


# --- similarity of two maps: the direct formulas, the reference for the blocked summary ---

def cosine(a, b):
    """Cosine similarity of two maps of any shape; NaN if either is all zero."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(_safe_divide(a @ b, np.sqrt((a @ a) * (b @ b))))


def pearson(a, b):
    """Pearson correlation of two maps' values, position by position; NaN if either is
    constant."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return cosine(a - a.mean(), b - b.mean())


def mask_iou(a, b):
    """IoU (Jaccard) of two boolean masks of any shape; NaN if both are empty (0/0)."""
    a, b = np.ravel(a).astype(bool), np.ravel(b).astype(bool)
    return float(_safe_divide(np.sum(a & b), np.sum(a | b)))


# --- all pairs in blocks ---

@dataclass
class PairStats:
    """Summaries of the three measures over all pairs, accumulated block by block.

    Digit axes (a, b) are the labels of the pair's first and second image; C filters,
    M = len(MEASURES).
    """
    sums: np.ndarray        # (10, 10, C, M) float64, sum of the defined values
    counts: np.ndarray      # (10, 10, C, M) int64, defined pairs
    undefined: np.ndarray   # (10, 10, C, M) int64, 0/0 pairs (NaN)
    hist: np.ndarray        # (10, 10, C, M, N_BINS) int32, values binned over [-1, 1]

    @classmethod
    def empty(cls, n_filters, n_bins=N_BINS):
        shape = (N_DIGITS, N_DIGITS, n_filters, len(MEASURES))
        return cls(np.zeros(shape), np.zeros(shape, np.int64), np.zeros(shape, np.int64),
                   np.zeros(shape + (n_bins,), np.int32))

    def unordered(self, name):
        """``sums``, ``counts``, ``undefined`` or ``hist`` with the two images' order
        forgotten: [a, b] and [b, a] both hold every pair of an a and a b."""
        value = getattr(self, name)
        both = value + np.swapaxes(value, 0, 1)
        idx = np.arange(N_DIGITS)
        both[idx, idx] = value[idx, idx]
        return both


def prepare_maps(pre, masks):
    """The per-image operands of :func:`accumulate_pairs`.

    Cosine and Pearson both come from one Gram matrix of centred maps z = a - mean(a):
    Pearson = z_i·z_j / (|z_i| |z_j|) and, since a_i·a_j = z_i·z_j + P mean_i mean_j,
    cosine = (z_i·z_j + P mean_i mean_j) / (|a_i| |a_j|). Centring first keeps float32
    products accurate when a map's mean is large against its spread.

    pre : (N, C, P) pre-activation maps; masks : (N, C, P) bool.
    Returns a dict of arrays with the filter axis first: ``centred`` (C, N, P) float32,
    ``mean`` (C, N) float64, ``centred_norm`` and ``norm`` (C, N) float64 *reciprocal*
    lengths (NaN for a zero-length map, so its similarities come out NaN), ``bits`` (C, N, ceil(P/64)) uint64
    (the mask, bit k of word w is position 64*w + k) and ``size`` (C, N) int64.
    """
    maps = np.moveaxis(np.asarray(pre, dtype=np.float64), 1, 0)         # (C, N, P)
    n_positions = maps.shape[2]
    mean = maps.mean(axis=2)
    centred = maps - mean[..., None]
    centred_norm = np.sqrt((centred * centred).sum(axis=2))
    norm = np.sqrt((maps * maps).sum(axis=2))
    mask = np.moveaxis(np.asarray(masks, dtype=bool), 1, 0)             # (C, N, P)
    n_words = -(-n_positions // 64)
    padded = np.zeros(mask.shape[:2] + (n_words * 64,), dtype=bool)
    padded[..., :n_positions] = mask
    bits = np.packbits(padded, axis=2, bitorder="little").view("<u8")    # (C, N, n_words)
    return {"centred": np.ascontiguousarray(centred, dtype=np.float32), "mean": mean,
            "centred_norm": _safe_divide(1.0, centred_norm), "norm": _safe_divide(1.0, norm),
            "bits": np.ascontiguousarray(bits, dtype=np.uint64),
            "size": mask.sum(axis=2).astype(np.int64)}


def accumulate_pairs(right, labels, left=None, iou_only=False, block_size=None, n_bins=N_BINS):
    """Cosine, Pearson and mask IoU of every pair of images i < j, summarised by digit.

    Parameters
    ----------
    right : dict from :func:`prepare_maps` for N images.
    labels : (N,) ints in 0-9. Images sorted by label run fastest (the histogram rows a
        block touches stay in cache).
    left : optional dict from :func:`prepare_maps` for the same N images transformed (e.g.
        their input shifted): pair (i, j) then compares left image i with right image j, so
        each unordered pair is measured once, with one of its images transformed.
    iou_only : measure mask IoU alone, with no Gram matrices (about 3 times faster); the
        cosine and Pearson entries of the result stay 0 (see :func:`linear_pair_means`).
    block_size : images per block side; by default a (C, B, B) block has about
        ``GRAM_BUDGET`` elements.

    Returns
    -------
    PairStats
    """
    left = right if left is None else left
    n_filters, n_images, n_positions = right["centred"].shape
    if block_size is None:
        block_size = max(32, int(math.sqrt(GRAM_BUDGET / n_filters)))
    labels = np.asarray(labels, dtype=np.int64)
    stats = PairStats.empty(n_filters, n_bins)
    gram = np.empty((n_filters, block_size, block_size), dtype=np.float32)
    keys = ("mean", "centred_norm", "norm", "bits", "size")
    for i0 in range(0, n_images, block_size):
        rows = slice(i0, min(i0 + block_size, n_images))
        for j0 in range(i0, n_images, block_size):
            cols = slice(j0, min(j0 + block_size, n_images))
            n_i, n_j = rows.stop - rows.start, cols.stop - cols.start
            block = gram[:, :n_i, :n_j]
            if iou_only:
                iou_block_kernel(left["bits"][:, rows], left["size"][:, rows],
                                 right["bits"][:, cols], right["size"][:, cols], labels[rows],
                                 labels[cols], j0 == i0, stats.sums, stats.counts,
                                 stats.undefined, stats.hist)
                continue
            for c in range(n_filters):
                # (Bi, P) @ (P, Bj): one BLAS call per filter (a stacked matmul over a
                # transposed operand was several times slower).
                np.matmul(left["centred"][c, rows], right["centred"][c, cols].T, out=block[c])
            pair_block_kernel(block, *(left[k][:, rows] for k in keys),
                              *(right[k][:, cols] for k in keys), labels[rows], labels[cols],
                              n_positions, j0 == i0, stats.sums, stats.counts,
                              stats.undefined, stats.hist)
    return stats


@njit
def popcount64(x):
    """Set bits of a uint64 (the SWAR bit count; LLVM turns it into one instruction)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return (x * np.uint64(0x0101010101010101)) >> np.uint64(56)


@njit
def iou_block_kernel(bits_i, size_i, bits_j, size_j, label_i, label_j, upper_only, sums,
                     counts, undefined, hist):
    """Fold the mask IoU of one block of pairs into the running summaries.

    bits_* : (C, B, words) uint64 masks; size_* : (C, B) int64 mask sizes; label_* : (B,)
    int64; upper_only : the block is on the diagonal: only j > i count.
    sums, counts, undefined : (10, 10, C, 3) and hist : (10, 10, C, 3, n_bins) int32, of which
    measure 2 (IoU) is updated in place.
    Sums and counts build up in local variables while the second image's digit stays the
    same (images come sorted by digit): adding into one array element pair after pair would
    make every step wait for the previous store.
    """
    n_filters, n_i, n_words = bits_i.shape
    n_j = bits_j.shape[1]
    n_bins = hist.shape[4]
    half_bins = 0.5 * n_bins
    for c in range(n_filters):
        for i in range(n_i):
            a = label_i[i]
            start = i + 1 if upper_only else 0
            if start >= n_j:
                continue
            run_digit = label_j[start]
            run_sum = 0.0
            run_count = 0
            run_undefined = 0
            for j in range(start, n_j):
                b = label_j[j]
                if b != run_digit:
                    sums[a, run_digit, c, 2] += run_sum
                    counts[a, run_digit, c, 2] += run_count
                    undefined[a, run_digit, c, 2] += run_undefined
                    run_digit, run_sum, run_count, run_undefined = b, 0.0, 0, 0
                intersection = 0
                for w in range(n_words):
                    intersection += popcount64(bits_i[c, i, w] & bits_j[c, j, w])
                union = size_i[c, i] + size_j[c, j] - intersection
                if union == 0:
                    run_undefined += 1
                    continue
                value = intersection / union
                run_sum += value
                run_count += 1
                hist[a, b, c, 2, min(int((value + 1.0) * half_bins), n_bins - 1)] += 1
            sums[a, run_digit, c, 2] += run_sum
            counts[a, run_digit, c, 2] += run_count
            undefined[a, run_digit, c, 2] += run_undefined


@njit
def pair_block_kernel(gram, mean_i, rcnorm_i, rnorm_i, bits_i, size_i, mean_j, rcnorm_j,
                      rnorm_j, bits_j, size_j, label_i, label_j, n_positions, upper_only, sums,
                      counts, undefined, hist):
    """Fold one block of pairs into the running summaries.

    gram : (C, Bi, Bj) float32, centred dot products z_i·z_j.
    mean_* : (C, B) float64 map means; rcnorm_*, rnorm_* : (C, B) float64 reciprocal lengths
    of the centred and raw maps (NaN for a zero length); bits_* : (C, B, words) uint64 masks;
    size_* : (C, B) int64 mask sizes; label_* : (B,) int64; n_positions : P.
    upper_only : the block is on the diagonal (same images both sides): only j > i count.
    sums, counts, undefined : (10, 10, C, 3); hist : (10, 10, C, 3, n_bins) int32; all
    updated in place. Values are binned over [-1, 1]; 1.0 and rounding just past ±1 go to the
    end bins.
    """
    n_filters, n_i, n_j = gram.shape
    n_words = bits_i.shape[2]
    n_bins = hist.shape[4]
    half_bins = 0.5 * n_bins
    for c in range(n_filters):
        for i in range(n_i):
            a = label_i[i]
            start = i + 1 if upper_only else 0
            scale_cos = rnorm_i[c, i]
            scale_pear = rcnorm_i[c, i]
            offset = n_positions * mean_i[c, i]
            for j in range(start, n_j):
                b = label_j[j]
                dot = np.float64(gram[c, i, j])
                for m in range(3):
                    if m == 0:
                        value = (dot + offset * mean_j[c, j]) * scale_cos * rnorm_j[c, j]
                    elif m == 1:
                        value = dot * scale_pear * rcnorm_j[c, j]
                    else:
                        intersection = 0
                        for w in range(n_words):
                            intersection += popcount64(bits_i[c, i, w] & bits_j[c, j, w])
                        union = size_i[c, i] + size_j[c, j] - intersection
                        value = intersection / union if union > 0 else np.nan
                    if np.isnan(value):
                        undefined[a, b, c, m] += 1
                    else:
                        sums[a, b, c, m] += value
                        counts[a, b, c, m] += 1
                        k = min(max(int((value + 1.0) * half_bins), 0), n_bins - 1)
                        hist[a, b, c, m, k] += 1


def linear_pair_means(prepared, labels, stats):
    """Cosine and Pearson sums over every pair, exactly, in O(N) instead of O(N²).

    With unit vectors u (a map over its length), the sum of u_i·u_j over all pairs i < j of
    digit d is (|S_d|² - Σ|u_i|²) / 2, S_d = Σ_{i in d} u_i, and over pairs of an a and a b
    it is S_a·S_b. Pearson is the same with centred maps. Maps of zero length (NaN reciprocal)
    are left out and their pairs counted as undefined.

    prepared : dict from :func:`prepare_maps`; labels : (N,) ints 0-9; stats : PairStats
    whose cosine and Pearson entries (measures 0 and 1) are overwritten, [a, b] for a <= b.
    """
    n_filters, n_images, n_positions = prepared["centred"].shape
    labels = np.asarray(labels)
    centred = prepared["centred"].astype(np.float64)                    # (C, N, P)
    mean = prepared["mean"][..., None]
    for m, (maps, scale) in enumerate(((centred + mean, prepared["norm"]),
                                       (centred, prepared["centred_norm"]))):
        defined = ~np.isnan(scale)                                      # (C, N)
        unit = maps * np.where(defined, scale, 0.0)[..., None]          # (C, N, P)
        digit_sums = np.stack([unit[:, labels == d].sum(axis=1) for d in range(N_DIGITS)])
        n_defined = np.stack([defined[:, labels == d].sum(axis=1) for d in range(N_DIGITS)])
        n_all = np.array([np.sum(labels == d) for d in range(N_DIGITS)])
        self_dots = np.stack([(unit[:, labels == d] ** 2).sum(axis=(1, 2))
                              for d in range(N_DIGITS)])                # (10, C)
        dots = np.einsum("acp,bcp->abc", digit_sums, digit_sums)       # (10, 10, C)
        pairs = n_defined[:, None] * n_defined[None, :]                 # (10, 10, C)
        all_pairs = n_all[:, None] * n_all[None, :]
        for a in range(N_DIGITS):
            stats.sums[a, a:, :, m] = dots[a, a:]
            stats.counts[a, a:, :, m] = pairs[a, a:]
            stats.undefined[a, a:, :, m] = all_pairs[a, a:, None] - pairs[a, a:]
            stats.sums[a, a, :, m] = (dots[a, a] - self_dots[a]) / 2
            stats.counts[a, a, :, m] = n_defined[a] * (n_defined[a] - 1) // 2
            stats.undefined[a, a, :, m] = (n_all[a] * (n_all[a] - 1) // 2
                                           - stats.counts[a, a, :, m])
            stats.sums[a + 1:, a, :, m] = 0
            stats.counts[a + 1:, a, :, m] = 0
            stats.undefined[a + 1:, a, :, m] = 0


def histogram_quantiles(hist, quantiles, low=-1.0, high=1.0):
    """Quantiles of the values behind a fixed-bin histogram, interpolating within a bin.

    hist : (..., n_bins) counts over [low, high]. Returns (..., len(quantiles)) float64, NaN
    where a histogram is empty. Exact to within one bin width.
    """
    hist = np.asarray(hist, dtype=np.float64)
    n_bins = hist.shape[-1]
    flat = hist.reshape(-1, n_bins)
    cumulative = np.cumsum(flat, axis=1)                     # (K, n_bins)
    total = cumulative[:, -1]
    out = np.full((flat.shape[0], len(quantiles)), np.nan)
    width = (high - low) / n_bins
    for k in np.flatnonzero(total > 0):
        for q_index, q in enumerate(quantiles):
            target = q * total[k]
            b = min(int(np.searchsorted(cumulative[k], target, side="left")), n_bins - 1)
            before = cumulative[k, b - 1] if b > 0 else 0.0
            inside = (target - before) / flat[k, b] if flat[k, b] > 0 else 0.0
            out[k, q_index] = low + (b + inside) * width
    return out.reshape(*hist.shape[:-1], len(quantiles))


def pair_summary(stats, digit, pairs):
    """Pooled summaries of one digit's ``"within"`` or ``"across"`` pairs.

    Within: both images are ``digit``; across: one is ``digit``, the other any other digit.
    Returns a dict of (C + 1, M) arrays, the last row pooling every filter's pairs:
    n_pairs, n_undefined, mean, median, q1, q3.
    """
    others = [o for o in range(N_DIGITS) if o != digit]
    if pairs == "within":
        pick = lambda v: v[digit, digit]                                 # noqa: E731
    else:
        pick = lambda v: v[digit, others].sum(axis=0) + v[others, digit].sum(axis=0)  # noqa: E731
    sums, n, undefined, hist = (pick(getattr(stats, k)).astype(np.float64)
                                for k in ("sums", "counts", "undefined", "hist"))
    sums, n, undefined, hist = (np.concatenate([x, x.sum(axis=0, keepdims=True)])
                                for x in (sums, n, undefined, hist))
    q1, median, q3 = np.moveaxis(histogram_quantiles(hist, [0.25, 0.5, 0.75]), -1, 0)
    return {"n_pairs": n, "n_undefined": undefined, "mean": _safe_divide(sums, n),
            "median": median, "q1": q1, "q3": q3}


def summary_rows(stats, digits, shift=0):
    """Rows of the similarity table: every measure, within and across, per digit and filter.

    Filters are numbered; ``"all"`` pools every filter's pairs. Returns a list of dicts with
    keys digit, filter, measure, pairs ("within"/"across"), shift, n_pairs, n_undefined,
    mean, median, q1, q3.
    """
    n_filters = stats.sums.shape[2]
    rows = []
    for d in digits:
        for pairs in ("within", "across"):
            summary = pair_summary(stats, d, pairs)
            for f in range(n_filters + 1):
                for m, measure in enumerate(MEASURES):
                    row = {"digit": d, "filter": f if f < n_filters else "all",
                           "measure": measure, "pairs": pairs, "shift": shift}
                    for key, value in summary.items():
                        row[key] = (int(value[f, m]) if key.startswith("n_")
                                    else float(value[f, m]))
                    rows.append(row)
    return rows


def digit_matrix(stats, measure="iou"):
    """Mean similarity of every digit pair, per filter and pooled over filters.

    Returns (per_filter (C, 10, 10), overall (10, 10)) float64; NaN where no pair is defined.
    """
    m = MEASURES.index(measure)
    sums = stats.unordered("sums")[..., m]                               # (10, 10, C)
    counts = stats.unordered("counts")[..., m]
    per_filter = np.moveaxis(_safe_divide(sums, counts), 2, 0)
    return per_filter, _safe_divide(sums.sum(axis=2), counts.sum(axis=2))


# --- the input shifted: the position control ---

def shift_images(images, dy, dx):
    """Move each image by (dy[i], dx[i]) pixels, filling with 0 (no wrap-around).

    images : (N, H, W); dy, dx : (N,) ints (positive = down / right). Returns (N, H, W).
    """
    out = np.zeros_like(images)
    height, width = images.shape[1:]
    for i, (y, x) in enumerate(zip(dy, dx)):
        out[i, max(y, 0):height + min(y, 0), max(x, 0):width + min(x, 0)] = \
            images[i, max(-y, 0):height + min(-y, 0), max(-x, 0):width + min(-x, 0)]
    return out


def random_shifts(n, distance, rng):
    """(dy, dx) of ``n`` shifts by ``distance`` pixels up, down, left or right, drawn at random.

    Returns two (n,) int arrays.
    """
    steps = np.array([(-distance, 0), (distance, 0), (0, -distance), (0, distance)])
    chosen = steps[rng.integers(0, 4, n)]
    return chosen[:, 0], chosen[:, 1]


# --- does the digit predict the mask? ---

def binary_entropy(p):
    """Entropy in bits of a 0/1 variable that is 1 with probability ``p``; 0 at p = 0 or 1."""
    p = np.asarray(p, dtype=np.float64)
    out = np.zeros_like(p)
    inside = (p > 0) & (p < 1)
    q = p[inside]
    out[inside] = -(q * np.log2(q) + (1 - q) * np.log2(1 - q))
    return out


def prototype_masks(p_nonzero, threshold=0.5):
    """Positions that fire at least half the time: (..., C, P) probabilities -> bool."""
    return np.asarray(p_nonzero) >= threshold


def mask_agreement(masks, prototype):
    """Counts of each image's mask against a prototype, summed over images and positions.

    masks : (N, C, P) bool; prototype : (C, P) bool (the prediction).
    Returns a dict of (C,) int64 arrays: tp (both on), fp (prototype on, mask off), fn
    (prototype off, mask on), tn.
    """
    masks = np.asarray(masks, dtype=bool)
    predicted = np.asarray(prototype, dtype=bool)[None]             # (1, C, P)
    return {"tp": np.sum(masks & predicted, axis=(0, 2)),
            "fp": np.sum(~masks & predicted, axis=(0, 2)),
            "fn": np.sum(masks & ~predicted, axis=(0, 2)),
            "tn": np.sum(~masks & ~predicted, axis=(0, 2))}


def agreement_scores(counts):
    """Accuracy, precision and recall from :func:`mask_agreement` counts (any shape).

    Precision is NaN when the prototype is empty (no positive prediction), recall NaN when no
    mask has a nonzero position: both 0/0.
    """
    tp, fp, fn, tn = (np.asarray(counts[k], dtype=np.float64) for k in ("tp", "fp", "fn", "tn"))
    return {"accuracy": _safe_divide(tp + tn, tp + fp + fn + tn),
            "precision": _safe_divide(tp, tp + fp), "recall": _safe_divide(tp, tp + fn)}
