"""Early prediction: skip the conv work that the following ReLU and max-pool discard.

One module per scheme, all with the interface of :class:`.base.Scheme` (``fit`` on the
training split, ``run`` on any batch of the layer's input):

- :mod:`.oracle`: the ReLU and pool-aware oracles (not realisable, the bounds) and the
  dense baseline as a direct convolution;
- :mod:`.class_masks`: an early linear head predicts the digit; outputs with
  P(zero | digit) >= τ are skipped;
- :mod:`.exact`: SnaPEA's exact early termination on the sign;
- :mod:`.pool_exact`: exact termination against 0 and the window's running maximum;
- :mod:`.lowbit`: a k-bit copy of the layer predicts signs and window arg-maxes (SeerNet);
- :mod:`.lowbit_exact`: a k-bit copy with a guaranteed error bound per output rules out the
  outputs that cannot be their window's positive maximum (exact).

The realisable schemes leave out the terms of input channels that are provably 0 for every
input (:func:`.base.live_channels`), which keeps them exact; the oracles and ``dense`` keep
every term, so the shares of the oracles' savings stay comparable.

:mod:`.evaluate` measures them; :mod:`.kernels` holds their numba kernels and
:mod:`.reference` the naive references those are tested against.
"""
from .base import ConvSpec, LayerRun, Scheme, TrainingData, check_bits, check_tau, conv_spec
from .class_masks import ClassMasks
from .exact import SnapeaExact
from .lowbit import LowBit
from .lowbit_exact import LowBitExact
from .oracle import Dense, PoolOracle, ReluOracle
from .pool_exact import PoolExact

DEFAULT_TAUS = (0.5, 0.9, 0.99)
DEFAULT_BITS = (2, 3, 4)
DEFAULT_EXACT_BITS = (7, 8)        # widths of lowbit_exact in the report: the best two (README)


def standard_schemes(spec, taus=DEFAULT_TAUS, bits=DEFAULT_BITS, lowbit_snapea=False,
                     all_variants=False, exact_bits=DEFAULT_EXACT_BITS):
    """Every scheme the report and the benchmark compare, in table order.

    The pool-aware ones are left out when the layer has no max-pool after its ReLU; the
    low-bit schemes finished with SnaPEA's termination only with ``lowbit_snapea``. The exact
    schemes come with and without the static pruning of provably-zero input channels
    (``[no-prune]``), so both shares can be read; ``all_variants`` adds the pool-aware bound
    strategies without pruning and with the range bound, the early-exit kernels testing
    after every term (``chunk=1``) and ``lowbit_exact`` without termination (``[no-stop]``).
    ``exact_bits`` are the widths of ``lowbit_exact`` (pool-aware, so only with a max-pool).
    """
    taus = [check_tau(t) for t in taus]
    bits = [check_bits(k) for k in bits]
    exact_bits = [check_bits(k) for k in exact_bits]
    schemes = [Dense(), ReluOracle()]
    if spec.pool:
        schemes.append(PoolOracle())
    schemes += [SnapeaExact(), SnapeaExact(prune=False)]
    if all_variants:
        schemes.append(SnapeaExact(chunk=1))
    if spec.pool:
        schemes += [PoolExact(), PoolExact(prune=False)]
        if all_variants:
            schemes.append(PoolExact(chunk=1))
        schemes.append(PoolExact("field"))
        if all_variants:
            schemes += [PoolExact("field", prune=False), PoolExact("range")]
        for k in exact_bits:
            schemes.append(LowBitExact(k))
            if all_variants:
                schemes.append(LowBitExact(k, termination="none"))
    for tau in taus:
        schemes.append(ClassMasks(tau))
        if spec.pool:
            schemes.append(ClassMasks(tau, termination="pool"))
    for k in bits:
        schemes.append(LowBit(k))
        if lowbit_snapea:
            schemes.append(LowBit(k, termination="snapea"))
    return schemes


__all__ = ["ConvSpec", "LayerRun", "Scheme", "TrainingData", "conv_spec", "check_tau",
           "check_bits", "Dense", "ReluOracle", "PoolOracle", "SnapeaExact", "PoolExact",
           "ClassMasks", "LowBit", "LowBitExact", "standard_schemes", "DEFAULT_TAUS",
           "DEFAULT_BITS", "DEFAULT_EXACT_BITS"]
