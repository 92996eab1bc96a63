"""Figures of the analysis report, each a function that returns a matplotlib Figure.

The report writer saves them as PNG beside report.md. Grids of small multiples share their
bins and axes, so panels can be compared at a glance.
"""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

DIGIT_COLOURS = plt.get_cmap("tab10")


def _grid(n_panels, panel_size=1.9, max_cols=6):
    """Small multiples sharing the x axis. The spacing is fixed rather than computed by
    tight_layout, which took most of the report's time on grids of a hundred panels."""
    cols = min(max_cols, n_panels)
    rows = math.ceil(n_panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * panel_size, rows * panel_size * 0.8 + 0.6),
                             squeeze=False, sharex=True)
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.8 / (rows + 1), top=1 - 0.5 / (rows + 1),
                        hspace=0.45, wspace=0.35)
    for ax in axes.flat[n_panels:]:
        ax.axis("off")
    return fig, axes.flat


def input_montage(images_by_digit, max_per_digit=100):
    """The selected input images (the study's Fig. 2): one block of rows per digit."""
    per_row = 10 if len(images_by_digit) == 1 else 20
    blocks = []
    for images in images_by_digit.values():
        images = images[:max_per_digit if len(images_by_digit) == 1 else per_row]
        n_rows = math.ceil(len(images) / per_row)
        canvas = np.zeros((n_rows * 29 + 1, per_row * 29 + 1))
        for i, image in enumerate(images):
            r, c = divmod(i, per_row)
            canvas[1 + r * 29:1 + r * 29 + 28, 1 + c * 29:1 + c * 29 + 28] = image
        blocks.append(canvas)
    montage = np.vstack(blocks)
    fig, ax = plt.subplots(figsize=(per_row * 0.45, montage.shape[0] / 29 * 0.45 + 0.4))
    ax.imshow(montage, cmap="gray_r", interpolation="nearest")
    ax.set_xticks([])
    digits = list(images_by_digit)
    if len(digits) > 1:
        ax.set_yticks([(i + 0.5) * blocks[0].shape[0] for i in range(len(digits))])
        ax.set_yticklabels([f"digit {d}" for d in digits])
    else:
        ax.set_yticks([])
        ax.set_title(f"digit {digits[0]}: the {len(images_by_digit[digits[0]])} input images")
    return fig


# Above this many filters (dense layers: units), histograms are drawn as one heatmap per digit
# instead of one panel per filter: 288 panels would neither read well nor render in seconds.
MAX_HISTOGRAM_PANELS = 36


def _shared_bins(values_by_digit, n_bins=40):
    everything = [v for per_digit in values_by_digit.values() for v in per_digit if v.size]
    low = min((float(v.min()) for v in everything), default=0.0)
    high = max((float(v.max()) for v in everything), default=1.0)
    return np.linspace(low, high if high > low else low + 1.0, n_bins + 1)


def histogram_grid(values_by_digit, title, unit="filter", log=False):
    """One panel per filter; in each, a histogram of that filter's values per digit.

    values_by_digit: {digit: [values of filter 0, values of filter 1, ...]} (1-D arrays).
    Every panel uses the same bins, spanning all values shown. Layers with more than
    MAX_HISTOGRAM_PANELS filters get :func:`histogram_heatmaps` instead.
    """
    digits = list(values_by_digit)
    n_filters = len(values_by_digit[digits[0]])
    if n_filters > MAX_HISTOGRAM_PANELS:
        return histogram_heatmaps(values_by_digit, title, unit)
    bins = _shared_bins(values_by_digit)
    fig, axes = _grid(n_filters)
    for f, ax in zip(range(n_filters), axes):
        for d in digits:
            counts, _ = np.histogram(values_by_digit[d][f], bins=bins)
            if len(digits) == 1:
                ax.stairs(counts, bins, fill=True, color="tab:blue")
            else:
                ax.stairs(counts, bins, color=DIGIT_COLOURS(d % 10), label=str(d))
        if log:
            ax.set_yscale("symlog", linthresh=1)
        ax.set_title(f"{unit} {f}", fontsize=8)
        ax.tick_params(labelsize=6)
    if len(digits) > 1:
        fig.legend(*axes[0].get_legend_handles_labels(), title="digit", loc="lower center",
                   fontsize=7, ncol=len(digits))
    fig.suptitle(title, fontsize=10)
    return fig


def histogram_heatmaps(values_by_digit, title, unit="unit"):
    """Histograms of many filters at once: per digit a heatmap, one row per filter, one
    column per (shared) bin, colour log10(1 + count)."""
    digits = list(values_by_digit)
    bins = _shared_bins(values_by_digit)
    n_filters = len(values_by_digit[digits[0]])
    cols = min(5, len(digits))
    rows = math.ceil(len(digits) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 2.6, rows * max(2.5, n_filters / 40)),
                             squeeze=False, sharey=True)
    extent = (bins[0], bins[-1], n_filters - 0.5, -0.5)
    for ax, d in zip(axes.flat, digits):
        counts = np.array([np.histogram(v, bins=bins)[0] for v in values_by_digit[d]])
        image = ax.imshow(np.log10(1 + counts), aspect="auto", extent=extent, cmap="magma",
                          interpolation="nearest")
        ax.set_title(f"digit {d}", fontsize=8)
        ax.tick_params(labelsize=6)
    for ax in axes.flat[len(digits):]:
        ax.axis("off")
    for ax in axes[:, 0]:
        ax.set_ylabel(unit)
    fig.colorbar(image, ax=axes, label="log10(1 + count)", shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def zero_share_bars(shares_by_digit, relu, unit="filter"):
    """Share of zeros per filter (the study's Fig. 6), grouped by digit, with each average.

    Past a few hundred bars (dense layers, many digits) each digit becomes a line instead.
    """
    digits = list(shares_by_digit)
    n_filters = len(shares_by_digit[digits[0]])
    as_lines = n_filters * len(digits) > 400
    width = 0.8 / len(digits)
    fig, ax = plt.subplots(figsize=(min(14, max(6, n_filters * 0.45)), 3.6))
    x = np.arange(n_filters)
    for i, d in enumerate(digits):
        shares = np.asarray(shares_by_digit[d]) * 100
        colour = DIGIT_COLOURS(d % 10)
        label = f"digit {d} (mean {shares.mean():.1f}%)"
        if as_lines:
            ax.plot(x, shares, color=colour, linewidth=0.8, label=label)
        else:
            ax.bar(x + (i - (len(digits) - 1) / 2) * width, shares, width, color=colour,
                   label=label)
        ax.axhline(shares.mean(), color=colour, linestyle="--", linewidth=0.8)
    ax.set_xlim(-0.6, n_filters - 0.4)
    _integer_ticks(ax.xaxis, n_filters)
    ax.set_xlabel(unit)
    ax.set_ylabel(f"share of zeros in {relu} (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=min(5, len(digits)), loc="upper center",
              bbox_to_anchor=(0.5, -0.2))
    fig.subplots_adjust(bottom=0.3 + 0.05 * math.ceil(len(digits) / 5))
    return fig


def _integer_ticks(axis, n, max_labels=40):
    """A tick per index when there are few, else a readable subset."""
    if n <= max_labels:
        axis.set_ticks(range(n))
    else:
        axis.set_major_locator(MaxNLocator(nbins=16, integer=True))


def digit_filter_heatmap(matrix, digits, title, colour_label, unit="filter", fmt="{:.0f}"):
    """A digit × filter heatmap with the values written in the cells."""
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(min(14, max(6, matrix.shape[1] * 0.5)),
                                    len(digits) * 0.45 + 1.2))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(digits)))
    ax.set_yticklabels([str(d) for d in digits])
    ax.set_ylabel("digit")
    _integer_ticks(ax.xaxis, matrix.shape[1])
    ax.set_xlabel(unit)
    if matrix.size <= 400:
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=6,
                    color="white" if value < np.nanmean(matrix) else "black")
    fig.colorbar(image, ax=ax, label=colour_label)
    ax.set_title(title)
    fig.tight_layout()
    return fig
