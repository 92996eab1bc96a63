"""Naive loop references for the fast layers, written for reading, not for speed.

Each function computes the textbook definition with explicit Python loops; the tests compare
the numba/GEMM layers of :mod:`lenet_np.layers` against them over random shapes.
"""
import numpy as np


def conv_forward_naive(x, weight, bias, stride=1, pad=0):
    """Direct cross-correlation. x (N, C, H, W), weight (F, C, KH, KW), bias (F,) -> (N, F, OH, OW)."""
    n_img, _, height, width = x.shape
    n_filt, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = (height + 2 * pad - kh) // stride + 1
    out_w = (width + 2 * pad - kw) // stride + 1
    out = np.zeros((n_img, n_filt, out_h, out_w), dtype=np.result_type(x, weight))
    for n in range(n_img):
        for f in range(n_filt):
            for oh in range(out_h):
                for ow in range(out_w):
                    patch = xp[n, :, oh * stride:oh * stride + kh, ow * stride:ow * stride + kw]
                    out[n, f, oh, ow] = np.sum(patch * weight[f]) + bias[f]
    return out


def conv_backward_naive(dout, x, weight, stride=1, pad=0):
    """Gradients of :func:`conv_forward_naive`: returns (dx, dweight, dbias)."""
    _, _, height, width = x.shape
    _, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp = np.zeros_like(xp)
    dweight = np.zeros_like(weight)
    n_img, n_filt, out_h, out_w = dout.shape
    for n in range(n_img):
        for f in range(n_filt):
            for oh in range(out_h):
                for ow in range(out_w):
                    g = dout[n, f, oh, ow]
                    rows = slice(oh * stride, oh * stride + kh)
                    cols = slice(ow * stride, ow * stride + kw)
                    dweight[f] += g * xp[n, :, rows, cols]
                    dxp[n, :, rows, cols] += g * weight[f]
    dbias = dout.sum(axis=(0, 2, 3))
    return dxp[:, :, pad:pad + height, pad:pad + width], dweight, dbias


def add_bias_naive(out, bias):
    """out (N, F, M) plus bias (F,) on every row of every image, as a new array."""
    result = out.copy()
    for n in range(out.shape[0]):
        for f in range(out.shape[1]):
            result[n, f] = out[n, f] + bias[f]
    return result


def maxpool_forward_naive(x, size=2, stride=2):
    """Window maxima. x (N, C, H, W) -> (N, C, OH, OW)."""
    n_img, n_ch, height, width = x.shape
    out_h = (height - size) // stride + 1
    out_w = (width - size) // stride + 1
    out = np.empty((n_img, n_ch, out_h, out_w), dtype=x.dtype)
    for oh in range(out_h):
        for ow in range(out_w):
            window = x[:, :, oh * stride:oh * stride + size, ow * stride:ow * stride + size]
            out[:, :, oh, ow] = window.max(axis=(2, 3))
    return out


def maxpool_backward_naive(dout, x, size=2, stride=2):
    """Gradient of :func:`maxpool_forward_naive`; a tie sends the gradient to the first maximum."""
    dx = np.zeros_like(x)
    n_img, n_ch, out_h, out_w = dout.shape
    for n in range(n_img):
        for c in range(n_ch):
            for oh in range(out_h):
                for ow in range(out_w):
                    window = x[n, c, oh * stride:oh * stride + size, ow * stride:ow * stride + size]
                    i, j = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, c, oh * stride + i, ow * stride + j] += dout[n, c, oh, ow]
    return dx


def relu_forward_naive(x):
    """max(x, 0) element by element; a NaN stays NaN."""
    out = x.copy()
    flat = out.reshape(-1)
    for k in range(flat.size):
        if flat[k] <= 0:
            flat[k] = 0
    return out


def relu_backward_naive(dout, out):
    """Gradient of ReLU from its output: dout where the output is positive, else 0."""
    dx = np.zeros_like(dout)
    flat_dx, flat_dout, flat_out = dx.reshape(-1), dout.reshape(-1), out.reshape(-1)
    for k in range(flat_out.size):
        if flat_out[k] > 0:
            flat_dx[k] = flat_dout[k]
    return dx
