"""Class-conditional masks, the study's hypothesis: outputs that are zero for most images of
one digit are skipped when an early head predicts that digit.

Fitting, on the training split:

1. the early head, a linear classifier on the layer's input flattened (C*H*W features),
   fitted by ridge-regularised least squares on one-hot labels (closed form, deterministic);
2. for each digit d the head predicts, P(zero | d): the share of the training images the head
   assigns to d whose ReLU output is 0, per output position (F, OH, OW).

Running: the head predicts the digit (C*H*W*10 MACs, counted as the predictor's, and 9
comparisons for the arg-max); the outputs with P(zero | predicted digit) >= τ are set to 0
without computing them; the others are computed in full (but for the terms of provably-zero
input channels, which add exactly 0), or with the exact pool-aware termination of
:mod:`.pool_exact` (``termination="pool"``), which changes nothing more.
"""
import numpy as np

from ..errors import LenetError
from .base import LayerRun, Scheme, check_choice, check_tau, fitted_term_order
from .direct import conv_relu_masked
from .pool_exact import PoolExact

TERMINATIONS = ("none", "pool")
RIDGE = 1e-3          # ridge strength, relative to the mean diagonal of the Gram matrix


def fit_linear_head(features, labels, n_classes=10):
    """Least-squares linear classifier: features (N, D), labels (N,) -> weight (D, K), bias (K,).

    Solves (XᵀX + λ I) W = Xᵀ Y in float64 with X = [features, 1] and Y one-hot; λ is
    ``RIDGE`` times the mean diagonal of XᵀX, which keeps the solve well posed when some
    features are always 0 (a dead channel).
    """
    x = np.hstack([features.astype(np.float64), np.ones((len(features), 1))])   # (N, D+1)
    targets = np.eye(n_classes)[labels]                                        # (N, K)
    gram = x.T @ x
    gram += RIDGE * np.trace(gram) / len(gram) * np.eye(len(gram))
    solution = np.linalg.solve(gram, x.T @ targets)                            # (D+1, K)
    return solution[:-1].astype(np.float32), solution[-1].astype(np.float32)


class ClassMasks(Scheme):
    """Skip the outputs likely zero for the digit an early linear head predicts."""
    family = "class_masks"
    reference = "relu"

    def __init__(self, tau, termination="none"):
        super().__init__()
        self.tau = check_tau(tau)
        self.termination = check_choice("termination", termination, TERMINATIONS)
        self.needs_pool = termination == "pool"

    @property
    def name(self):
        suffix = "+pool_exact" if self.termination == "pool" else ""
        return f"{self.family}{suffix} tau={self.tau:g}"

    @property
    def params(self):
        return {"tau": self.tau}

    def fit(self, model, spec, train=None):
        if train is None:
            raise LenetError("class masks must be fitted on the training split")
        super().fit(model, spec, train)
        n_classes = model.arch.n_classes
        features = train.layer_input.reshape(len(train.layer_input), -1)   # (N, C*H*W)
        self.head_weight, self.head_bias = fit_linear_head(features, train.labels, n_classes)
        predicted = self.predict_digit(train.layer_input)
        self.head_train_accuracy = float(np.mean(predicted == train.labels))
        # P(zero | predicted digit) per output; a digit never predicted skips nothing.
        self.zero_probability = np.zeros((n_classes, *spec.output_shape))
        for digit in range(n_classes):
            chosen = predicted == digit
            if chosen.any():
                self.zero_probability[digit] = train.zero[chosen].mean(axis=0)
        self.skip_table = self.zero_probability >= self.tau                # (K, F, OH, OW)
        for digit in range(n_classes):
            if not np.any(predicted == digit):
                self.skip_table[digit] = False
        # Every term of the computed outputs but those of provably-zero channels (exact).
        self.order = fitted_term_order(model, spec, train)
        if self.termination == "pool":
            self.pool_exact = PoolExact().fit(model, spec, train)
        return self

    def predict_digit(self, layer_input):
        """The head's digit for each image: layer_input (N, C, H, W) -> (N,) int."""
        logits = layer_input.reshape(len(layer_input), -1) @ self.head_weight + self.head_bias
        return logits.argmax(axis=1)

    def run(self, layer_input):
        n_img = len(layer_input)
        skip = self.skip_table[self.predict_digit(layer_input)]           # (N, F, OH, OW)
        head_macs = np.full(n_img, self.head_weight.size, np.int64)
        head_comparisons = self.head_weight.shape[1] - 1
        if self.termination == "pool":
            run = self.pool_exact.run(layer_input, compute_mask=~skip)
            # The window strategy has no predictor of its own (predictor_macs None).
            bound_macs = 0 if run.predictor_macs is None else run.predictor_macs
            run.predictor_macs = bound_macs + head_macs
            run.comparisons = run.comparisons + head_comparisons
        else:
            out, macs = conv_relu_masked(layer_input, self.order, self.spec.bias,
                                         self.spec.output_shape, ~skip)
            run = LayerRun(relu_out=out, macs=macs,
                           comparisons=np.full(n_img, head_comparisons, np.int64),
                           predictor_macs=head_macs)
        run.skip_mask = skip
        return run
