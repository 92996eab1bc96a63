"""LeNet as a sequence of named layers, with every intermediate kept by name.

The default architecture is the study's (../shared/docs/study.md)::

    input (N,1,28,28) → conv1 6@5×5 (N,6,24,24) → relu1 → pool1 2×2 (N,6,12,12)
      → conv2 18@5×5 (N,18,8,8) → relu2 → pool2 2×2 (N,18,4,4) → flatten (N,288)
      → fc1 (N,120) → relu3 → fc2 (N,84) → relu4 → fc3 (N,10)

The layer names are the vocabulary of the whole project: ``model.forward(x)`` returns the
logits and ``acts``, a dict from each name (``input`` first) to its array, and the analysis
reads that record instead of re-running any layer.
"""
from dataclasses import asdict, dataclass

import numpy as np

from . import layers


@dataclass(frozen=True)
class Architecture:
    """Widths of a LeNet; conv kernels 5×5, stride 1, no padding; pools 2×2, stride 2."""
    conv1: int = 6                 # filters of conv1 (classic LeNet-5)
    conv2: int = 18                # filters of conv2 (the study's 18)
    fc: tuple = (120, 84)          # hidden dense widths; a final dense layer maps to the classes
    kernel: int = 5                # conv kernel side
    pool: int = 2                  # max-pool window side and stride
    in_channels: int = 1           # grey-scale input
    image_size: int = 28           # input side
    n_classes: int = 10            # outputs of the last dense layer

    def to_dict(self):
        d = asdict(self)
        d["fc"] = list(self.fc)
        return d

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        d["fc"] = tuple(d["fc"])
        return cls(**d)

    def spatial_sizes(self):
        """Sides of the conv1, pool1, conv2 and pool2 maps."""
        conv1 = self.image_size - self.kernel + 1
        pool1 = conv1 // self.pool
        conv2 = pool1 - self.kernel + 1
        pool2 = conv2 // self.pool
        return conv1, pool1, conv2, pool2

    def layer_table(self):
        """[(name, kind, shape of one image's output)] in forward order, ``input`` first."""
        c1, p1, c2, p2 = self.spatial_sizes()
        table = [("input", "input", (self.in_channels, self.image_size, self.image_size)),
                 ("conv1", "conv", (self.conv1, c1, c1)),
                 ("relu1", "relu", (self.conv1, c1, c1)),
                 ("pool1", "pool", (self.conv1, p1, p1)),
                 ("conv2", "conv", (self.conv2, c2, c2)),
                 ("relu2", "relu", (self.conv2, c2, c2)),
                 ("pool2", "pool", (self.conv2, p2, p2)),
                 ("flatten", "flatten", (self.conv2 * p2 * p2,))]
        widths = list(self.fc) + [self.n_classes]
        for i, width in enumerate(widths, start=1):
            table.append((f"fc{i}", "dense", (width,)))
            if i < len(widths):                       # no ReLU after the logits
                table.append((f"relu{i + 2}", "relu", (width,)))
        return table

    def param_shapes(self):
        """PyTorch state_dict names and layouts of every parameter."""
        shapes = {"conv1.weight": (self.conv1, self.in_channels, self.kernel, self.kernel),
                  "conv1.bias": (self.conv1,),
                  "conv2.weight": (self.conv2, self.conv1, self.kernel, self.kernel),
                  "conv2.bias": (self.conv2,)}
        p2 = self.spatial_sizes()[3]
        fan_in = self.conv2 * p2 * p2
        for i, width in enumerate(list(self.fc) + [self.n_classes], start=1):
            shapes[f"fc{i}.weight"] = (width, fan_in)
            shapes[f"fc{i}.bias"] = (width,)
            fan_in = width
        return shapes

    def validate(self):
        """Raise ValueError when a width or size cannot make a network."""
        widths = [self.conv1, self.conv2, *self.fc, self.kernel, self.pool, self.in_channels,
                  self.n_classes]
        if any(int(w) != w or w < 1 for w in widths):
            raise ValueError(f"every width must be a positive integer, got {self.to_dict()}")
        if self.spatial_sizes()[3] < 1:
            raise ValueError(f"a {self.image_size}×{self.image_size} input is too small for "
                             f"two {self.kernel}×{self.kernel} convolutions and pools")


# kind -> (forward, backward); conv and pool take their geometry from the architecture.
_BACKWARD = {"conv": layers.conv_backward, "relu": layers.relu_backward,
             "pool": layers.maxpool_backward, "flatten": layers.flatten_backward,
             "dense": layers.dense_backward}


class LeNet:
    """A LeNet: its :class:`Architecture` and its parameters under PyTorch state_dict names.

    The model holds no optimizer state and no activations; ``forward`` and ``backward`` are
    functions of their arguments and of ``params``.
    """

    def __init__(self, arch, params):
        self.arch = arch
        self.layers = arch.layer_table()
        expected = arch.param_shapes()
        if set(params) != set(expected):
            raise ValueError(f"parameters {sorted(params)} do not match {sorted(expected)}")
        for name, shape in expected.items():
            if tuple(params[name].shape) != shape:
                raise ValueError(f"{name} has shape {params[name].shape}, expected {shape}")
        self.params = params

    @classmethod
    def initialize(cls, arch=Architecture(), seed=0, dtype=np.float32):
        """He-normal weights (std sqrt(2 / fan_in), suited to ReLU) and zero biases."""
        arch.validate()
        rng = np.random.default_rng(seed)
        params = {}
        for name, shape in arch.param_shapes().items():
            if name.endswith(".bias"):
                params[name] = np.zeros(shape, dtype=dtype)
            else:
                fan_in = int(np.prod(shape[1:]))
                params[name] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)
        return cls(arch, params)

    @property
    def layer_names(self):
        return [name for name, _, _ in self.layers]

    def astype(self, dtype):
        """A copy of the model with parameters cast to ``dtype`` (float64 for gradient checks)."""
        return LeNet(self.arch, {k: v.astype(dtype) for k, v in self.params.items()})

    def _layer_params(self, name):
        return {"weight": self.params[f"{name}.weight"], "bias": self.params[f"{name}.bias"]}

    def _forward_layer(self, name, kind, x):
        if kind == "conv":
            return layers.conv_forward(x, self._layer_params(name))
        if kind == "dense":
            return layers.dense_forward(x, self._layer_params(name))
        if kind == "relu":
            return layers.relu_forward(x)
        if kind == "pool":
            return layers.maxpool_forward(x, size=self.arch.pool, stride=self.arch.pool)
        if kind == "flatten":
            return layers.flatten_forward(x)
        raise ValueError(f"unknown layer kind {kind!r}")

    def forward(self, x, keep_caches=False):
        """Run the network.

        x: (N, C, H, W) pixel/255 in the parameters' dtype.
        Returns ``(logits, acts)``: logits (N, n_classes) and ``acts``, a dict from every layer
        name in forward order (``input``, ``conv1``, ``relu1``, …) to its (N, …) output. With
        ``keep_caches`` a third item, the per-layer caches for :meth:`backward`, is returned.
        """
        expected = self.layers[0][2]
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"input must have shape (N, {', '.join(map(str, expected))}), "
                             f"got {x.shape}")
        acts = {"input": x}
        caches = {}
        for name, kind, _ in self.layers[1:]:
            x, caches[name] = self._forward_layer(name, kind, x)
            acts[name] = x
        if keep_caches:
            return x, acts, caches
        return x, acts

    def backward(self, dlogits, caches):
        """Gradients of every parameter, keyed by state_dict name, from d(loss)/d(logits)."""
        grads = {}
        dout = dlogits
        first = self.layers[1][0]
        for name, kind, _ in reversed(self.layers[1:]):
            if kind in ("conv", "dense"):
                dout, layer_grads = _BACKWARD[kind](dout, caches[name], need_dx=name != first)
                grads[f"{name}.weight"] = layer_grads["weight"]
                grads[f"{name}.bias"] = layer_grads["bias"]
            else:
                dout, _ = _BACKWARD[kind](dout, caches[name])
        return grads

    def loss_and_grads(self, x, labels):
        """Mean softmax cross-entropy on a batch, its parameter gradients and the logits."""
        logits, _, caches = self.forward(x, keep_caches=True)
        loss, dlogits = layers.softmax_cross_entropy(logits, labels)
        return loss, self.backward(dlogits, caches), logits

    def predict_logits(self, images, batch_size=1000):
        """Logits for (N, C, H, W) images, computed in batches so memory stays bounded."""
        out = [self.forward(images[i:i + batch_size])[0]
               for i in range(0, len(images), batch_size)]
        return np.concatenate(out) if out else np.empty((0, self.arch.n_classes))

    def accuracy(self, images, labels, batch_size=1000):
        """Share of images whose arg-max logit is their label."""
        return float(np.mean(self.predict_logits(images, batch_size).argmax(axis=1) == labels))
