"""The ``--early`` section of ``python -m lenet_np.analyze``: the early-prediction schemes on
the analysed layer, fitted on the training split and measured on the whole test split.

It writes ``early_<layer>.csv`` (columns in the README and in ``CSV_COLUMNS``), a figure of
accuracy against MACs over τ and k, the schemes table, the savings per selected digit and a
verdict on the study's question computed from the numbers.
"""
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .early import DEFAULT_BITS, DEFAULT_EXACT_BITS, DEFAULT_TAUS, check_bits, check_tau, \
    conv_spec, standard_schemes  # noqa: E402
from .early.base import guaranteed_input_bound  # noqa: E402
from .early.evaluate import ROW_COLUMNS, collect, evaluate, summary_rows, \
    training_data  # noqa: E402
from .errors import LenetError  # noqa: E402
from .report import markdown_table  # noqa: E402

CSV_COLUMNS = ROW_COLUMNS
FORMATS = {"layer_macs_equiv": ",.0f", "network_macs_equiv": ",.0f", "layer_saved": ".1%",
           "network_saved": ".1%", "share_of_relu_oracle": ".1%", "share_of_pool_oracle": ".1%",
           "accuracy": ".2%", "accuracy_change": "+.2%", "changed_predictions": ".2%",
           "skip_precision": ".3f", "skip_recall": ".3f", "comparisons": ",.0f"}
TABLE_COLUMNS = ["scheme", "layer_macs_equiv", "layer_saved", "network_saved",
                 "share_of_relu_oracle", "share_of_pool_oracle", "accuracy", "accuracy_change",
                 "changed_predictions", "skip_precision", "skip_recall"]
MAX_ACCURACY_LOSS = 0.001          # "at most 0.1 point of accuracy" in the verdict
DEFAULT_FIT_N = 5000               # training images to fit on: the fitted statistics (means,
                                   # P(zero | digit), a least-squares head) are settled by then


def add_arguments(parser):
    group = parser.add_argument_group("early prediction (--early)")
    group.add_argument("--early", action="store_true",
                       help="add the early-prediction schemes on --layer (default conv2)")
    group.add_argument("--tau", default=",".join(f"{t:g}" for t in DEFAULT_TAUS),
                       help="class-mask thresholds τ in [0, 1], comma-separated")
    group.add_argument("--bits", default=",".join(map(str, DEFAULT_BITS)),
                       help="low-bit widths k in 2..16, comma-separated")
    group.add_argument("--exact-bits", default=",".join(map(str, DEFAULT_EXACT_BITS)),
                       help="widths k in 2..16 of the exact low-bit scheme (lowbit_exact), "
                            "comma-separated")
    group.add_argument("--fit-n", type=int, default=DEFAULT_FIT_N,
                       help="training images the schemes are fitted on (first ones; 0 = all)")


def enabled(options):
    return bool(options.get("early"))


def _parse_list(text, name, convert):
    try:
        return [convert(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise LenetError(f"--{name} takes comma-separated numbers, got {text!r}") from None


def parse_options(options):
    """(taus, bits, exact_bits, fit_n) from the parsed options; a LenetError for a bad one."""
    taus = [check_tau(t) for t in _parse_list(options.get("tau", ""), "tau", float)]
    bits = [check_bits(k) for k in _parse_list(options.get("bits", ""), "bits", float)]
    exact_bits = [check_bits(k) for k in _parse_list(
        options.get("exact_bits", ",".join(map(str, DEFAULT_EXACT_BITS))), "exact-bits", float)]
    fit_n = options.get("fit_n", DEFAULT_FIT_N)
    if fit_n < 0:
        raise LenetError(f"--fit-n must be 0 (all) or positive, got {fit_n}")
    return taus, bits, exact_bits, fit_n


def check(options, model):
    parse_options(options)
    conv_spec(model, options.get("layer", "conv2"))


def build(ctx):
    taus, bits, exact_bits, fit_n = parse_options(ctx.options)
    model, writer = ctx.model, ctx.writer
    spec = conv_spec(model, ctx.layer)
    started = time.perf_counter()
    train_split = ctx.load_split("train")
    fit_index = np.arange(len(train_split.labels) if fit_n == 0
                          else min(fit_n, len(train_split.labels)))
    print(f"early: fitting on {len(fit_index)} training images", file=sys.stderr)
    train = training_data(collect(model, spec, train_split, fit_index, keep_relu=False))
    test_split = ctx.load_split("test")
    reference = collect(model, spec, test_split)
    schemes = standard_schemes(spec, taus, bits, exact_bits=exact_bits)
    evaluations = []
    for scheme in schemes:
        scheme.fit(model, spec, train)
        evaluations.append(evaluate(model, scheme, reference))
    digits = sorted(ctx.indices)
    rows = summary_rows(model, evaluations, reference, digits)
    csv_name = writer.write_csv(f"early_{spec.layer}.csv", CSV_COLUMNS, rows)
    overall = [r for r in rows if r["digit"] == "all"]
    figure = writer.save_figure(tradeoff_figure(overall, spec), f"early_{spec.layer}.png")
    verdict = verdict_lines(overall, rows, digits, spec)
    pruning = pruning_line(model, spec)
    per_digit = per_digit_rows(rows, digits)
    md = [f"## Early prediction on {spec.layer} ({spec.relu}"
          f"{', ' + spec.pool if spec.pool else ''})", "",
          f"Fitted on the first {len(fit_index)} training images, measured on all "
          f"{len(reference.labels)} test images; MACs per image, low-bit MACs counted at k/32 "
          f"(`layer_macs_equiv`). Dense {spec.layer}: {spec.dense_macs:,} MACs per image. "
          f"Every row, and the same per digit, is in `{csv_name}`.", "", pruning, "",
          markdown_table(TABLE_COLUMNS, [_blank_nan(r) for r in overall], FORMATS), "",
          f"![accuracy against MACs]({figure})", "",
          f"### Savings per digit (share of {spec.layer}'s MACs saved)", "",
          markdown_table(["scheme"] + [f"digit {d}" for d in digits], per_digit,
                         {f"digit {d}": ".1%" for d in digits}), "",
          "### Verdict", ""] + [f"- {line}" for line in verdict] + [""]
    print(f"early: {len(schemes)} schemes in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    return {"markdown": "\n".join(md),
            "json": {"layer": spec.layer, "relu": spec.relu, "pool": spec.pool,
                     "dense_layer_macs": spec.dense_macs, "fit_images": int(len(fit_index)),
                     "test_images": int(len(reference.labels)), "taus": taus, "bits": bits,
                     "exact_bits": exact_bits, "lowbit_rate": "bits/32", "rows": rows,
                     "verdict": verdict,
                     "static_pruning": pruning,
                     "files": {"csv": csv_name, "figure": figure}}}


def pruning_line(model, spec):
    """One sentence: the terms per output every realisable scheme leaves out, and why."""
    bound = guaranteed_input_bound(model, spec)                       # (C,)
    dead = np.flatnonzero(bound <= 0)
    per_channel = int(np.prod(spec.weight.shape[2:]))
    if not len(dead):
        return (f"Static pruning: none; every input channel of {spec.layer} can be positive "
                f"for some input in [0, 1].")
    return (f"Static pruning: {len(dead) * per_channel} of the {spec.macs_per_output} terms "
            f"per output are left out by every realisable scheme: input channel"
            f"{'s' if len(dead) > 1 else ''} {', '.join(map(str, dead))} of {spec.layer} "
            f"{'are' if len(dead) > 1 else 'is'} 0 for every input in [0, 1] (its filter's "
            f"bias plus its positive weights times the largest input is <= 0), so those terms "
            f"add exactly 0. `dense` and the oracles keep every term; the `[no-prune]` rows "
            f"show the exact schemes without this pruning.")


def _blank_nan(row):
    return {k: (float("nan") if v == "" else v) for k, v in row.items()}


def per_digit_rows(rows, digits):
    """[{scheme, digit d: layer_saved}] for the selected digits."""
    table = {}
    for row in rows:
        if row["digit"] in digits:
            table.setdefault(row["scheme"], {"scheme": row["scheme"]})[
                f"digit {row['digit']}"] = row["layer_saved"]
    return list(table.values())


def tradeoff_figure(overall, spec):
    """Test accuracy against the layer's MACs per image, the τ and k sweeps as lines."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    by_family = {}
    for row in overall:
        by_family.setdefault(row["scheme"].split(" ")[0], []).append(row)
    for family, family_rows in by_family.items():
        xs = [r["layer_macs_equiv"] for r in family_rows]
        ys = [100 * r["accuracy"] for r in family_rows]
        if len(family_rows) > 1:
            ax.plot(xs, ys, marker="o", label=family)
            for r, x, y in zip(family_rows, xs, ys):
                ax.annotate(f"τ={r['tau']:g}" if r["tau"] != "" else f"k={r['bits']}", (x, y),
                            fontsize=6, xytext=(3, 3), textcoords="offset points")
        else:
            ax.scatter(xs, ys, marker="s" if "oracle" in family else "D", label=family, zorder=3)
    ax.set_xlabel(f"{spec.layer} MACs per image (full-precision equivalent)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(f"Early prediction on {spec.layer}: accuracy against work")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def verdict_lines(overall, rows, digits, spec):
    """The study's question answered in words from the numbers of ``overall``."""
    by_name = {r["scheme"]: r for r in overall}
    lines = []
    relu = by_name["oracle_relu"]
    lines.append(f"{spec.relu} zeroes {relu['layer_saved']:.1%} of {spec.layer}'s outputs on "
                 f"the test set: that is the most a ReLU-only scheme can save.")
    if "oracle_pool" in by_name:
        pool = by_name["oracle_pool"]
        lines.append(f"Computing only the positive maximum of each {spec.pool} window (the "
                     f"pool-aware oracle) would save {pool['layer_saved']:.1%}.")
    exact = [r for r in overall if r["exact"] and "oracle" not in r["family"]
             and r["family"] != "dense"]
    if exact:
        best = max(exact, key=lambda r: r["layer_saved"])
        lines.append(f"Exact schemes (same predictions as dense): the best, {best['scheme']}, "
                     f"saves {best['layer_saved']:.1%} of the layer, "
                     f"{best['share_of_relu_oracle']:.0%} of the ReLU oracle's saving.")
        for row in exact:
            plain = by_name.get(f"{row['family']}[no-prune]")
            if row["scheme"] == row["family"] and plain:
                lines.append(f"{row['scheme']}: {row['share_of_relu_oracle']:.1%} of the ReLU "
                             f"oracle's saving"
                             + (f", {row['share_of_pool_oracle']:.1%} of the pool-aware "
                                f"oracle's" if row["share_of_pool_oracle"] != "" else "")
                             + f"; without the static pruning {plain['share_of_relu_oracle']:.1%}"
                             + (f" and {plain['share_of_pool_oracle']:.1%}"
                                if plain["share_of_pool_oracle"] != "" else "") + ".")
        lowbit_exact = [r for r in exact if r["family"] == "lowbit_exact"]
        if lowbit_exact and "oracle_pool" in by_name:
            text = ", ".join(f"k={r['bits']}: {r['share_of_pool_oracle']:.1%}"
                             for r in lowbit_exact)
            best = max(lowbit_exact, key=lambda r: r["layer_saved"])
            lines.append(f"Exact low-bit intervals (lowbit_exact), share of the pool-aware "
                         f"oracle's saving: {text}; the best, {best['scheme']}, saves "
                         f"{best['layer_saved']:.1%} of the layer (low-bit MACs at k/32, its "
                         f"{best['predictor_adds']:,.0f} box-sum adds per image apart).")
    masks = [r for r in overall if r["family"] == "class_masks"]
    good_masks = [r for r in masks if r["accuracy_change"] >= -MAX_ACCURACY_LOSS]
    if masks:
        if good_masks:
            best = max(good_masks, key=lambda r: r["layer_saved"])
            lines.append(f"Class-conditional masks (the study's hypothesis): within "
                         f"{100 * MAX_ACCURACY_LOSS:g} point of dense accuracy the best is "
                         f"{best['scheme']}, saving {best['layer_saved']:.1%} "
                         f"(accuracy {points(best['accuracy_change'])}); knowing the digit "
                         f"predicts {best['skip_recall']:.0%} of the zeros.")
        else:
            lines.append("Class-conditional masks lose more than "
                         f"{100 * MAX_ACCURACY_LOSS:g} point of accuracy at every τ tried.")
        lossy = min(masks, key=lambda r: r["tau"])
        lines.append(f"At τ={lossy['tau']:g} they skip {lossy['skip_recall']:.0%} of the zeros "
                     f"but change {lossy['changed_predictions']:.1%} of predictions "
                     f"(accuracy {points(lossy['accuracy_change'])}): the zero pattern depends on "
                     f"the image, not only on its digit.")
    approx = [r for r in overall if not r["exact"]
              and r["accuracy_change"] >= -MAX_ACCURACY_LOSS]
    if approx:
        best = max(approx, key=lambda r: r["layer_saved"])
        share = best["share_of_pool_oracle"] or best["share_of_relu_oracle"]
        lines.append(f"The best approximate scheme within {100 * MAX_ACCURACY_LOSS:g} point of "
                     f"accuracy "
                     f"is {best['scheme']}: {best['layer_saved']:.1%} of the layer saved "
                     f"({share:.0%} of the best oracle's saving, accuracy "
                     f"{points(best['accuracy_change'])}); over the whole network "
                     f"{best['network_saved']:.1%}.")
    if len(digits) > 0:
        saved = {d: next(r["layer_saved"] for r in rows if r["digit"] == d
                         and r["scheme"] == "oracle_relu") for d in digits}
        text = ", ".join(f"digit {d}: {s:.1%}" for d, s in saved.items())
        lines.append(f"Zeros per selected digit ({spec.relu}): {text}.")
    lines.append(answer_line(spec, exact, approx, good_masks if masks else []))
    return lines


def points(change):
    """An accuracy change (a share, 0.001 = 0.1 point) in percentage points."""
    return f"{100 * change:+.2f} points"


def answer_line(spec, exact, approx, good_masks):
    """The study's question, answered from the best rows of each kind."""
    def best(rows):
        return max(rows, key=lambda r: r["layer_saved"]) if rows else None
    parts = []
    exact_best, approx_best, mask_best = best(exact), best(approx), best(good_masks)
    if exact_best:
        parts.append(f"exactly (identical predictions), {exact_best['layer_saved']:.0%} of "
                     f"{spec.layer}'s MACs ({exact_best['scheme']})")
    if approx_best:
        parts.append(f"within {100 * MAX_ACCURACY_LOSS:g} point of accuracy, "
                     f"{approx_best['layer_saved']:.0%} ({approx_best['scheme']})")
    if not parts:
        return (f"Can {spec.layer}'s output be predicted early and its computation skipped? "
                f"Not by any scheme tried here without losing more than "
                f"{100 * MAX_ACCURACY_LOSS:g} point of accuracy.")
    line = (f"Can {spec.layer}'s output be predicted early and its computation skipped? "
            f"Yes: {'; '.join(parts)}.")
    if mask_best and approx_best and approx_best["family"] != "class_masks":
        line += (f" The digit's zero pattern (class masks) reaches "
                 f"{mask_best['layer_saved']:.0%} within the same accuracy "
                 f"({mask_best['scheme']}), so the layer's input predicts its zeros better than "
                 f"the digit does.")
    return line
