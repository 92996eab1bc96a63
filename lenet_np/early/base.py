"""What every early-prediction scheme shares: the layer it works on, its interface, its record.

A scheme replaces one conv layer followed by a ReLU (and, for the pool-aware ones, a max-pool)
with its own computation of ``ReLU(conv(x))``. The interface is two calls:

- ``fit(model, spec, train)``: learn whatever the scheme needs from the training split
  (a :class:`TrainingData`); exact schemes and oracles learn nothing.
- ``run(layer_input) -> LayerRun``: compute the layer for a batch of the layer's inputs and
  say, per image, what that cost.

Everything before the layer comes from ``model.forward(x)``'s activations, and everything
after it from the layer functions of :mod:`lenet_np.layers` (:func:`forward_from`), so a
scheme is judged on the real network.
"""
from dataclasses import dataclass

import numpy as np

from .. import layers
from ..errors import LenetError
from ..flops import fp32_equivalent, network_macs
from .direct import term_order

MIN_BITS, MAX_BITS = 2, 16          # accepted widths of the low-bit copy


@dataclass(frozen=True)
class ConvSpec:
    """One conv layer of a model and the layers around it."""
    layer: str            # the conv layer, e.g. "conv2"
    input_name: str       # the activation it reads, e.g. "pool1"
    relu: str             # the ReLU after it, e.g. "relu2"
    pool: str             # the max-pool after the ReLU, or "" when there is none
    pool_size: int        # its window side and stride (0 without a pool)
    weight: np.ndarray    # (F, C, KH, KW) float32
    bias: np.ndarray      # (F,) float32
    input_shape: tuple    # (C, H, W) of one image's input
    output_shape: tuple   # (F, OH, OW) of one image's output

    @property
    def macs_per_output(self):
        """C*KH*KW: the MACs of one output computed in full."""
        return int(np.prod(self.weight.shape[1:]))

    @property
    def dense_macs(self):
        """MACs of the dense layer per image."""
        return self.macs_per_output * int(np.prod(self.output_shape))


def conv_spec(model, layer):
    """The :class:`ConvSpec` of ``layer``; a LenetError unless it is a conv layer whose
    output goes through a ReLU."""
    names = model.layer_names
    kinds = {name: kind for name, kind, _ in model.layers}
    shapes = {name: shape for name, _, shape in model.layers}
    if layer not in kinds:
        raise LenetError(f"unknown layer {layer!r}; the layers are {', '.join(names)}")
    at = names.index(layer)
    following = names[at + 1] if at + 1 < len(names) else None
    if kinds[layer] != "conv" or following is None or kinds[following] != "relu":
        raise LenetError(f"early prediction needs a conv layer followed by a ReLU; {layer!r} is "
                         f"a {kinds[layer]} layer followed by "
                         f"{repr(following) if following else 'nothing'}; the conv layers "
                         f"followed by a ReLU are "
                         f"{', '.join(n for n in names if _conv_then_relu(n, names, kinds))}")
    pool = names[at + 2] if at + 2 < len(names) and kinds[names[at + 2]] == "pool" else ""
    return ConvSpec(layer=layer, input_name=names[at - 1], relu=following, pool=pool,
                    pool_size=model.arch.pool if pool else 0,
                    weight=model.params[f"{layer}.weight"], bias=model.params[f"{layer}.bias"],
                    input_shape=tuple(shapes[names[at - 1]]), output_shape=tuple(shapes[layer]))


def _conv_then_relu(name, names, kinds):
    at = names.index(name)
    return kinds[name] == "conv" and at + 1 < len(names) and kinds[names[at + 1]] == "relu"


def check_tau(tau):
    """τ is a probability threshold: [0, 1]."""
    if not 0.0 <= tau <= 1.0:
        raise LenetError(f"tau must be within [0, 1] (--tau), got {tau:g}")
    return float(tau)


def check_bits(bits):
    """The low-bit copy's width k: an integer in 2..16."""
    if int(bits) != bits or not MIN_BITS <= bits <= MAX_BITS:
        raise LenetError(f"bits must be an integer within {MIN_BITS}..{MAX_BITS} (--bits, "
                         f"--exact-bits), got {bits:g}")
    return int(bits)


def check_choice(name, value, choices):
    """A scheme option that takes one of a few names (e.g. ``termination``)."""
    if value not in choices:
        raise LenetError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass
class TrainingData:
    """What schemes are fitted on: the training split seen at the layer."""
    layer_input: np.ndarray    # (N, C, H, W) float32, the layer's input
    zero: np.ndarray           # (N, F, OH, OW) bool, where the ReLU after the layer gives 0
    labels: np.ndarray         # (N,) digit labels


@dataclass
class LayerRun:
    """The outcome of one scheme on a batch: the layer's output and what it cost, per image.

    ``relu_out`` stands in for the ReLU's output: where the scheme computed an output it holds
    max(value, 0), elsewhere 0. A pool-aware scheme leaves 0 where an output could not be its
    window's maximum, so the max-pool after it gives the pool-aware result.
    """
    relu_out: np.ndarray                 # (N, F, OH, OW) float32
    macs: np.ndarray                     # (N,) int64, full-precision MACs of the layer
    comparisons: np.ndarray              # (N,) int64, termination tests and predictor argmaxes
    predictor_macs: np.ndarray = None    # (N,) int64, full-precision MACs of a predictor
    lowbit_macs: np.ndarray = None       # (N,) int64, low-bit MACs of a predictor
    bits: int = 0                        # their width
    skip_mask: np.ndarray = None         # (N, F, OH, OW) bool, outputs decided skipped upfront
    predictor_adds: np.ndarray = None    # (N,) int64, a predictor's additions (not MACs)

    def equivalent_macs(self):
        """(N,) float64: full-precision MACs plus the low-bit ones converted at bits/32."""
        total = self.macs.astype(np.float64)
        if self.predictor_macs is not None:
            total += self.predictor_macs
        if self.lowbit_macs is not None:
            total += fp32_equivalent(self.lowbit_macs.astype(np.float64), self.bits)
        return total


class Scheme:
    """Base of the schemes: ``fit`` on the training split, ``run`` on any batch.

    Subclasses set ``family`` (the module's scheme name), ``exact`` (predictions identical to
    the dense layer by construction), ``oracle`` (uses the dense output: not realisable),
    ``reference`` ("relu": its skip mask is judged against the ReLU's zeros; "pool": against
    the outputs the max-pool discards) and ``needs_pool``.
    """
    family = "scheme"
    exact = False
    oracle = False
    reference = "relu"
    needs_pool = False

    def __init__(self):
        self.spec = None

    @property
    def name(self):
        """The row label in tables: the family and its parameters."""
        return self.family

    @property
    def params(self):
        """The scheme's parameters: {"tau": ...} or {"bits": ...} or {}."""
        return {}

    def fit(self, model, spec, train=None):
        """Remember the layer; learn from ``train`` (a TrainingData) if the scheme needs to."""
        if self.needs_pool and not spec.pool:
            raise LenetError(f"{self.name} needs a max-pool after {spec.relu}, and there is none")
        self.spec = spec
        return self

    def run(self, layer_input):
        """ReLU(conv(layer_input)) as the scheme computes it. layer_input: (N, C, H, W)."""
        raise NotImplementedError


def forward_until(model, spec, x):
    """The layer's input for the network input ``x`` (N, 1, 28, 28), via the layer functions."""
    for name, kind, _ in model.layers[1:]:
        if name == spec.layer:
            return x
        x = _forward_layer(model, name, kind, x)
    raise LenetError(f"{spec.layer} is not a layer of the model")


def forward_from(model, spec, relu_out):
    """The logits (N, n_classes) from the ReLU's output onward, via the layer functions."""
    names = model.layer_names
    x = relu_out
    for name, kind, _ in model.layers[names.index(spec.relu) + 1:]:
        x = _forward_layer(model, name, kind, x)
    return x


def _forward_layer(model, name, kind, x):
    if kind == "conv":
        return layers.conv_forward(x, _params(model, name))[0]
    if kind == "dense":
        return layers.dense_forward(x, _params(model, name))[0]
    if kind == "relu":
        return layers.relu_forward(x)[0]
    if kind == "pool":
        return layers.maxpool_forward(x, size=model.arch.pool, stride=model.arch.pool)[0]
    if kind == "flatten":
        return layers.flatten_forward(x)[0]
    raise ValueError(f"unknown layer kind {kind!r}")


def _params(model, name):
    return {"weight": model.params[f"{name}.weight"], "bias": model.params[f"{name}.bias"]}


def guaranteed_input_bound(model, spec):
    """(C,) upper bound of each channel of the layer's input over every input in [0, 1].

    Walks the layers from the input: pixels <= 1; a conv output <= bias + the sum of its
    positive weights times its inputs' bounds (inputs are >= 0 after a ReLU and at the
    input); ReLU and max-pool keep the bound (ReLU floors it at 0). A bound of 0 means the
    channel is 0 for every possible input (a dead filter before).
    """
    bound = np.ones(model.arch.in_channels)
    for name, kind, _ in model.layers[1:]:
        if name == spec.layer:
            return bound.astype(np.float32)
        if kind == "conv":
            weight = model.params[f"{name}.weight"].astype(np.float64)
            bound = model.params[f"{name}.bias"] + np.einsum(
                "fcij,c->f", np.maximum(weight, 0), bound)
        elif kind == "relu":
            bound = np.maximum(bound, 0)
        elif kind != "pool":
            raise LenetError(f"no input bound through the {kind} layer {name}")
    raise LenetError(f"{spec.layer} is not a layer of the model")


def live_channels(model, spec):
    """(C,) bool: the input channels of the layer that are not provably 0 for every input."""
    return guaranteed_input_bound(model, spec) > 0


def fitted_term_order(model, spec, train=None, prune=True, slots="channel"):
    """The exact schemes' term order (:func:`.direct.term_order`, sorted) for ``spec``.

    ``prune``: leave out the terms of provably-zero input channels (:func:`live_channels`).
    With ``train``, terms are ordered by weight × the channel's mean input on the training
    split (the expected size of the term), else by weight alone.
    """
    scale = None if train is None else train.layer_input.mean(axis=(0, 2, 3))      # (C,)
    return term_order(spec.weight, *spec.input_shape[1:], sort=True, slots=slots,
                      live=live_channels(model, spec) if prune else None,
                      channel_scale=scale)


def network_dense_macs(model):
    """Dense MACs of the whole network per image (re-exported for the schemes' tables)."""
    return network_macs(model)
