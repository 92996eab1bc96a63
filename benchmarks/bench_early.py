"""Wall-clock time of the early-prediction schemes against dense, on the full test set.

    python benchmarks/bench_early.py [--layer conv2] [--rounds 2] [--n 10000] [--all]
                                     [--tau 0.9,0.99] [--bits 3,4] [--exact-bits 6,7,8]

By default a short list: the baselines, the oracles, the exact schemes with their
termination tests once per chunk of terms (the default) and after every term (``chunk=1``),
``class_masks tau=0.9``, ``lowbit k=3`` and ``lowbit_exact k=7``; ``--all`` times every variant
of the report (``--tau``/``--bits``/``--exact-bits`` sweeps, ``[no-prune]``, the pool-aware bound
strategies, lowbit+snapea, lowbit_exact without termination).

Every scheme and the dense baselines run on the same inputs in one invocation, in
interleaved rounds (dense, scheme 1, scheme 2, ..., dense, scheme 1, ...); each time is the
median over the rounds, so load from other users of the machine shifts every row alike.

- layer time: the scheme's ``run`` on the layer's input (predictor and bounds included);
  ``dense`` is the same direct-convolution kernel computing every output, the baseline of
  the layer speed-up; ``dense_gemm`` is the model's own layer (im2col + BLAS GEMM) + ReLU.
- network time: from the images to the logits, the layers before and after the scheme run
  with the layer functions of lenet_np.layers.
- ``speedup/mac_ratio``: the measured layer speed-up divided by the MAC ratio (dense MACs /
  the scheme's full-precision-equivalent MACs): 1 means the time fell as much as the count.
- ``gemm_speedup``: the layer speed-up against ``dense_gemm`` instead (below 1: slower than
  the model's own BLAS layer).

The last line is key=value pairs.
"""
import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from lenet_np import layers, load_model  # noqa: E402
from lenet_np.checkpoint import DEFAULT_MODEL_PATH  # noqa: E402
from lenet_np.data import load_split  # noqa: E402
from lenet_np.early import (ClassMasks, Dense, LowBit, LowBitExact, PoolExact,  # noqa: E402
                            PoolOracle, ReluOracle, SnapeaExact, conv_spec, standard_schemes)
from lenet_np.early.base import forward_from, forward_until  # noqa: E402
from lenet_np.early.evaluate import collect, evaluate, summary_rows, training_data  # noqa: E402
from lenet_np.report import text_table  # noqa: E402


def timed(function, *args):
    started = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - started, result


# The width of lowbit_exact with the largest saving on the committed model (README).
BEST_EXACT_BITS = 7


def short_list(spec):
    """The default schemes: baselines, oracles, each exact scheme at chunk 4 and 1, the exact
    low-bit intervals at their best width, one class mask, one low-bit copy."""
    schemes = [Dense(), ReluOracle()] + ([PoolOracle()] if spec.pool else [])
    schemes += [SnapeaExact(), SnapeaExact(chunk=1)]
    if spec.pool:
        schemes += [PoolExact(), PoolExact(chunk=1), LowBitExact(BEST_EXACT_BITS)]
    return schemes + [ClassMasks(0.9), LowBit(3)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH))
    parser.add_argument("--layer", default="conv2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--n", type=int, default=10000, help="test images")
    parser.add_argument("--fit-n", type=int, default=5000, help="training images for fitting")
    parser.add_argument("--all", action="store_true",
                        help="every scheme variant of the report, not the short list")
    parser.add_argument("--tau", default="0.9,0.99")
    parser.add_argument("--bits", default="3,4")
    parser.add_argument("--exact-bits", default="6,7,8")
    args = parser.parse_args(argv)
    model = load_model(args.model)
    spec = conv_spec(model, args.layer)
    test = load_split("test")
    index = np.arange(min(args.n, len(test.labels)))
    images = test.inputs(index)
    train = training_data(collect(model, spec, load_split("train"), np.arange(args.fit_n),
                                  keep_relu=False))
    reference = collect(model, spec, test, index)
    schemes = (standard_schemes(spec, [float(t) for t in args.tau.split(",")],
                                [int(k) for k in args.bits.split(",")], lowbit_snapea=True,
                                all_variants=True,
                                exact_bits=[int(k) for k in args.exact_bits.split(",")])
               if args.all else short_list(spec))
    for scheme in schemes:
        scheme.fit(model, spec, train)
    rows = {r["scheme"]: r for r in summary_rows(
        model, [evaluate(model, s, reference) for s in schemes], reference) if r["digit"] == "all"}

    layer_input = forward_until(model, spec, images)
    conv_params = {"weight": spec.weight, "bias": spec.bias}

    def gemm_layer(x):
        return layers.relu_forward(layers.conv_forward(x, conv_params)[0])[0]

    def network(run_layer):
        return forward_from(model, spec, run_layer(forward_until(model, spec, images)))

    candidates = [("dense_gemm", gemm_layer)] + [(s.name, lambda x, s=s: s.run(x).relu_out)
                                                 for s in schemes]
    for _, run_layer in candidates:                       # compile and warm caches
        run_layer(layer_input[:8])
    layer_times = {name: [] for name, _ in candidates}
    network_times = {name: [] for name, _ in candidates}
    for _ in range(args.rounds):
        for name, run_layer in candidates:
            layer_times[name].append(timed(run_layer, layer_input)[0])
            network_times[name].append(timed(network, run_layer)[0])
    median = {name: statistics.median(t) for name, t in layer_times.items()}
    net_median = {name: statistics.median(t) for name, t in network_times.items()}

    table = []
    for name, _ in candidates:
        row = rows.get(name, rows["dense"])
        macs = row["layer_macs_equiv"] if name != "dense_gemm" else spec.dense_macs
        mac_ratio = spec.dense_macs / macs if macs else float("inf")
        speedup = median["dense"] / median[name]
        table.append({"scheme": name, "layer_s": median[name],
                      "img_s": len(index) / median[name], "layer_speedup": speedup,
                      "gemm_speedup": median["dense_gemm"] / median[name],
                      "network_speedup": net_median["dense"] / net_median[name],
                      "layer_macs": macs, "mac_ratio": mac_ratio,
                      "speedup/mac_ratio": speedup / mac_ratio,
                      "accuracy": row["accuracy"] if name != "dense_gemm" else rows["dense"]["accuracy"],
                      "changed": row["changed_predictions"] if name != "dense_gemm" else 0.0})
    formats = {"layer_s": ".3f", "img_s": ",.0f", "layer_speedup": ".2f", "gemm_speedup": ".2f",
               "network_speedup": ".2f", "layer_macs": ",.0f", "mac_ratio": ".2f",
               "speedup/mac_ratio": ".2f", "accuracy": ".2%", "changed": ".2%"}
    print(f"{spec.layer} on {len(index)} test images, {args.rounds} interleaved rounds, medians; "
          f"speed-ups against the direct dense kernel ('dense')")
    print(text_table(["scheme", *formats], table, formats))
    by_name = {r["scheme"]: r for r in table}
    keys = {"images": len(index), "dense_s": median["dense"],
            "dense_gemm_s": median["dense_gemm"]}
    for name in ("snapea_exact", "snapea_exact[chunk=1]", "pool_exact", "pool_exact[chunk=1]",
                 f"lowbit_exact k={BEST_EXACT_BITS}", "oracle_pool", "oracle_relu"):
        if name in by_name:
            key = name.replace("[chunk=1]", "_chunk1").replace(" k=", "_k")
            keys[f"{key}_speedup"] = by_name[name]["layer_speedup"]
            keys[f"{key}_gemm_speedup"] = by_name[name]["gemm_speedup"]
            keys[f"{key}_mac_ratio"] = by_name[name]["mac_ratio"]
    best = max((r for r in table if r["scheme"] not in ("dense", "dense_gemm")),
               key=lambda r: r["layer_speedup"])
    keys["best"] = best["scheme"].replace(" ", "_")
    keys["best_speedup"] = best["layer_speedup"]
    keys["best_gemm_speedup"] = best["gemm_speedup"]
    keys["best_mac_ratio"] = best["mac_ratio"]
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                   for k, v in keys.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
