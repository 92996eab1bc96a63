"""SGD with momentum and weight decay, the optimizer that owns every parameter update.

The update is PyTorch's ``torch.optim.SGD`` with ``dampening=0``::

    velocity = momentum * velocity + (grad + weight_decay * param)
    param   -= lr * velocity

Weight decay applies to weights only, not to biases. The velocities are the optimizer's
state; they are saved in checkpoints so that a resumed run continues exactly.
"""
import math

import numpy as np


class SGD:
    def __init__(self, params, momentum=0.9, weight_decay=5e-4, velocity=None):
        self.params = params              # the model's dict, updated in place
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.velocity = velocity if velocity is not None else {
            name: np.zeros_like(value) for name, value in params.items()}

    def step(self, grads, lr):
        """Apply one update with learning rate ``lr`` from gradients keyed like ``params``."""
        for name, param in self.params.items():
            grad = grads[name]
            if self.weight_decay and name.endswith(".weight"):
                grad = grad + self.weight_decay * param
            velocity = self.velocity[name]
            velocity *= self.momentum
            velocity += grad
            param -= lr * velocity


def cosine_lr(base_lr, epoch, epochs):
    """Learning rate of ``epoch`` (0-based): cosine decay from ``base_lr`` towards 0."""
    return base_lr * 0.5 * (1.0 + math.cos(math.pi * epoch / epochs))
