"""Every layer's backward against float64 central differences, and the whole model's."""
import numpy as np
import pytest

from lenet_np import layers
from lenet_np.model import Architecture, LeNet
from tests.gradcheck import assert_gradient, numerical_gradient, gradient_error

rng = np.random.default_rng(1234)


@pytest.mark.parametrize("stride,pad", [(1, 0), (2, 1), (1, 2)])
def test_conv_gradients(stride, pad):
    x = rng.standard_normal((2, 3, 7, 6))
    params = {"weight": rng.standard_normal((4, 3, 3, 3)), "bias": rng.standard_normal(4)}
    out, cache = layers.conv_forward(x, params, stride, pad)
    dout = rng.standard_normal(out.shape)
    dx, grads = layers.conv_backward(dout, cache)

    def f():
        return layers.conv_forward(x, params, stride, pad)[0]
    assert_gradient(dx, f, x, dout)
    assert_gradient(grads["weight"], f, params["weight"], dout)
    assert_gradient(grads["bias"], f, params["bias"], dout)


def test_relu_gradient():
    # Keep values away from the kink at 0, where central differences straddle it.
    x = rng.standard_normal((3, 4, 5))
    x[np.abs(x) < 0.01] = 0.5
    out, cache = layers.relu_forward(x)
    dout = rng.standard_normal(out.shape)
    dx, grads = layers.relu_backward(dout, cache)
    assert grads == {}
    assert_gradient(dx, lambda: layers.relu_forward(x)[0], x, dout)


@pytest.mark.parametrize("size,stride", [(2, 2), (3, 2), (2, 1)])
def test_maxpool_gradient(size, stride):
    # Distinct values, so no window has a tie that a finite step could flip.
    x = rng.permutation(2 * 3 * 8 * 7).reshape(2, 3, 8, 7).astype(np.float64) / 10
    out, cache = layers.maxpool_forward(x, size=size, stride=stride)
    dout = rng.standard_normal(out.shape)
    dx, _ = layers.maxpool_backward(dout, cache)
    assert_gradient(dx, lambda: layers.maxpool_forward(x, size=size, stride=stride)[0], x, dout)


def test_flatten_gradient_and_order():
    x = rng.standard_normal((2, 3, 4, 5))
    out, cache = layers.flatten_forward(x)
    assert out.shape == (2, 60)
    assert out[1, 1 * 20 + 2 * 5 + 3] == x[1, 1, 2, 3]          # C, H, W order
    dout = rng.standard_normal(out.shape)
    dx, _ = layers.flatten_backward(dout, cache)
    assert_gradient(dx, lambda: layers.flatten_forward(x)[0], x, dout)


def test_dense_gradients():
    x = rng.standard_normal((4, 7))
    params = {"weight": rng.standard_normal((5, 7)), "bias": rng.standard_normal(5)}
    out, cache = layers.dense_forward(x, params)
    np.testing.assert_allclose(out, x @ params["weight"].T + params["bias"])
    dout = rng.standard_normal(out.shape)
    dx, grads = layers.dense_backward(dout, cache)

    def f():
        return layers.dense_forward(x, params)[0]
    assert_gradient(dx, f, x, dout)
    assert_gradient(grads["weight"], f, params["weight"], dout)
    assert_gradient(grads["bias"], f, params["bias"], dout)


def test_softmax_cross_entropy_gradient():
    logits = rng.standard_normal((6, 10))
    labels = rng.integers(0, 10, 6)
    loss, dlogits = layers.softmax_cross_entropy(logits, labels)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(6), labels])))
    numeric = numerical_gradient(lambda: np.array(layers.softmax_cross_entropy(logits, labels)[0]),
                                 logits, np.array(1.0))
    assert gradient_error(dlogits, numeric) < 1e-6


def test_gradient_check_catches_a_wrong_gradient():
    """The checker must fail when one entry of the analytic gradient is 1% off."""
    x = rng.standard_normal((2, 2, 6, 6))
    params = {"weight": rng.standard_normal((3, 2, 3, 3)), "bias": rng.standard_normal(3)}
    out, cache = layers.conv_forward(x, params)
    dout = rng.standard_normal(out.shape)
    _, grads = layers.conv_backward(dout, cache)
    wrong = grads["weight"].copy()
    wrong[0, 0, 0, 0] *= 1.01
    with pytest.raises(AssertionError, match="relative error"):
        assert_gradient(wrong, lambda: layers.conv_forward(x, params)[0], params["weight"], dout)


def test_whole_model_gradients():
    """Every parameter of a small float64 LeNet against central differences of the loss."""
    model = LeNet.initialize(Architecture(conv1=2, conv2=3, fc=(7, 5)), seed=3).astype(np.float64)
    for value in model.params.values():          # non-zero biases exercise their gradients
        value += 0.01 * rng.standard_normal(value.shape)
    x = rng.random((3, 1, 28, 28))
    labels = np.array([1, 4, 7])
    _, grads, _ = model.loss_and_grads(x, labels)

    def loss():
        logits = model.forward(x)[0]
        return np.array(layers.softmax_cross_entropy(logits, labels)[0])
    for name, param in model.params.items():
        if param.size > 200:                     # sample large tensors: check a random subset
            idx = rng.choice(param.size, 60, replace=False)
            flat = param.reshape(-1)
            for i in idx:
                saved = flat[i]
                flat[i] = saved + 1e-6
                plus = loss()
                flat[i] = saved - 1e-6
                minus = loss()
                flat[i] = saved
                numeric = (plus - minus) / 2e-6
                analytic = grads[name].reshape(-1)[i]
                assert abs(numeric - analytic) <= 1e-6 + 1e-5 * abs(numeric), (name, i)
        else:
            numeric = numerical_gradient(loss, param, np.array(1.0))
            assert gradient_error(grads[name], numeric) < 1e-5, name
