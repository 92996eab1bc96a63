"""The numba/GEMM layers against the naive loop references, over random shapes."""
import numpy as np
import pytest

from lenet_np import layers, reference

SHAPES = np.random.default_rng(7)


def random_conv_case(rng):
    n, c, f = rng.integers(1, 4), rng.integers(1, 4), rng.integers(1, 5)
    k = rng.integers(1, 5)
    stride, pad = rng.integers(1, 3), rng.integers(0, 3)
    h = rng.integers(max(1, k - 2 * pad), 12)
    w = rng.integers(max(1, k - 2 * pad), 12)
    x = rng.standard_normal((n, c, h, w))
    weight = rng.standard_normal((f, c, k, k))
    bias = rng.standard_normal(f)
    return x, weight, bias, int(stride), int(pad)


@pytest.mark.parametrize("case", range(25))
def test_conv_matches_naive(case):
    rng = np.random.default_rng(case)
    x, weight, bias, stride, pad = random_conv_case(rng)
    out, cache = layers.conv_forward(x, {"weight": weight, "bias": bias}, stride, pad)
    np.testing.assert_allclose(out, reference.conv_forward_naive(x, weight, bias, stride, pad),
                               rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    dx, grads = layers.conv_backward(dout, cache)
    ref_dx, ref_dw, ref_db = reference.conv_backward_naive(dout, x, weight, stride, pad)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads["weight"], ref_dw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads["bias"], ref_db, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", range(20))
def test_maxpool_matches_naive(case):
    rng = np.random.default_rng(100 + case)
    size, stride = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    shape = (rng.integers(1, 4), rng.integers(1, 4), rng.integers(size, 11),
             rng.integers(size, 11))
    # Few distinct values: ties are common, and both must pick the first maximum.
    x = rng.integers(0, 4, shape).astype(np.float32)
    out, cache = layers.maxpool_forward(x, size=size, stride=stride)
    np.testing.assert_array_equal(out, reference.maxpool_forward_naive(x, size, stride))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, _ = layers.maxpool_backward(dout, cache)
    np.testing.assert_allclose(dx, reference.maxpool_backward_naive(dout, x, size, stride),
                               rtol=1e-6, atol=1e-6)


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    x = rng.random((2, 1, 28, 28), dtype=np.float32)
    params = {"weight": rng.random((6, 1, 5, 5), dtype=np.float32),
              "bias": np.zeros(6, np.float32)}
    out, _ = layers.conv_forward(x, params)
    assert out.dtype == np.float32 and out.shape == (2, 6, 24, 24)
