"""The similarity section: measures against direct formulas, blocked summaries against a loop
over pairs, prototypes against a direct count, receptive fields by perturbing one pixel, and
the CLI end to end."""
import json

import numpy as np
import pytest

from lenet_np import similarity as sim
from lenet_np.checkpoint import save_checkpoint
from lenet_np.errors import LenetError
from lenet_np.model import Architecture, LeNet

from tests.conftest import assert_one_line_error, run_cli, write_idx_folder


def test_identical_maps_give_one_and_disjoint_masks_zero():
    a = np.arange(64, dtype=np.float64).reshape(8, 8) - 20
    assert sim.cosine(a, a) == pytest.approx(1.0)
    assert sim.pearson(a, a) == pytest.approx(1.0)
    assert sim.pearson(a, 3 * a + 7) == pytest.approx(1.0)
    assert sim.pearson(a, -a) == pytest.approx(-1.0)
    left = np.zeros((8, 8), bool)
    left[:, :4] = True
    assert sim.mask_iou(left, left) == 1.0
    assert sim.mask_iou(left, ~left) == 0.0


def test_shifted_map_against_direct_formula():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((8, 8))
    b = np.roll(a, 1, axis=1)
    expected = (a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum())
    assert sim.cosine(a, b) == pytest.approx(expected)
    ac, bc = a - a.mean(), b - b.mean()
    assert sim.pearson(a, b) == pytest.approx((ac * bc).sum() / np.sqrt((ac ** 2).sum() *
                                                                         (bc ** 2).sum()))
    mask = np.zeros((8, 8), bool)
    mask[2:5, 2:5] = True                                   # 9 positions
    shifted = np.roll(mask, 1, axis=1)                      # overlap 6, union 12
    assert sim.mask_iou(mask, shifted) == pytest.approx(6 / 12)


def test_undefined_cases_are_nan():
    empty = np.zeros((8, 8), bool)
    assert np.isnan(sim.mask_iou(empty, empty))
    assert np.isnan(sim.cosine(np.zeros(64), np.ones(64)))
    assert np.isnan(sim.pearson(np.full(64, 3.0), np.arange(64.0)))


def random_maps(n, n_filters=3, seed=0):
    rng = np.random.default_rng(seed)
    pre = rng.standard_normal((n, n_filters, 64)).astype(np.float32) + 0.5
    masks = pre > 0.8
    masks[:, 2] = False                                     # a dead filter: IoU always 0/0
    masks[: n // 2, 1] = False                              # some empty masks
    labels = np.sort(rng.integers(0, 10, n))
    return pre, masks, labels


def direct_pairs(pre_left, pre, masks_left, masks, labels, digit, pairs, filt, measure):
    """Every value of one measure over the pairs i < j, by the direct formulas."""
    function = {"cosine": sim.cosine, "pearson": sim.pearson, "iou": sim.mask_iou}[measure]
    values = []
    for i in range(len(labels)):
        for j in range(i + 1, len(labels)):
            a, b = labels[i], labels[j]
            if pairs == "within" and not a == b == digit:
                continue
            if pairs == "across" and not (a != b and digit in (a, b)):
                continue
            if measure == "iou":
                values.append(function(masks_left[i, filt], masks[j, filt]))
            else:
                values.append(function(pre_left[i, filt], pre[j, filt]))
    return np.array(values)


@pytest.mark.parametrize("shifted", [False, True])
def test_blocked_summary_matches_a_loop_over_pairs(shifted):
    pre, masks, labels = random_maps(60)
    prepared = sim.prepare_maps(pre, masks)
    pre_left, masks_left, left = pre, masks, None
    if shifted:
        pre_left = np.roll(pre, 3, axis=2)
        masks_left = np.roll(masks, 3, axis=2)
        left = sim.prepare_maps(pre_left, masks_left)
    stats = sim.accumulate_pairs(prepared, labels, left=left, block_size=16)
    rows = sim.summary_rows(stats, [int(labels[0]), 5])
    for row in rows:
        if row["filter"] == "all":
            continue
        values = direct_pairs(pre_left, pre, masks_left, masks, labels, row["digit"],
                              row["pairs"], row["filter"], row["measure"])
        defined = values[~np.isnan(values)]
        assert row["n_pairs"] == len(defined), row
        assert row["n_undefined"] == len(values) - len(defined), row
        if len(defined):
            assert row["mean"] == pytest.approx(defined.mean(), abs=1e-5), row
            for key, q in (("q1", 25), ("median", 50), ("q3", 75)):
                # Histogram quantiles are exact to within one bin (0.002), plus the gap
                # between neighbouring order statistics that np.percentile interpolates.
                low, high = np.percentile(defined, [max(q - 100 / len(defined), 0),
                                                    min(q + 100 / len(defined), 100)])
                assert low - 0.0021 <= row[key] <= high + 0.0021, (row, key)
        else:
            assert np.isnan(row["mean"]) and np.isnan(row["median"])


def test_linear_means_equal_the_pairwise_means():
    pre, masks, labels = random_maps(50, seed=3)
    pre[4, 0] = 0.0                                        # a zero map: cosine 0/0
    prepared = sim.prepare_maps(pre, masks)
    pairwise = sim.accumulate_pairs(prepared, labels)
    linear = sim.accumulate_pairs(prepared, labels, iou_only=True)
    sim.linear_pair_means(prepared, labels, linear)
    for key in ("sums", "counts", "undefined"):
        np.testing.assert_allclose(linear.unordered(key)[..., :2],
                                   pairwise.unordered(key)[..., :2], atol=1e-4)
    np.testing.assert_array_equal(linear.hist[..., 2, :], pairwise.hist[..., 2, :])


def test_digit_matrix_and_undefined_counts_for_a_dead_filter():
    pre, masks, labels = random_maps(40, seed=5)
    stats = sim.accumulate_pairs(sim.prepare_maps(pre, masks), labels)
    per_filter, overall = sim.digit_matrix(stats, "iou")
    assert per_filter.shape == (3, 10, 10) and overall.shape == (10, 10)
    assert np.all(np.isnan(per_filter[2]))                  # dead: NaN, never 0 or 1
    n = len(labels)
    assert stats.undefined[..., 2, 2].sum() == n * (n - 1) // 2
    np.testing.assert_allclose(overall, overall.T)


def test_histogram_quantiles_against_percentile():
    values = np.random.default_rng(1).uniform(-1, 1, 5000)
    hist = np.histogram(values, bins=sim.N_BINS, range=(-1, 1))[0]
    quantiles = sim.histogram_quantiles(hist, [0.25, 0.5, 0.75])
    np.testing.assert_allclose(quantiles, np.percentile(values, [25, 50, 75]), atol=0.003)
    assert np.all(np.isnan(sim.histogram_quantiles(np.zeros(10), [0.5])))


def test_prototype_precision_and_recall_against_a_direct_count():
    rng = np.random.default_rng(2)
    masks = rng.random((30, 4, 16)) < 0.4
    prototype = rng.random((4, 16)) < 0.5
    prototype[3] = False                                    # empty: precision 0/0
    scores = sim.agreement_scores(sim.mask_agreement(masks, prototype))
    for f in range(4):
        tp = fp = fn = tn = 0
        for image in masks:
            for real, predicted in zip(image[f], prototype[f]):
                tp += real and predicted
                fp += predicted and not real
                fn += real and not predicted
                tn += not real and not predicted
        assert scores["accuracy"][f] == pytest.approx((tp + tn) / (tp + fp + fn + tn))
        if tp + fp:
            assert scores["precision"][f] == pytest.approx(tp / (tp + fp))
        else:
            assert np.isnan(scores["precision"][f])
        assert scores["recall"][f] == pytest.approx(tp / (tp + fn))
    assert sim.prototype_masks(np.array([0.49, 0.5, 1.0])).tolist() == [False, True, True]


def test_binary_entropy():
    np.testing.assert_allclose(sim.binary_entropy(np.array([0.0, 0.5, 1.0, 0.25])),
                               [0.0, 1.0, 0.0, 0.8112781244591328])


def positive_model():
    """A LeNet whose conv weights are all positive: a brighter pixel raises every conv1
    output that sees it, so every max-pool window holding one of those rises too."""
    model = LeNet.initialize(Architecture(conv1=2, conv2=3, fc=(8,)), seed=0)
    for name in ("conv1.weight", "conv2.weight"):
        model.params[name] = np.abs(model.params[name]) + 0.1
    return model


@pytest.mark.parametrize("layer, size", [("conv1", 5), ("conv2", 14), ("relu2", 14)])
def test_receptive_field_from_the_architecture(layer, size):
    model = positive_model()
    assert sim.receptive_field(model, layer)[0] == size
    boxes = sim.receptive_field_boxes(model, layer)
    x = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
    base = model.forward(x)[1][layer][0]
    for y, xx in [(0, 0), (13, 6), (27, 27), (9, 20), (14, 1)]:
        bumped = x.copy()
        bumped[0, 0, y, xx] += 100.0
        changed = np.any(model.forward(bumped)[1][layer][0] != base, axis=0)   # (H, W)
        inside = ((boxes[..., 0] <= y) & (y < boxes[..., 1]) &
                  (boxes[..., 2] <= xx) & (xx < boxes[..., 3]))
        np.testing.assert_array_equal(changed, inside)


def test_patch_ink_against_slicing():
    images = np.random.default_rng(4).integers(0, 256, (3, 28, 28)).astype(np.uint8)
    boxes = sim.receptive_field_boxes(positive_model(), "conv2")
    ink = sim.patch_ink(images, boxes)
    for n, i, j in [(0, 0, 0), (1, 7, 3), (2, 5, 7)]:
        y0, y1, x0, x1 = boxes[i, j]
        assert ink[n, i, j] == pytest.approx(images[n, y0:y1, x0:x1].sum() / 255.0)


def test_shift_images_fills_with_zero():
    image = np.arange(16).reshape(1, 4, 4)
    moved = sim.shift_images(image, np.array([1]), np.array([-2]))
    np.testing.assert_array_equal(moved[0], [[0, 0, 0, 0], [2, 3, 0, 0], [6, 7, 0, 0],
                                              [10, 11, 0, 0]])


def test_layers_other_than_conv_or_relu_are_refused(small_model):
    assert sim.analysed_layers(small_model, "relu1") == ("conv1", "relu1")
    assert sim.analysed_layers(small_model, "conv2") == ("conv2", "relu2")
    with pytest.raises(LenetError, match="pool2"):
        sim.analysed_layers(small_model, "pool2")


def test_cli_end_to_end(tmp_path, small_model):
    data = write_idx_folder(tmp_path / "idx", n_train=300, n_test=200)
    model_path = tmp_path / "small.npz"
    save_checkpoint(model_path, small_model, meta={})
    out = tmp_path / "report"
    result = run_cli("lenet_np.analyze", "--model", model_path, "--data-dir", data, "--digit",
                     "0,3", "--n", "5", "--similarity", "--shifts", "1", "--pair-sample", "4",
                     "--out", out)
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "report.json").read_text())
    section = record["similarity_report"]
    assert section["layer"] == "conv2" and section["relu"] == "relu2"
    assert "Verdict" in (out / "report.md").read_text()
    header = (out / "similarity_conv2.csv").read_text().splitlines()[0]
    assert header == ",".join(["digit", "filter", "measure", "pairs", "shift", "images",
                               "n_pairs", "n_undefined", "mean", "median", "q1", "q3"])
    assert (out / "prototype_relu2.csv").is_file()
    assert section["ink"]["receptive_field"] == 14
    bad = run_cli("lenet_np.analyze", "--model", model_path, "--data-dir", data,
                  "--similarity", "--layer", "pool1", "--out", tmp_path / "bad")
    assert_one_line_error(bad, "--similarity", "pool1")
