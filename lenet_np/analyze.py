"""Describe what one layer does to one or more digits: ``python -m lenet_np.analyze --digit 0``.

The study's analysis (../shared/docs/study.md), for any digit selection and any layer: per
filter statistics of the layer's output (Table 1) and of the following ReLU's output without
its zeros (Table 2), the share of zeros per filter (Fig. 6), histograms (Figs. 3-5) and the
input images (Fig. 2). Extra sections (``--similarity``, ``--early``) extend the same report.

The report folder holds report.md, report.json, the CSV tables and the PNG figures; it is
staged in a temporary folder and moved into place only when complete.
"""
import argparse
import importlib
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import __version__, plots
from .checkpoint import DEFAULT_MODEL_PATH, load_checkpoint, params_checksum
from .data import PROJECT_ROOT, load_split
from .errors import CliParser, LenetError, run_cli
from .fileio import sha256_file
from .report import ReportWriter, markdown_table, text_table
from .stats import STAT_COLUMNS, filter_stats, per_filter_values, zero_shares

# Modules that add a section to the report. Each provides ``add_arguments(parser)``,
# ``enabled(options) -> bool`` and ``build(ctx) -> {"markdown": str, "json": dict}``, and may
# provide ``check(options, model)`` to refuse bad options before any work is done.
SECTION_MODULES = ("lenet_np.similarity_report", "lenet_np.early_report")

STAT_FORMATS = {"mean": ".4f", "median": ".4f", "variance": ".4f", "std": ".4f", "min": ".4f",
                "q1": ".4f", "q3": ".4f", "max": ".4f", "negative_share": ".2%"}


@dataclass
class AnalyzeConfig:
    digits: list = field(default_factory=lambda: [0])   # digits analysed, from --digit
    n: int = 100                # images per digit; 0 means all of them
    split: str = "test"         # the split the images come from
    sample: str = "first"       # "first": in file order; "random": drawn with --seed
    seed: int = 0               # for --sample random
    layer: str = "conv2"        # the layer described; its following ReLU gives the zeros
    model: str = str(DEFAULT_MODEL_PATH)
    data_dir: str = ""          # "" = the project's data/mnist
    out: str = ""               # "" = reports/digit<digits>-<layer>
    force: bool = False         # replace an existing report
    batch_size: int = 500       # images per forward pass

    def out_dir(self):
        if self.out:
            return Path(self.out)
        name = "digit" + "-".join(map(str, self.digits)) if len(self.digits) < 10 else "digitall"
        return PROJECT_ROOT / "reports" / f"{name}-{self.layer}"


def parse_digits(text):
    """'0', '0,6,8' or 'all' -> sorted list of distinct digits."""
    if text.strip().lower() == "all":
        return list(range(10))
    try:
        digits = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise LenetError(f"--digit takes 0-9, a list like 0,6,8, or all; got {text!r}") from None
    bad = [d for d in digits if not 0 <= d <= 9]
    if bad or not digits:
        raise LenetError(f"--digit must be within 0-9, got {text!r}")
    return digits


def zero_layer_for(model, layer):
    """The layer whose zeros are described with ``layer``.

    A conv or dense layer's following ReLU; a ReLU, pool, flatten or input layer's own output
    (its zeros are what the ReLU before it left); None for the logits.
    """
    names = model.layer_names
    kinds = {name: kind for name, kind, _ in model.layers}
    if kinds[layer] in ("conv", "dense"):
        i = names.index(layer)
        if i + 1 < len(names) and kinds[names[i + 1]] == "relu":
            return names[i + 1]
        return None
    return layer


def select_images(labels, digits, n, sample, seed):
    """{digit: indices into the split}: the first ``n`` of each digit or ``n`` drawn at random
    (kept in file order); n = 0 takes them all."""
    selection = {}
    rng = np.random.default_rng(seed)
    for d in digits:
        available = np.flatnonzero(labels == d)
        if n > len(available):
            raise LenetError(f"--n {n} asks for more images than the {len(available)} of digit "
                             f"{d} in this split")
        if n == 0:
            chosen = available
        elif sample == "first":
            chosen = available[:n]
        else:
            chosen = np.sort(rng.choice(available, n, replace=False))
        selection[d] = chosen
    return selection


class AnalysisContext:
    """What a report section needs: the model, the selection, the writer and activations."""

    def __init__(self, config, options, model, meta, split, indices, writer):
        self.config = config
        self.options = options          # every parsed option, sections' own included
        self.model = model
        self.meta = meta
        self.split = split
        self.indices = indices          # {digit: indices into split}
        self.writer = writer
        self.layer = config.layer
        self.relu = zero_layer_for(model, config.layer)
        self._splits = {split.name: split}

    def load_split(self, name):
        """The ``"train"`` or ``"test"`` split of the same data folder (loaded once)."""
        if name not in self._splits:
            self._splits[name] = load_split(name, self.config.data_dir or None)
        return self._splits[name]

    def activations(self, index, names, split=None, desc=None):
        """The named activations of the images ``index`` of ``split`` (default: the analysed
        one), from batched forward passes that keep only ``names``: {name: (n, ...) array}."""
        split = split or self.split
        index = np.asarray(index)
        batch = self.config.batch_size
        starts = range(0, len(index), batch)
        if desc and len(starts) > 1:
            starts = tqdm(starts, desc=desc, unit="batch", file=sys.stderr, leave=False)
        kept = {name: [] for name in names}
        for start in starts:
            _, acts = self.model.forward(split.inputs(index[start:start + batch]))
            for name in names:
                kept[name].append(acts[name])
        return {name: np.concatenate(parts) if parts else
                np.empty((0, *self.layer_shape(name)), np.float32) for name, parts in kept.items()}

    def layer_shape(self, name):
        """Shape of one image's output of layer ``name``, e.g. (18, 8, 8) for conv2."""
        return next(shape for n, _, shape in self.model.layers if n == name)


def provenance(ctx, model_path, argv):
    config = ctx.config
    return {
        "version": __version__,
        "command": "python -m lenet_np.analyze " + " ".join(shlex.quote(a) for a in argv),
        "model": str(model_path),
        "model_params_sha256": params_checksum(ctx.model.params),
        "model_file_sha256": sha256_file(model_path),
        "model_test_accuracy": ctx.meta.get("test_accuracy"),
        "dataset": ctx.split.dataset,
        "data_dir": ctx.split.data_dir,
        "data_sha256": ctx.split.sha256,
        "split": config.split,
        "digits": config.digits,
        "images_per_digit": {str(d): int(len(i)) for d, i in ctx.indices.items()},
        "sample": config.sample,
        "seed": config.seed,
        "indices": {str(d): i.tolist() for d, i in ctx.indices.items()},
        "layer": ctx.layer,
        "zero_layer": ctx.relu,
        "options": {k: v for k, v in ctx.options.items() if k not in ("force",)},
    }


def stats_rows(act_by_digit, nonzero_only=False):
    rows = []
    for d, act in act_by_digit.items():
        rows += [{"digit": d, **row} for row in filter_stats(act, nonzero_only)]
    return rows


def build_core(ctx):
    """Tables 1 and 2, zero shares and Figs. 2-6: returns (markdown, json record, terminal)."""
    layer, relu, writer = ctx.layer, ctx.relu, ctx.writer
    unit = "unit" if len(ctx.layer_shape(layer)) == 1 else "filter"
    names = [layer] + ([relu] if relu and relu != layer else [])
    order = np.concatenate([ctx.indices[d] for d in ctx.indices])
    acts = ctx.activations(order, names, desc=f"{layer} activations")
    # Slice the one batched result back into digits, in selection order.
    bounds = np.cumsum([0] + [len(ctx.indices[d]) for d in ctx.indices])
    by_digit = {name: {d: acts[name][bounds[i]:bounds[i + 1]] for i, d in enumerate(ctx.indices)}
                for name in names}

    table1 = stats_rows(by_digit[layer])
    columns = ["digit", "filter"] + STAT_COLUMNS
    record = {"layer": layer, "zero_layer": relu, "unit": unit,
              "stats": table1, "files": {}}
    record["files"]["stats"] = writer.write_csv(f"stats_{layer}.csv", columns, table1)
    md = [f"## Table 1: {layer} output per {unit}",
          f"All values of each {unit} over the selected images; variance and std are the "
          f"population ones (ddof=0); quartiles by linear interpolation.", "",
          markdown_table(columns, table1, STAT_FORMATS), ""]
    terminal = [f"Table 1: {layer} output per {unit} (variance: population, ddof=0)",
                text_table(columns, table1, STAT_FORMATS), ""]

    montage = plots.input_montage({d: ctx.split.images[i] for d, i in ctx.indices.items()})
    record["files"]["inputs"] = writer.save_figure(montage, "fig2_inputs.png")
    values = {d: list(per_filter_values(a)) for d, a in by_digit[layer].items()}
    record["files"]["hist_layer"] = writer.save_figure(
        plots.histogram_grid(values, f"{layer} output values per {unit}", unit),
        f"fig3_hist_{layer}.png")
    figures_md = ["![inputs](fig2_inputs.png)", "",
                  f"![{layer} histograms](fig3_hist_{layer}.png)", ""]

    if relu:
        table2 = stats_rows(by_digit[relu], nonzero_only=True)
        record["stats_nonzero"] = table2
        record["files"]["stats_nonzero"] = writer.write_csv(f"stats_{relu}_nonzero.csv",
                                                            columns, table2)
        shares = {d: zero_shares(a) for d, a in by_digit[relu].items()}      # {digit: (C,)}
        zeros = [{"digit": d, "filter": f, "zero_share": float(share)}
                 for d, s in shares.items() for f, share in enumerate(s)]
        record["zero_share"] = zeros
        record["files"]["zero_share"] = writer.write_csv(f"zero_share_{relu}.csv",
                                                         ["digit", "filter", "zero_share"], zeros)
        record["zero_share_mean"] = {str(d): float(s.mean()) for d, s in shares.items()}
        md += [f"## Table 2: {relu} output per {unit}, zeros left out", "",
               markdown_table(columns, table2, STAT_FORMATS), "",
               f"## Share of zeros in {relu}", ""]
        terminal += [f"Table 2: {relu} output per {unit}, zeros left out (ddof=0)",
                     text_table(columns, table2, STAT_FORMATS), ""]
        for d, s in shares.items():
            prefix = f"digit {d}: " if len(shares) > 1 else ""
            lines = [f"{prefix}Proportion of 0 in {unit}{f}: {share:.3%}"
                     for f, share in enumerate(s)]
            lines.append(f"{prefix}Average proportion of 0 over {len(s)} {unit}s: {s.mean():.3%}")
            terminal += lines + [""]
            md += [f"- {line}" for line in lines] + [""]
        with_zeros = {d: list(per_filter_values(a)) for d, a in by_digit[relu].items()}
        nonzero = {d: [v[v != 0] for v in values] for d, values in with_zeros.items()}
        record["files"]["hist_nonzero"] = writer.save_figure(
            plots.histogram_grid(nonzero, f"{relu} output values per {unit}, zeros left out",
                                 unit), f"fig4_hist_{relu}_nonzero.png")
        record["files"]["hist_with_zeros"] = writer.save_figure(
            plots.histogram_grid(with_zeros, f"{relu} output values per {unit}, zeros included "
                                 f"(log count)", unit, log=True), f"fig5_hist_{relu}.png")
        record["files"]["zero_share_plot"] = writer.save_figure(
            plots.zero_share_bars(shares, relu, unit), f"fig6_zero_share_{relu}.png")
        figures_md += [f"![{relu} histograms without zeros](fig4_hist_{relu}_nonzero.png)", "",
                       f"![{relu} histograms with zeros](fig5_hist_{relu}.png)", "",
                       f"![zero share](fig6_zero_share_{relu}.png)", ""]
        if len(ctx.indices) > 1:
            digits = list(ctx.indices)
            zero_matrix = np.array([shares[d] for d in digits]) * 100
            record["files"]["zero_share_heatmap"] = writer.save_figure(
                plots.digit_filter_heatmap(zero_matrix, digits, f"share of zeros in {relu} (%)",
                                           "%", unit), f"heatmap_zero_share_{relu}.png")
            figures_md += [f"![zero share heatmap](heatmap_zero_share_{relu}.png)", ""]
    if len(ctx.indices) > 1:
        digits = list(ctx.indices)
        mean_matrix = np.array([[row["mean"] for row in table1 if row["digit"] == d]
                                for d in digits])
        record["files"]["mean_heatmap"] = writer.save_figure(
            plots.digit_filter_heatmap(mean_matrix, digits, f"mean of {layer} output", "mean",
                                       unit, fmt="{:.1f}"), f"heatmap_mean_{layer}.png")
        figures_md += [f"![mean heatmap](heatmap_mean_{layer}.png)", ""]
    md += ["## Figures", ""] + figures_md
    return "\n".join(md), record, "\n".join(terminal)


def provenance_markdown(prov):
    indices = "; ".join(f"digit {d}: {_compact(i)}" for d, i in prov["indices"].items())
    rows = [("command", f"`{prov['command']}`"), ("version", prov["version"]),
            ("model", f"{prov['model']} (parameters SHA-256 {prov['model_params_sha256'][:16]}…, "
                      f"file SHA-256 {prov['model_file_sha256'][:16]}…, test accuracy "
                      f"{prov['model_test_accuracy']})"),
            ("data", f"{prov['dataset']}, {prov['split']} split, " + ", ".join(
                f"{k} {v[:16]}…" for k, v in prov["data_sha256"].items())),
            ("images", f"{sum(prov['images_per_digit'].values())} "
                       f"({', '.join(f'digit {d}: {n}' for d, n in prov['images_per_digit'].items())}), "
                       f"{prov['sample']}" + (f" (seed {prov['seed']})"
                                              if prov["sample"] == "random" else "")),
            ("image indices", indices),
            ("layer", f"{prov['layer']}; zeros from {prov['zero_layer']}")]
    lines = ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def _compact(indices, limit=12):
    shown = ", ".join(map(str, indices[:limit]))
    return shown + (f", … ({len(indices)} in all; every index is in report.json)"
                    if len(indices) > limit else "")


def build_parser(section_modules):
    defaults = AnalyzeConfig()
    parser = CliParser(prog="python -m lenet_np.analyze", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--digit", default="0", help="0-9, a list like 0,6,8, or all")
    parser.add_argument("--n", default=str(defaults.n),
                        help="images per digit, or all (default 100)")
    parser.add_argument("--split", choices=["train", "test"], default=defaults.split)
    parser.add_argument("--sample", choices=["first", "random"], default=defaults.sample)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--layer", default=defaults.layer, help="any name in the acts record")
    parser.add_argument("--model", default=defaults.model, help="checkpoint (.npz)")
    parser.add_argument("--data-dir", default="", help="folder of IDX files (default data/mnist)")
    parser.add_argument("--out", default="", help="report folder (default reports/digit<d>-<layer>)")
    parser.add_argument("--force", action="store_true", help="replace an existing report")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--version", action="version", version=f"lenet_np {__version__}")
    for module in section_modules:
        module.add_arguments(parser)
    return parser


def config_from_args(args):
    n_text = str(args.n).strip().lower()
    if n_text == "all":
        n = 0
    else:
        try:
            n = int(n_text)
        except ValueError:
            raise LenetError(f"--n takes a positive integer or all, got {args.n!r}") from None
        if n < 1:
            raise LenetError(f"--n must be at least 1, got {n}")
    if args.batch_size < 1:
        raise LenetError(f"--batch-size must be at least 1, got {args.batch_size}")
    return AnalyzeConfig(digits=parse_digits(args.digit), n=n, split=args.split,
                         sample=args.sample, seed=args.seed, layer=args.layer, model=args.model,
                         data_dir=args.data_dir, out=args.out, force=args.force,
                         batch_size=args.batch_size)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    sections = [importlib.import_module(name) for name in SECTION_MODULES]
    args = build_parser(sections).parse_args(argv)
    options = vars(args)
    config = config_from_args(args)
    model, meta, _ = load_checkpoint(config.model)
    if config.layer not in model.layer_names:
        raise LenetError(f"unknown layer {config.layer!r}; the layers are "
                         f"{', '.join(model.layer_names)}")
    active = [s for s in sections if s.enabled(options)]
    for section in active:
        if hasattr(section, "check"):
            section.check(options, model)
    split = load_split(config.split, config.data_dir or None)
    indices = select_images(split.labels, config.digits, config.n, config.sample, config.seed)
    writer = ReportWriter(config.out_dir(), force=config.force)
    try:
        ctx = AnalysisContext(config, options, model, meta, split, indices, writer)
        prov = provenance(ctx, config.model, argv)
        core_md, record, terminal = build_core(ctx)
        extra = {}
        extra_md = []
        for section in active:
            result = section.build(ctx)
            extra[section.__name__.rsplit(".", 1)[-1]] = result["json"]
            extra_md.append(result["markdown"])
        digits_text = ", ".join(map(str, config.digits))
        title = (f"# lenet_np analysis: {ctx.layer}, digit{'s' if len(config.digits) > 1 else ''} "
                 f"{digits_text}")
        markdown = "\n".join([title, "", "## Provenance", "", provenance_markdown(prov), "",
                              core_md, *extra_md])
        writer.write_text("report.md", markdown + "\n")
        writer.write_json("report.json", {"provenance": prov, **record, **extra})
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    print(terminal)
    print(f"report written to {config.out_dir()}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
