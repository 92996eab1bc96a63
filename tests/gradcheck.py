"""Central-difference gradient checks in float64."""
import numpy as np


def numerical_gradient(f, x, dout, eps=1e-6):
    """d(sum(f(x) * dout))/dx by central differences, one element of ``x`` at a time.

    ``f`` must read ``x`` at call time (``x`` is perturbed in place and restored).
    """
    grad = np.zeros_like(x)
    flat, grad_flat = x.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + eps
        plus = np.sum(f() * dout)
        flat[i] = saved - eps
        minus = np.sum(f() * dout)
        flat[i] = saved
        grad_flat[i] = (plus - minus) / (2 * eps)
    return grad


def gradient_error(analytic, numeric, atol=1e-7):
    """Largest elementwise |a - n| / (atol + |n|).

    The floor ``atol`` is the rounding noise of a central difference with step 1e-6 on
    float64 sums of order 1, so entries near 0 are not judged by their relative error alone.
    """
    return np.max(np.abs(analytic - numeric) / (atol + np.abs(numeric)))


def assert_gradient(analytic, f, x, dout, tol=1e-5):
    """Central differences of ``f`` at ``x`` agree with ``analytic`` to ``tol`` (relative)."""
    numeric = numerical_gradient(f, x, dout)
    err = gradient_error(analytic, numeric)
    assert err < tol, f"relative error {err:.3e} ≥ {tol:.0e}"
