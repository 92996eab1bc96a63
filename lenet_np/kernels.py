"""numba kernels behind the layers: im2col/col2im and max-pool.

Every kernel is a module-level ``@njit`` function that takes arrays and scalars only and
writes into an output the caller allocated. Validation, allocation and reshaping live in the
Python wrappers of :mod:`lenet_np.layers`; the naive loop references these kernels are tested
against live in :mod:`lenet_np.reference`.

The njit options are decided here, once, for every kernel of the package (``JIT`` and
``JIT_PARALLEL``). Parallel kernels split work over the batch axis only, so each thread writes
its own images and the result does not depend on the thread count: the same seed gives
bit-identical weights.
"""
import numba
from numba import prange

# cache: compiled code is kept on disk, so a second run starts in well under a second.
# fastmath stays off: reassociating sums would break bit-identical reruns and the
# exact-equality tests against the naive references.
JIT = dict(cache=True, nogil=True, fastmath=False)
JIT_PARALLEL = dict(JIT, parallel=False)

njit = numba.njit(**JIT)
njit_parallel = numba.njit(**JIT_PARALLEL)


@njit_parallel
def im2col_kernel(x, kh, kw, stride, pad, cols):
    """Unfold the receptive fields of ``x`` into columns.

    x    : (N, C, H, W) input.
    cols : (C*kh*kw, N*OH*OW) output; row ``(c*kh + i)*kw + j`` holds input channel ``c``
           at kernel offset ``(i, j)``, column ``(n*OH + oh)*OW + ow`` the output position
           ``(oh, ow)`` of image ``n``. Positions in the zero padding are written as 0.
    """
    n_img, n_ch, height, width = x.shape
    out_h = (height + 2 * pad - kh) // stride + 1
    out_w = (width + 2 * pad - kw) // stride + 1
    for n in prange(n_img):
        for c in range(n_ch):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for oh in range(out_h):
                        y = oh * stride + i - pad
                        for ow in range(out_w):
                            xx = ow * stride + j - pad
                            if 0 <= y < height and 0 <= xx < width:
                                cols[row, (n * out_h + oh) * out_w + ow] = x[n, c, y, xx]
                            else:
                                cols[row, (n * out_h + oh) * out_w + ow] = 0.0


@njit_parallel
def col2im_kernel(cols, kh, kw, stride, pad, dx):
    """Fold columns back onto the input, adding overlapping contributions (im2col's adjoint).

    cols : (C*kh*kw, N*OH*OW), laid out as by :func:`im2col_kernel`.
    dx   : (N, C, H, W) output, overwritten.
    """
    n_img, n_ch, height, width = dx.shape
    out_h = (height + 2 * pad - kh) // stride + 1
    out_w = (width + 2 * pad - kw) // stride + 1
    for n in prange(n_img):
        dx[n] = 0.0
        for c in range(n_ch):
            for i in range(kh):
                for j in range(kw):
                    row = (c * kh + i) * kw + j
                    for oh in range(out_h):
                        y = oh * stride + i - pad
                        if y < 0 or y >= height:
                            continue
                        for ow in range(out_w):
                            xx = ow * stride + j - pad
                            if 0 <= xx < width:
                                dx[n, c, y, xx] += cols[row, (n * out_h + oh) * out_w + ow]


@njit_parallel
def maxpool_forward_kernel(x, size, stride, out, argmax):
    """Max over ``size``×``size`` windows.

    x      : (N, C, H, W) input.
    out    : (N, C, OH, OW) output, the window maxima.
    argmax : (N, C, OH, OW) int32 output, the flat index ``y*W + x`` of each maximum in its
             channel (the first one in row-major order on ties), kept for the backward pass.
    """
    n_img, n_ch, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for n in prange(n_img):
        for c in range(n_ch):
            plane = x[n, c]
            for oh in range(out_h):
                for ow in range(out_w):
                    y0 = oh * stride
                    x0 = ow * stride
                    best = plane[y0, x0]
                    best_at = y0 * width + x0
                    for i in range(size):
                        for j in range(size):
                            v = plane[y0 + i, x0 + j]
                            # Selects rather than a branch: which input wins is data-dependent
                            # and a mispredicted branch costs more than the select.
                            better = v > best
                            best = v if better else best
                            best_at = (y0 + i) * width + x0 + j if better else best_at
                    out[n, c, oh, ow] = best
                    argmax[n, c, oh, ow] = best_at


@njit_parallel
def maxpool_backward_kernel(dout, argmax, dx):
    """Route each window's gradient to the input that was its maximum.

    dout, argmax : (N, C, OH, OW).
    dx           : (N, C, H, W) output, overwritten; overlapping windows add up.
    """
    n_img, n_ch = dout.shape[0], dout.shape[1]
    out_h, out_w = dout.shape[2], dout.shape[3]
    width = dx.shape[3]
    for n in prange(n_img):
        dx[n] = 0.0
        for c in range(n_ch):
            for oh in range(out_h):
                for ow in range(out_w):
                    at = argmax[n, c, oh, ow]
                    dx[n, c, at // width, at % width] += dout[n, c, oh, ow]
