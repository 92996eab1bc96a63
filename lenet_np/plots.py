"""Figures of the analysis report, each a function that returns a matplotlib Figure.

The report writer saves them as PNG beside report.md. Grids of small multiples share their
bins and axes, so panels can be compared at a glance.
"""
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

DIGIT_COLOURS = plt.get_cmap("tab10")


def _grid(n_panels, panel_size=1.9, max_cols=6):
    cols = min(max_cols, n_panels)
    rows = math.ceil(n_panels / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(cols * panel_size, rows * panel_size * 0.8),
                             squeeze=False)
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


def histogram_grid(values_by_digit, title, unit="filter", log=False):
    """One panel per filter; in each, a histogram of that filter's values per digit.

    values_by_digit: {digit: [values of filter 0, values of filter 1, ...]} (1-D arrays).
    Every panel uses the same bins, spanning all values shown.
    """
    digits = list(values_by_digit)
    n_filters = len(values_by_digit[digits[0]])
    everything = [v for per_digit in values_by_digit.values() for v in per_digit if v.size]
    low = min((float(v.min()) for v in everything), default=0.0)
    high = max((float(v.max()) for v in everything), default=1.0)
    bins = np.linspace(low, high if high > low else low + 1.0, 41)
    fig, axes = _grid(n_filters)
    for f, ax in zip(range(n_filters), axes):
        for d in digits:
            values = values_by_digit[d][f]
            if len(digits) == 1:
                ax.hist(values, bins=bins, color="tab:blue", log=log)
            else:
                ax.hist(values, bins=bins, histtype="step", color=DIGIT_COLOURS(d % 10),
                        label=str(d), log=log)
        ax.set_title(f"{unit} {f}", fontsize=8)
        ax.tick_params(labelsize=6)
    if len(digits) > 1:
        fig.legend(*axes[0].get_legend_handles_labels(), title="digit", loc="upper right",
                   fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def zero_share_bars(shares_by_digit, relu, unit="filter"):
    """Share of zeros per filter (the study's Fig. 6), grouped by digit, with each average."""
    digits = list(shares_by_digit)
    n_filters = len(shares_by_digit[digits[0]])
    width = 0.8 / len(digits)
    fig, ax = plt.subplots(figsize=(max(6, n_filters * 0.45), 3.2))
    x = np.arange(n_filters)
    for i, d in enumerate(digits):
        shares = np.asarray(shares_by_digit[d]) * 100
        colour = DIGIT_COLOURS(d % 10)
        ax.bar(x + (i - (len(digits) - 1) / 2) * width, shares, width, color=colour,
               label=f"digit {d} (mean {shares.mean():.1f}%)")
        ax.axhline(shares.mean(), color=colour, linestyle="--", linewidth=0.8)
    ax.set_xticks(x)
    ax.set_xlabel(unit)
    ax.set_ylabel(f"share of zeros in {relu} (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=min(5, len(digits)))
    fig.tight_layout()
    return fig


def digit_filter_heatmap(matrix, digits, title, colour_label, unit="filter", fmt="{:.0f}"):
    """A digit × filter heatmap with the values written in the cells."""
    matrix = np.asarray(matrix, dtype=float)
    fig, ax = plt.subplots(figsize=(max(6, matrix.shape[1] * 0.5), len(digits) * 0.45 + 1.2))
    image = ax.imshow(matrix, aspect="auto", cmap="viridis")
    ax.set_yticks(range(len(digits)))
    ax.set_yticklabels([str(d) for d in digits])
    ax.set_ylabel("digit")
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_xlabel(unit)
    if matrix.size <= 400:
        for (r, c), value in np.ndenumerate(matrix):
            ax.text(c, r, fmt.format(value), ha="center", va="center", fontsize=6,
                    color="white" if value < np.nanmean(matrix) else "black")
    fig.colorbar(image, ax=ax, label=colour_label)
    ax.set_title(title)
    fig.tight_layout()
    return fig
