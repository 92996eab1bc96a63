"""Per-filter statistics of a layer's output, the study's Tables 1 and 2 and Fig. 6.

A layer output of shape (N, C, H, W) has C filters, each described by its N×H×W values; a
dense output (N, U) has U units, each described by its N values. Variance is the population
variance (ddof=0); medians and quartiles are exact (numpy's percentile, linear interpolation
between order statistics).
"""
import numpy as np

STAT_COLUMNS = ["n_values", "mean", "median", "variance", "std", "min", "q1", "q3", "max",
                "negative_share"]


def per_filter_values(act):
    """(N, C, H, W) or (N, U) -> (C, N*H*W) or (U, N): row f holds every value of filter f."""
    n_img, n_filt = act.shape[:2]
    return np.moveaxis(act.reshape(n_img, n_filt, -1), 1, 0).reshape(n_filt, -1)


def describe(values):
    """Statistics of one filter's values (1-D), in float64 whatever the input dtype."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return {"n_values": 0, **{k: float("nan") for k in STAT_COLUMNS[1:]}}
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    variance = values.var()
    return {"n_values": int(values.size), "mean": float(values.mean()), "median": float(median),
            "variance": float(variance), "std": float(np.sqrt(variance)),
            "min": float(values.min()), "q1": float(q1), "q3": float(q3),
            "max": float(values.max()), "negative_share": float(np.mean(values < 0))}


def filter_stats(act, nonzero_only=False):
    """Statistics of every filter of ``act``: a list of dicts with a ``filter`` key first.

    With ``nonzero_only``, each filter's zeros are left out first (the study's Table 2 on a
    ReLU output); a filter that is all zeros gets ``n_values`` 0 and NaN statistics.
    """
    rows = []
    for f, values in enumerate(per_filter_values(act)):
        if nonzero_only:
            values = values[values != 0]
        rows.append({"filter": f, **describe(values)})
    return rows


def zero_shares(act):
    """Share of exact zeros per filter of ``act``: (C,) float64."""
    return np.mean(per_filter_values(act) == 0, axis=1)
