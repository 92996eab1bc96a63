"""The ``--similarity`` section of the analysis report: are one digit's maps alike as 2-D shapes?

``python -m lenet_np.analyze --digit 0 --similarity`` adds, for the analysed conv layer (or
the ReLU after it; the other one of the pair is taken with it):

- firing-probability, mean and std maps per digit and filter;
- pairwise similarity of the images' maps (cosine, Pearson, mask IoU), within the digit
  against across digits, with a digit × digit IoU matrix;
- a position control: the same similarities with one image of each pair shifted;
- prototype masks from the training split and how well they predict test masks;
- the correlation between the input ink a position sees and its output.

Which images. Pairs need every digit even when one is selected, so the section works on a
*pool* from the test split: for each of the 10 digits, the same count as ``--n`` chosen by the
same rule (``--sample``, ``--seed``); with ``--n all``, every test image. When the analysed
split is the test split, the selected digits' pool images are exactly the selected ones.
The computations are in :mod:`lenet_np.similarity`.
"""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import similarity as sim  # noqa: E402
from .errors import LenetError  # noqa: E402
from .report import markdown_table  # noqa: E402

SIMILARITY_COLUMNS = ["digit", "filter", "measure", "pairs", "shift", "images", "n_pairs",
                      "n_undefined", "mean", "median", "q1", "q3"]
PROTOTYPE_COLUMNS = ["digit", "filter", "n_images", "prototype_size", "agnostic_size",
                     "accuracy_digit", "precision_digit", "recall_digit", "accuracy_agnostic",
                     "precision_agnostic", "recall_agnostic", "entropy_given_digit_bits",
                     "entropy_bits", "prototype_mask"]
TRAIN_CHUNK = 5000            # training images per forward chunk: bounded memory


def add_arguments(parser):
    group = parser.add_argument_group("similarity section")
    group.add_argument("--similarity", action="store_true",
                       help="add the 2-D similarity of the output maps to the report")
    group.add_argument("--shifts", default="1,2",
                       help="position control: input shifts in pixels (default 1,2)")
    group.add_argument("--pair-sample", type=int, default=100,
                       help="images per digit for the cosine/Pearson medians and the position "
                            "control (default 100); IoU and all means use every pool image")


def enabled(options):
    return bool(options.get("similarity"))


def parse_shifts(text):
    try:
        shifts = sorted({int(part) for part in str(text).split(",") if part.strip()})
    except ValueError:
        raise LenetError(f"--shifts takes pixel counts like 1,2; got {text!r}") from None
    if any(s < 1 or s > 8 for s in shifts):
        raise LenetError(f"--shifts must be within 1-8 pixels, got {text!r}")
    return shifts


def check(options, model):
    sim.analysed_layers(model, options["layer"])
    parse_shifts(options.get("shifts", "1,2"))
    if options.get("pair_sample", 100) < 2:
        raise LenetError(f"--pair-sample must be at least 2, got {options['pair_sample']}")


def pool_indices(ctx, test):
    """{digit: test indices} for all 10 digits: the selection's count and rule (see module)."""
    config = ctx.config
    rng = np.random.default_rng(config.seed)
    pool = {}
    for d in range(sim.N_DIGITS):
        if d in ctx.indices and ctx.split.name == "test":
            pool[d] = ctx.indices[d]
            continue
        available = np.flatnonzero(test.labels == d)
        n = len(available) if config.n == 0 else min(config.n, len(available))
        if config.sample == "first":
            pool[d] = available[:n]
        else:
            pool[d] = np.sort(rng.choice(available, n, replace=False))
    return pool


def flat(act):
    """(N, C, H, W) -> (N, C, H*W)."""
    return act.reshape(act.shape[0], act.shape[1], -1)


def build(ctx):
    model, options, writer = ctx.model, ctx.options, ctx.writer
    pre, relu = sim.analysed_layers(model, ctx.layer)
    shifts = parse_shifts(options.get("shifts", "1,2"))
    test = ctx.load_split("test")
    pool = pool_indices(ctx, test)
    digits = list(ctx.indices)
    order = np.concatenate([pool[d] for d in range(sim.N_DIGITS)])     # sorted by digit
    labels = test.labels[order].astype(np.int64)
    acts = ctx.activations(order, [pre, relu], split=test, desc="similarity pool")
    n_filters, height, width = acts[pre].shape[1:]
    pre_maps, masks = flat(acts[pre]), flat(acts[relu]) > 0           # (N, C, P)
    record = {"layer": pre, "relu": relu, "split": "test",
              "pool_images_per_digit": {str(d): int(len(pool[d])) for d in pool}, "files": {}}
    md = [f"## Similarity of the 2-D maps: {pre} and {relu}", "",
          f"Images: a pool from the test split, "
          f"{', '.join(f'{d}: {len(pool[d])}' for d in pool)} images per digit (the selection's "
          f"count and rule for every digit, so that other digits can be compared)."
          + (" The analysed split is train; this section uses the test split." if
             ctx.split.name != "test" else ""), ""]

    # Spatial maps of the selected digits.
    selected = {d: labels == d for d in digits}
    maps = {"p_nonzero": np.stack([masks[selected[d]].mean(axis=0) for d in digits]),
            "mean": np.stack([pre_maps[selected[d]].mean(axis=0) for d in digits]),
            "std": np.stack([pre_maps[selected[d]].std(axis=0) for d in digits])}
    shape = (len(digits), n_filters, height, width)
    record["maps"] = {k: v.reshape(shape) for k, v in maps.items()}
    md += ["### Spatial maps", "", f"Per digit and filter: P({relu} ≠ 0) at each position, and "
           f"the mean and std (ddof=0) of {pre}; one colour scale per figure.", ""]
    for key, title in (("p_nonzero", f"P({relu} ≠ 0)"), ("mean", f"mean of {pre}"),
                       ("std", f"std of {pre}")):
        name = f"sim_map_{key}_{pre}.png"
        record["files"][f"map_{key}"] = writer.save_figure(
            map_grid(maps[key].reshape(shape), digits, title), name)
        md += [f"![{title}]({name})", ""]

    # All pairs of the pool: IoU in blocks, cosine and Pearson means from linear sums.
    prepared = sim.prepare_maps(pre_maps, masks)
    stats_all = sim.accumulate_pairs(prepared, labels, iou_only=True)
    sim.linear_pair_means(prepared, labels, stats_all)
    rows = [dict(r, images="all") for r in sim.summary_rows(stats_all, digits)]
    # A sample of each digit's pool for the medians of cosine/Pearson and the shifts.
    pair_sample = options.get("pair_sample", 100)
    sample = np.concatenate([np.flatnonzero(labels == d)[:pair_sample]
                             for d in range(sim.N_DIGITS)])
    sample_prepared = sim.prepare_maps(pre_maps[sample], masks[sample])
    sample_stats = {0: sim.accumulate_pairs(sample_prepared, labels[sample])}
    rng = np.random.default_rng(ctx.config.seed)
    for shift in shifts:
        dy, dx = sim.random_shifts(len(sample), shift, rng)
        moved = sim.shift_images(test.images[order[sample]], dy, dx)
        _, shifted_acts = model.forward(moved[:, None].astype(np.float32) / np.float32(255))
        left = sim.prepare_maps(flat(shifted_acts[pre]), flat(shifted_acts[relu]) > 0)
        sample_stats[shift] = sim.accumulate_pairs(sample_prepared, labels[sample], left=left)
    for shift, stats in sample_stats.items():
        rows += [dict(r, images="sample") for r in sim.summary_rows(stats, digits, shift)]
    record["similarity"] = rows
    record["pair_sample_per_digit"] = pair_sample
    record["files"]["similarity"] = writer.write_csv(f"similarity_{ctx.layer}.csv",
                                                     SIMILARITY_COLUMNS, rows)
    md += similarity_markdown(rows, digits, pre, relu, pair_sample, shifts)
    name = f"sim_box_{pre}.png"
    record["files"]["box"] = writer.save_figure(box_figure(sample_stats[0], digits), name)
    md += [f"![within against across]({name})", ""]
    name = f"sim_shift_{pre}.png"
    record["files"]["shift"] = writer.save_figure(shift_figure(rows, digits), name)
    md += [f"![position control]({name})", ""]
    per_filter, overall = sim.digit_matrix(stats_all, "iou")
    record["iou_matrix"] = overall
    record["iou_matrix_per_filter"] = per_filter
    name = f"sim_iou_matrix_{relu}.png"
    record["files"]["iou_matrix"] = writer.save_figure(iou_matrix_figure(per_filter, overall),
                                                       name)
    md += ["Digit × digit mean mask IoU over all pool pairs (a digit with itself: pairs of two "
           "different images), pooled over filters and per filter:", "", f"![IoU matrix]({name})",
           ""]

    proto_md, proto_record = prototype_section(ctx, relu, masks, labels, digits)
    md += proto_md
    record["prototype"] = proto_record

    ink_md, ink_record = ink_section(ctx, pre, pre_maps, order, labels, digits, test)
    md += ink_md
    record["ink"] = ink_record
    verdict = verdict_text(rows, proto_record, ink_record, digits, shifts)
    record["verdict"] = verdict
    md[2:2] = ["**Verdict.** " + verdict, ""]
    return {"markdown": "\n".join(md), "json": record}


def _row(rows, **keys):
    return next(r for r in rows if all(r[k] == v for k, v in keys.items()))


def similarity_markdown(rows, digits, pre, relu, pair_sample, shifts):
    md = ["### How alike are two images' maps?", "",
          f"Per filter, over pairs of different images: cosine and Pearson correlation of the "
          f"{pre} maps, IoU of the {relu} nonzero masks. *Within*: both images of the digit; "
          f"*across*: one of the digit, one of another digit. Means and IoU quartiles are over "
          f"every pool pair; cosine and Pearson quartiles over all pairs among the first "
          f"{pair_sample} pool images of each digit (quartiles from histograms of width 0.002). "
          f"IoU of two empty masks is 0/0: left out and counted (`undef`).", ""]
    columns = ["digit", "filter", "cos in", "cos across", "r in", "r across", "IoU in",
               "IoU across", "IoU in median [IQR]", "IoU across median [IQR]", "undef in"]
    table = []
    for d in digits:
        for f in sorted({r["filter"] for r in rows}, key=lambda f: (f == "all", str(f).zfill(3))):
            get = lambda m, p: _row(rows, digit=d, filter=f, measure=m, pairs=p,  # noqa: E731
                                    shift=0, images="all")
            iou_in, iou_out = get("iou", "within"), get("iou", "across")
            table.append({
                "digit": d, "filter": f, "cos in": get("cosine", "within")["mean"],
                "cos across": get("cosine", "across")["mean"],
                "r in": get("pearson", "within")["mean"],
                "r across": get("pearson", "across")["mean"],
                "IoU in": iou_in["mean"], "IoU across": iou_out["mean"],
                "IoU in median [IQR]": f"{iou_in['median']:.2f} [{iou_in['q1']:.2f}, "
                                       f"{iou_in['q3']:.2f}]",
                "IoU across median [IQR]": f"{iou_out['median']:.2f} [{iou_out['q1']:.2f}, "
                                           f"{iou_out['q3']:.2f}]",
                "undef in": iou_in["n_undefined"]})
    formats = {c: ".3f" for c in ("cos in", "cos across", "r in", "r across", "IoU in",
                                  "IoU across")}
    md += [markdown_table(columns, table, formats), "",
           "Position control (filters pooled, sample pairs): one image of each pair has its "
           f"input shifted by {' and '.join(map(str, shifts))} pixels (up, down, left or right "
           "at random).", ""]
    control = []
    for d in digits:
        for shift in [0] + shifts:
            entry = {"digit": d, "shift": shift}
            for m in sim.MEASURES:
                for p in ("within", "across"):
                    entry[f"{m} {p}"] = _row(rows, digit=d, filter="all", measure=m, pairs=p,
                                             shift=shift, images="sample")["mean"]
            control.append(entry)
    columns = ["digit", "shift"] + [f"{m} {p}" for m in sim.MEASURES for p in ("within", "across")]
    md += [markdown_table(columns, control, {c: ".3f" for c in columns[2:]}), ""]
    return md


def prototype_section(ctx, relu, masks, labels, digits):
    """Prototype masks from the training split, scored on the pool's selected digits."""
    train = ctx.load_split("train")
    n_filters, n_positions = masks.shape[1:]
    fired = np.zeros((sim.N_DIGITS, n_filters, n_positions))
    for start in range(0, len(train.labels), TRAIN_CHUNK):
        index = np.arange(start, min(start + TRAIN_CHUNK, len(train.labels)))
        chunk = flat(ctx.activations(index, [relu], split=train)[relu]) > 0
        chunk_labels = train.labels[index]
        for d in range(sim.N_DIGITS):
            fired[d] += chunk[chunk_labels == d].sum(axis=0)
    n_train = np.bincount(train.labels, minlength=sim.N_DIGITS).astype(np.float64)
    p_digit = sim._safe_divide(fired, n_train[:, None, None])          # (10, C, P)
    p_any = fired.sum(axis=0) / n_train.sum()                             # (C, P)
    proto_digit, proto_any = sim.prototype_masks(p_digit), sim.prototype_masks(p_any)
    entropy_any = sim.binary_entropy(p_any).mean(axis=1)                  # (C,)
    entropy_digit = sim.binary_entropy(p_digit).mean(axis=2)              # (10, C)
    prior = n_train / n_train.sum()
    rows = []
    for d in digits:
        own = masks[labels == d]
        by_digit = sim.mask_agreement(own, proto_digit[d])
        agnostic = sim.mask_agreement(own, proto_any)
        for f in list(range(n_filters)) + ["all"]:
            pick = (lambda c: c.sum()) if f == "all" else (lambda c, f=f: c[f])
            scores_d = sim.agreement_scores({k: pick(v) for k, v in by_digit.items()})
            scores_a = sim.agreement_scores({k: pick(v) for k, v in agnostic.items()})
            row = {"digit": d, "filter": f, "n_images": int(len(own)),
                   "prototype_size": int(proto_digit[d].sum() if f == "all"
                                         else proto_digit[d, f].sum()),
                   "agnostic_size": int(proto_any.sum() if f == "all" else proto_any[f].sum()),
                   "entropy_given_digit_bits": float(entropy_digit[d].mean() if f == "all"
                                                     else entropy_digit[d, f]),
                   "entropy_bits": float(entropy_any.mean() if f == "all" else entropy_any[f]),
                   "prototype_mask": "" if f == "all" else
                   "".join("1" if v else "0" for v in proto_digit[d, f])}
            for key in ("accuracy", "precision", "recall"):
                row[f"{key}_digit"] = float(scores_d[key])
                row[f"{key}_agnostic"] = float(scores_a[key])
            rows.append(row)
    mutual = float(entropy_any.mean() - (prior[:, None] * entropy_digit).sum(axis=0).mean())
    name = ctx.writer.write_csv(f"prototype_{relu}.csv", PROTOTYPE_COLUMNS, rows)
    record = {"rows": rows, "train_images": int(n_train.sum()),
              "entropy_bits": float(entropy_any.mean()),
              "entropy_given_digit_bits": float((prior[:, None] * entropy_digit).sum(axis=0).mean()),
              "information_bits": mutual, "file": name}
    columns = ["digit", "filter", "prototype_size", "accuracy_agnostic", "accuracy_digit",
               "precision_agnostic", "precision_digit", "recall_agnostic", "recall_digit",
               "entropy_bits", "entropy_given_digit_bits"]
    formats = {c: ".3f" for c in columns[3:]}
    md = ["### Does knowing the digit predict the mask?", "",
          f"Prototype masks from all {int(n_train.sum())} training images: for each digit and "
          f"filter the positions with P({relu} ≠ 0 | digit) ≥ 0.5, and one digit-agnostic "
          f"prototype from all digits. Each test image's mask is scored against its digit's "
          f"prototype and the agnostic one (counts summed over images and positions; precision "
          f"is NaN for an empty prototype, recall NaN when no mask fires). Entropies are the "
          f"mean per-position entropy of the mask, in bits, from the training frequencies. "
          f"Over all digits the digit tells {mutual:.3f} bits per position "
          f"(H = {record['entropy_bits']:.3f} → H | digit = "
          f"{record['entropy_given_digit_bits']:.3f}).", "",
          markdown_table(columns, rows, formats), ""]
    return md, record


def ink_section(ctx, pre, pre_maps, order, labels, digits, test):
    """Correlation between the ink each output position sees and its pre-activation value."""
    boxes = sim.receptive_field_boxes(ctx.model, pre)
    size = int(boxes[0, 0, 1] - boxes[0, 0, 0])
    chosen = np.flatnonzero(np.isin(labels, digits))
    ink = sim.patch_ink(test.images[order[chosen]], boxes)              # (n, H, W)
    values = pre_maps[chosen]                                           # (n, C, P)
    ink_by_filter = np.broadcast_to(ink.reshape(len(chosen), 1, -1), values.shape)
    correlation = sim.pearson_by_filter(values, ink_by_filter)
    name = f"sim_ink_{pre}.png"
    ctx.writer.save_figure(hexbin_grid(ink.reshape(len(chosen), -1), values, correlation,
                                       size, pre), name)
    record = {"receptive_field": size, "correlation": correlation, "file": name}
    md = ["### Relation to the input", "",
          f"Each {pre} position sees a {size}×{size} patch of the input (from the architecture). "
          f"Pearson correlation, over the selected images and positions, between the ink in "
          f"that patch (sum of pixel/255) and the {pre} value:", "",
          markdown_table(["filter", "r"], [{"filter": f, "r": r} for f, r in
                                           enumerate(correlation)], {"r": ".3f"}), "",
          f"![ink against output]({name})", ""]
    return md, record


def verdict_text(rows, proto, ink, digits, shifts):
    """The section's answer in plain words, from its own numbers (filters pooled)."""
    def mean(measure, pairs, shift=0, images="all"):
        return np.mean([_row(rows, digit=d, filter="all", measure=measure, pairs=pairs,
                             shift=shift, images=images)["mean"] for d in digits])
    all_rows = [r for r in proto["rows"] if r["filter"] == "all"]
    acc_any = np.mean([r["accuracy_agnostic"] for r in all_rows])
    acc_digit = np.mean([r["accuracy_digit"] for r in all_rows])
    h_any = np.mean([r["entropy_bits"] for r in all_rows])
    h_digit = np.mean([r["entropy_given_digit_bits"] for r in all_rows])
    which = f"digit {digits[0]}" if len(digits) == 1 else f"digits {', '.join(map(str, digits))}"
    text = (f"For {which}, maps of the same digit are more alike than maps of different digits "
            f"(mask IoU {mean('iou', 'within'):.2f} against {mean('iou', 'across'):.2f}, "
            f"Pearson {mean('pearson', 'within'):.2f} against {mean('pearson', 'across'):.2f}) "
            if mean("iou", "within") > mean("iou", "across") else
            f"For {which}, maps of the same digit are not more alike than maps of different "
            f"digits (mask IoU {mean('iou', 'within'):.2f} against "
            f"{mean('iou', 'across'):.2f}) ")
    base = mean("iou", "within", 0, "sample")
    shifted = ", ".join(f"{mean('iou', 'within', s, 'sample'):.2f} at {s} px" for s in shifts)
    across = mean("iou", "across", 0, "sample")
    largest = mean("iou", "within", shifts[-1], "sample")
    lost = (base - largest) / (base - across) if base != across else float("nan")
    text += (f"but only partly as shapes: shifting one input of each pair drops within-digit "
             f"IoU from {base:.2f} to {shifted} (across-digit level {across:.2f}), so "
             f"{lost:.0%} of the within-digit excess goes with a {shifts[-1]}-pixel shift "
             f"of where the digit sits. Knowing the digit raises mask accuracy from "
             f"{acc_any:.0%} to {acc_digit:.0%} and lowers the mask entropy from {h_any:.2f} "
             f"to {h_digit:.2f} bits per position. Input ink in the receptive field correlates "
             f"with the output at r = {np.nanmedian(ink['correlation']):.2f} (median over "
             f"filters; {np.nanmin(ink['correlation']):.2f} to "
             f"{np.nanmax(ink['correlation']):.2f}).")
    return text


# --- figures ---

def map_grid(maps, digits, title):
    """maps (D, C, H, W): one panel per filter (and row per digit), one colour scale."""
    n_digits, n_filters = maps.shape[:2]
    cols = n_filters if n_digits > 1 else min(6, n_filters)
    rows = n_digits if n_digits > 1 else -(-n_filters // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.0 + 1, rows * 1.0 + 0.6),
                             squeeze=False)
    low, high = np.nanmin(maps), np.nanmax(maps)
    for ax in axes.flat:
        ax.axis("off")
    for d_index in range(n_digits):
        for f in range(n_filters):
            ax = axes[d_index, f] if n_digits > 1 else axes.flat[f]
            image = ax.imshow(maps[d_index, f], vmin=low, vmax=high, cmap="viridis")
            if n_digits == 1 or d_index == 0:
                ax.set_title(f"filter {f}", fontsize=7)
            if n_digits > 1 and f == 0:
                ax.axis("on")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.set_ylabel(f"digit {digits[d_index]}", fontsize=7)
    fig.colorbar(image, ax=axes, shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def box_figure(stats, digits):
    """Within (blue) against across (orange) per filter, one row per measure and digit; boxes
    are the quartiles, whiskers the 5th and 95th percentiles (sample pairs)."""
    fig, axes = plt.subplots(len(sim.MEASURES) * len(digits), 1, squeeze=False,
                             figsize=(11, 2.0 * len(sim.MEASURES) * len(digits)))
    for d_index, d in enumerate(digits):
        for m, measure in enumerate(sim.MEASURES):
            ax = axes[d_index * len(sim.MEASURES) + m, 0]
            for p_index, (pairs, colour) in enumerate((("within", "tab:blue"),
                                                       ("across", "tab:orange"))):
                summary = sim.pair_summary(stats, d, pairs)
                q = sim.histogram_quantiles(
                    (stats.hist[d, d] if pairs == "within" else
                     stats.hist[d, [o for o in range(10) if o != d]].sum(axis=0)
                     + stats.hist[[o for o in range(10) if o != d], d].sum(axis=0))[:, m],
                    [0.05, 0.95])
                boxes = [{"med": summary["median"][f, m], "q1": summary["q1"][f, m],
                          "q3": summary["q3"][f, m], "whislo": q[f, 0], "whishi": q[f, 1],
                          "label": str(f)} for f in range(q.shape[0])]
                positions = np.arange(len(boxes)) + (p_index - 0.5) * 0.35
                if all(np.isnan(b["med"]) for b in boxes):
                    continue
                ax.bxp([b for b in boxes if not np.isnan(b["med"])],
                       positions=positions[[not np.isnan(b["med"]) for b in boxes]],
                       widths=0.3, showfliers=False, patch_artist=True,
                       boxprops={"facecolor": colour, "alpha": 0.6}, manage_ticks=False)
            ax.set_xticks(range(stats.hist.shape[2]))
            ax.set_ylabel(f"{measure}\ndigit {d}", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel("filter (blue: within the digit, orange: across digits)")
    fig.tight_layout()
    return fig


def shift_figure(rows, digits):
    """Mean similarity (filters pooled, sample pairs) against the shift of one image."""
    fig, axes = plt.subplots(1, len(sim.MEASURES), figsize=(11, 3.2))
    for ax, measure in zip(axes, sim.MEASURES):
        for d in digits:
            for pairs, style in (("within", "-"), ("across", "--")):
                points = sorted((r["shift"], r["mean"]) for r in rows
                                if r["digit"] == d and r["filter"] == "all" and
                                r["measure"] == measure and r["pairs"] == pairs and
                                r["images"] == "sample")
                ax.plot(*zip(*points), style, marker="o", color=plt.get_cmap("tab10")(d),
                        label=f"{d} {pairs}" if len(digits) <= 3 or pairs == "within" else None)
        ax.set_title(measure)
        ax.set_xlabel("shift of one input (pixels)")
    axes[0].set_ylabel("mean similarity (solid within, dashed across)")
    axes[-1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return fig


def iou_matrix_figure(per_filter, overall):
    n_filters = per_filter.shape[0]
    cols = 6
    rows = -(-n_filters // cols)
    fig = plt.figure(figsize=(14, 2.2 * rows + 1))
    grid = fig.add_gridspec(rows, cols + 3)
    big = fig.add_subplot(grid[:, :3])
    image = big.imshow(overall, vmin=0, vmax=np.nanmax(overall), cmap="viridis")
    for (r, c), value in np.ndenumerate(overall):
        big.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=6, color="white")
    big.set_title("all filters pooled", fontsize=9)
    big.set_xlabel("digit")
    big.set_ylabel("digit")
    big.set_xticks(range(10))
    big.set_yticks(range(10))
    fig.colorbar(image, ax=big, shrink=0.7)
    high = np.nanmax(per_filter) if np.any(~np.isnan(per_filter)) else 1.0
    for f in range(n_filters):
        ax = fig.add_subplot(grid[f // cols, 3 + f % cols])
        ax.imshow(per_filter[f], vmin=0, vmax=high, cmap="viridis")
        ax.set_title(f"filter {f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("mean mask IoU, digit × digit (per-filter panels share one scale; blank: "
                 "no defined pair)", fontsize=10)
    return fig


def hexbin_grid(ink, values, correlation, size, pre):
    """ink (n, P), values (n, C, P): one hexbin panel per filter."""
    n_filters = values.shape[1]
    cols = min(6, n_filters)
    rows = -(-n_filters // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.0, rows * 1.8), squeeze=False)
    for ax in axes.flat[n_filters:]:
        ax.axis("off")
    for f, ax in zip(range(n_filters), axes.flat):
        ax.hexbin(ink.ravel(), values[:, f].ravel(), gridsize=25, bins="log", cmap="viridis",
                  mincnt=1)
        ax.set_title(f"filter {f}: r = {correlation[f]:.2f}", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.supxlabel(f"ink in the {size}×{size} input patch (sum of pixel/255)", fontsize=8)
    fig.supylabel(f"{pre} value", fontsize=8)
    fig.tight_layout()
    return fig
