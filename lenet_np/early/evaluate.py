"""Run schemes on a split and measure them: operation counts, accuracy, skip-mask quality.

:func:`collect` runs the dense network once (``model.forward``) and keeps what the schemes
and the measures need; :func:`evaluate` runs one scheme on the layer's input, finishes the
network with the layer functions (:func:`.base.forward_from`) and compares with dense;
:func:`summary_rows` turns the evaluations into the rows of ``early_<layer>.csv``.
"""
from dataclasses import dataclass

import numpy as np

from ..flops import network_macs
from .base import LayerRun, TrainingData, forward_from
from .oracle import window_argmax_mask

ROW_COLUMNS = [
    "scheme", "family", "exact", "tau", "bits", "digit", "images",
    "layer_macs", "predictor_macs", "lowbit_macs", "predictor_adds", "layer_macs_equiv",
    "network_macs_equiv",
    "layer_saved", "network_saved", "share_of_relu_oracle", "share_of_pool_oracle",
    "comparisons", "accuracy", "accuracy_change", "changed_predictions", "max_logit_diff",
    "skip_precision", "skip_recall"]


@dataclass
class Reference:
    """The dense network on one split, at the analysed layer."""
    layer_input: np.ndarray      # (N, C, H, W) float32
    zero: np.ndarray             # (N, F, OH, OW) bool, the ReLU's zeros
    discarded: np.ndarray        # (N, F, OH, OW) bool, outputs that do not reach the max-pool
    logits: np.ndarray           # (N, K)
    labels: np.ndarray           # (N,)


def collect(model, spec, split, index=None, batch_size=1000, keep_relu=True):
    """Dense forward passes over ``split`` (images ``index``, default all) -> Reference."""
    index = np.arange(len(split.labels)) if index is None else np.asarray(index)
    parts = {"input": [], "zero": [], "discarded": [], "logits": []}
    for start in range(0, len(index), batch_size):
        logits, acts = model.forward(split.inputs(index[start:start + batch_size]))
        relu = acts[spec.relu]
        parts["input"].append(acts[spec.input_name])
        parts["zero"].append(relu == 0)
        if spec.pool and keep_relu:
            parts["discarded"].append(~window_argmax_mask(relu, spec.pool_size))
        parts["logits"].append(logits)
    joined = {k: np.concatenate(v) if v else None for k, v in parts.items()}
    return Reference(layer_input=joined["input"], zero=joined["zero"],
                     discarded=joined["discarded"] if spec.pool else joined["zero"],
                     logits=joined["logits"], labels=split.labels[index].astype(np.int64))


def training_data(reference):
    """The TrainingData the schemes are fitted on, from a Reference of the training split."""
    return TrainingData(layer_input=reference.layer_input, zero=reference.zero,
                        labels=reference.labels)


@dataclass
class Evaluation:
    """One scheme run over a whole split."""
    scheme: object
    run: LayerRun
    logits: np.ndarray          # (N, K)


def evaluate(model, scheme, reference, batch_size=1000):
    """Run ``scheme`` over ``reference.layer_input`` in batches, then the rest of the network."""
    runs, logits = [], []
    for start in range(0, len(reference.labels), batch_size):
        run = scheme.run(reference.layer_input[start:start + batch_size])
        logits.append(forward_from(model, scheme.spec, run.relu_out))
        run.relu_out = None                     # the logits are all that is kept of it
        runs.append(run)
    return Evaluation(scheme=scheme, run=_concatenate(runs), logits=np.concatenate(logits))


def _concatenate(runs):
    def join(name):
        values = [getattr(r, name) for r in runs]
        return None if values[0] is None else np.concatenate(values)
    return LayerRun(relu_out=None, macs=join("macs"), comparisons=join("comparisons"),
                    predictor_macs=join("predictor_macs"), lowbit_macs=join("lowbit_macs"),
                    bits=runs[0].bits, skip_mask=join("skip_mask"),
                    predictor_adds=join("predictor_adds"))


def _mean(values, chosen):
    return float(values[chosen].mean()) if values is not None else 0.0


def summary_rows(model, evaluations, reference, digits=None):
    """Rows of ``early_<layer>.csv``: one per scheme for all images, then one per digit.

    Columns (per image, means over the images of the row): see ``ROW_COLUMNS`` and the
    README; savings are shares of the dense layer's (or network's) MACs, and the oracle
    shares divide a scheme's layer saving by the oracle's on the same images.
    """
    spec = evaluations[0].scheme.spec
    dense_layer = spec.dense_macs
    dense_network = network_macs(model)
    labels = reference.labels
    dense_pred = reference.logits.argmax(axis=1)
    groups = [("all", np.ones(len(labels), bool))]
    groups += [(d, labels == d) for d in (digits if digits is not None else range(10))
               if np.any(labels == d)]
    rows = []
    oracle_saved = {}
    for group, chosen in groups:
        for ev in evaluations:
            scheme, run = ev.scheme, ev.run
            equiv = run.equivalent_macs()
            layer_equiv = float(equiv[chosen].mean())
            pred = ev.logits.argmax(axis=1)
            row = {"scheme": scheme.name, "family": scheme.family, "exact": scheme.exact,
                   "tau": scheme.params.get("tau", ""), "bits": scheme.params.get("bits", ""),
                   "digit": group, "images": int(chosen.sum()),
                   "layer_macs": _mean(run.macs, chosen),
                   "predictor_macs": _mean(run.predictor_macs, chosen),
                   "lowbit_macs": _mean(run.lowbit_macs, chosen),
                   "predictor_adds": _mean(run.predictor_adds, chosen),
                   "layer_macs_equiv": layer_equiv,
                   "network_macs_equiv": dense_network - dense_layer + layer_equiv,
                   "layer_saved": 1 - layer_equiv / dense_layer,
                   "network_saved": (dense_layer - layer_equiv) / dense_network,
                   "comparisons": _mean(run.comparisons, chosen),
                   "accuracy": float(np.mean(pred[chosen] == labels[chosen])),
                   "accuracy_change": float(np.mean(pred[chosen] == labels[chosen])
                                            - np.mean(dense_pred[chosen] == labels[chosen])),
                   "changed_predictions": float(np.mean(pred[chosen] != dense_pred[chosen])),
                   "max_logit_diff": float(np.abs(ev.logits[chosen]
                                                  - reference.logits[chosen]).max()),
                   "skip_precision": "", "skip_recall": ""}
            if run.skip_mask is not None:
                truth = (reference.discarded if scheme.reference == "pool"
                         else reference.zero)[chosen]
                skipped = run.skip_mask[chosen]
                hits = np.count_nonzero(skipped & truth)
                row["skip_precision"] = hits / max(np.count_nonzero(skipped), 1)
                row["skip_recall"] = hits / max(np.count_nonzero(truth), 1)
            if scheme.family in ("oracle_relu", "oracle_pool"):
                oracle_saved[(scheme.family, group)] = row["layer_saved"]
            rows.append(row)
    for row in rows:
        for family, column in (("oracle_relu", "share_of_relu_oracle"),
                               ("oracle_pool", "share_of_pool_oracle")):
            saved = oracle_saved.get((family, row["digit"]))
            row[column] = row["layer_saved"] / saved if saved else ""
    return rows
