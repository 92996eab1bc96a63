"""Exact operation counts of the dense network, per image: ``python -m lenet_np.flops``.

What is counted, per image and per layer:

- ``macs``: multiply-accumulates of a conv or dense layer (one multiply and one add each);
  a conv output of a ``C``×``KH``×``KW`` kernel costs ``C*KH*KW`` MACs.
- ``bias_adds``: one add per output of a conv or dense layer, apart from the MACs.
- ``comparisons``: one per ReLU input (``x > 0``), ``size*size - 1`` per max-pool output.
- ``flops`` = 2 × ``macs`` + ``bias_adds``: the arithmetic alone; comparisons stay apart.

The early-prediction schemes (:mod:`lenet_np.early`) report the same quantities for what
they really compute. Low-bit MACs (a ``k``-bit quantised copy of a layer) are reported apart
with their bit width and converted to full-precision equivalents at ``k / 32`` of a float32
MAC (:func:`fp32_equivalent`): the cost model of bit-serial hardware, whose time is linear in
the operand width. It is the conservative one of the usual models (a parallel multiplier's
area and energy grow about as ``k²``); the low-bit MACs themselves are always reported too.
"""
import sys

from .checkpoint import DEFAULT_MODEL_PATH, load_checkpoint
from .errors import CliParser, run_cli
from .report import text_table

FULL_PRECISION_BITS = 32           # float32: the width of every MAC of the dense network
COLUMNS = ["layer", "kind", "output", "macs", "bias_adds", "flops", "comparisons"]


def fp32_equivalent(lowbit_macs, bits):
    """Full-precision-equivalent MACs of ``lowbit_macs`` MACs at ``bits`` bits: × bits / 32."""
    return lowbit_macs * bits / FULL_PRECISION_BITS


def layer_costs(model):
    """Dense per-image counts of every layer of ``model`` (a LeNet), in forward order.

    Returns a list of dicts with the keys of ``COLUMNS``; ``output`` is the per-image output
    shape written like ``18×8×8``.
    """
    rows = []
    for name, kind, shape in model.layers:
        outputs = 1
        for side in shape:
            outputs *= side
        macs = bias_adds = comparisons = 0
        if kind == "conv":
            _, in_ch, kh, kw = model.params[f"{name}.weight"].shape
            macs = outputs * in_ch * kh * kw
            bias_adds = outputs
        elif kind == "dense":
            macs = outputs * model.params[f"{name}.weight"].shape[1]
            bias_adds = outputs
        elif kind == "relu":
            comparisons = outputs
        elif kind == "pool":
            comparisons = outputs * (model.arch.pool ** 2 - 1)
        rows.append({"layer": name, "kind": kind, "output": "×".join(map(str, shape)),
                     "macs": macs, "bias_adds": bias_adds, "flops": 2 * macs + bias_adds,
                     "comparisons": comparisons})
    return rows


def network_macs(model):
    """Dense MACs of one image through the whole network."""
    return sum(row["macs"] for row in layer_costs(model))


def conv_macs_per_output(model, layer):
    """MACs of one output of the conv layer ``layer``: ``C*KH*KW``."""
    _, in_ch, kh, kw = model.params[f"{layer}.weight"].shape
    return in_ch * kh * kw


def cost_table(model):
    """The per-layer rows followed by a ``total`` row."""
    rows = layer_costs(model)
    total = {"layer": "total", "kind": "", "output": ""}
    for key in ("macs", "bias_adds", "flops", "comparisons"):
        total[key] = sum(row[key] for row in rows)
    return rows + [total]


def main(argv=None):
    parser = CliParser(prog="python -m lenet_np.flops",
                                     description="Dense per-image MACs, FLOPs, bias adds and "
                                                 "comparisons of every layer of a model.")
    parser.add_argument("--model", default=str(DEFAULT_MODEL_PATH), help="checkpoint (.npz)")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    model, _, _ = load_checkpoint(args.model)
    rows = cost_table(model)
    if args.markdown:
        print("| " + " | ".join(COLUMNS) + " |")
        print("|---|---|---|" + "---:|" * 4)
        for row in rows:
            print("| " + " | ".join(f"{row[c]:,}" if isinstance(row[c], int) else str(row[c])
                                    for c in COLUMNS) + " |")
    else:
        print(text_table(COLUMNS, rows))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
