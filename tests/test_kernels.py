"""The numba/GEMM layers against the naive loop references, over random shapes."""
import numpy as np
import pytest

from lenet_np import layers, reference
from lenet_np.kernels import add_bias_kernel

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


@pytest.mark.parametrize("shape", [(64, 1, 28, 28), (3, 2, 12, 12), (2, 6, 9, 7)])
def test_conv_fast_path_matches_naive(shape):
    """Stride 1 without padding, LeNet's case, takes the kernels' vectorised branch."""
    rng = np.random.default_rng(shape[0])
    x = rng.standard_normal((min(shape[0], 4),) + shape[1:])
    weight = rng.standard_normal((5, shape[1], 5, 5))
    bias = rng.standard_normal(5)
    out, cache = layers.conv_forward(x, {"weight": weight, "bias": bias})
    np.testing.assert_allclose(out, reference.conv_forward_naive(x, weight, bias),
                               rtol=1e-10, atol=1e-10)
    dout = rng.standard_normal(out.shape)
    dx, grads = layers.conv_backward(dout, cache)
    ref_dx, ref_dw, ref_db = reference.conv_backward_naive(dout, x, weight)
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


@pytest.mark.parametrize("shape", [(4, 6, 24, 24), (2, 3, 9, 7), (1, 2, 2, 5), (3, 1, 5, 4)])
def test_maxpool_2x2_fast_path_matches_naive(shape):
    """2×2 windows, stride 2 (the kernels' fast branch), odd sides included; few distinct
    values and many zeros (as after a ReLU), so ties are common."""
    rng = np.random.default_rng(sum(shape))
    x = np.maximum(rng.integers(-3, 3, shape), 0).astype(np.float32)
    out, cache = layers.maxpool_forward(x, size=2, stride=2)
    np.testing.assert_array_equal(out, reference.maxpool_forward_naive(x, 2, 2))
    dout = rng.standard_normal(out.shape).astype(np.float32)
    dx, _ = layers.maxpool_backward(dout, cache)
    np.testing.assert_array_equal(dx, reference.maxpool_backward_naive(dout, x, 2, 2))


@pytest.mark.parametrize("case", range(10))
def test_relu_matches_naive(case):
    rng = np.random.default_rng(200 + case)
    shape = tuple(rng.integers(1, 6, rng.integers(1, 5)))
    x = rng.integers(-2, 3, shape).astype(np.float64)       # exact zeros included
    x.reshape(-1)[0] = np.nan
    out, cache = layers.relu_forward(x)
    np.testing.assert_array_equal(out, reference.relu_forward_naive(x))
    np.testing.assert_array_equal(layers.relu_forward(x.T)[0], out.T)   # non-contiguous input
    dout = rng.standard_normal(shape)
    dx, grads = layers.relu_backward(dout, cache)
    assert grads == {}
    np.testing.assert_array_equal(dx, reference.relu_backward_naive(dout, out))
    # A non-contiguous upstream gradient (as a transposed view) gives the same result.
    dx_t, _ = layers.relu_backward(np.ascontiguousarray(dout.T).T, cache)
    np.testing.assert_array_equal(dx_t, dx)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_bias_matches_naive(dtype):
    rng = np.random.default_rng(9)
    for shape in [(1, 1, 1), (3, 4, 5), (64, 6, 576)]:
        out = rng.standard_normal(shape).astype(dtype)
        bias = rng.standard_normal(shape[1]).astype(dtype)
        expected = reference.add_bias_naive(out, bias)
        add_bias_kernel(out, bias)
        np.testing.assert_array_equal(out, expected)
