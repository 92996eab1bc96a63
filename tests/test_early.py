"""Early prediction: kernels against naive references, exact schemes against dense, counts
against independent counts, oracle bounds, and bad options."""
import numpy as np
import pytest

from lenet_np import load_model, reference as layer_reference
from lenet_np.checkpoint import DEFAULT_MODEL_PATH
from lenet_np.data import load_split
from lenet_np.early import (ClassMasks, Dense, LowBit, LowBitExact, PoolExact, PoolOracle,
                            ReluOracle, SnapeaExact, conv_spec, standard_schemes)
from lenet_np.early import reference
from lenet_np.early.base import fitted_term_order, live_channels
from lenet_np.early.direct import (conv_relu_interval_pool, conv_relu_masked, conv_relu_pool,
                                   conv_relu_pool_window, conv_relu_snapea, lowbit_conv,
                                   lowbit_intervals, receptive_field_bounds, term_order)
from lenet_np.early.evaluate import collect, evaluate, summary_rows, training_data
from lenet_np.early.lowbit_exact import lowbit_copy
from lenet_np.early.pool_exact import guaranteed_input_bound
from lenet_np.errors import LenetError
from lenet_np.flops import cost_table, network_macs
from lenet_np.layers import conv_forward, maxpool_forward
from lenet_np.model import Architecture, LeNet
from tests.conftest import assert_one_line_error, run_cli


def random_case(seed, n=2, c=3, f=4, size=8, k=3):
    """Non-negative inputs with exact zeros (as after a ReLU) and a random conv layer."""
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal((n, c, size, size)), 0).astype(np.float32)
    weight = rng.standard_normal((f, c, k, k)).astype(np.float32)
    bias = (rng.standard_normal(f) * 0.5).astype(np.float32)
    return x, weight, bias, (f, size - k + 1, size - k + 1)


def relu_conv(x, weight, bias):
    return np.maximum(layer_reference.conv_forward_naive(x.astype(np.float64), weight, bias), 0)


# --- kernels against naive references --------------------------------------------------------

@pytest.mark.parametrize("seed", range(6))
def test_masked_kernel_is_relu_conv_and_counts_its_outputs(seed):
    x, weight, bias, shape = random_case(seed)
    mask = np.random.default_rng(seed).random((len(x), *shape)) < 0.6
    for sort in (False, True):
        order = term_order(weight, *x.shape[2:], sort=sort)
        out, macs = conv_relu_masked(x, order, bias, shape, mask)
        np.testing.assert_allclose(out, np.where(mask, relu_conv(x, weight, bias), 0),
                                   rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(macs, mask.reshape(len(x), -1).sum(1) * weight[0].size)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("chunk", [1, 3, 4])
def test_snapea_kernel_matches_naive(seed, chunk):
    x, weight, bias, shape = random_case(seed)
    scale = np.random.default_rng(seed).random(x.shape[1]) + 0.1
    order = term_order(weight, *x.shape[2:], channel_scale=scale)
    out, macs, checks = conv_relu_snapea(x, order, bias, shape, chunk=chunk)
    ref_out, ref_macs, ref_checks = reference.snapea_naive(x, order, bias, shape, chunk)
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(macs, ref_macs)
    np.testing.assert_array_equal(checks, ref_checks)
    np.testing.assert_allclose(out, relu_conv(x, weight, bias), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("slots", ["channel", "row"])
def test_pool_kernel_matches_naive_and_keeps_the_max_pool(seed, slots):
    x, weight, bias, shape = random_case(seed, size=9)           # 7×7 outputs: a ragged edge
    order = term_order(weight, *x.shape[2:], slots=slots)
    bound, _ = receptive_field_bounds(x, 3, 3, slots)
    mask = np.random.default_rng(seed).random((len(x), *shape)) < 0.8
    for compute_mask in (None, mask):
        got = conv_relu_pool(x, order, bias, shape, bound, 2, compute_mask)
        ref = reference.pool_exact_naive(x, order, bias, shape, bound, 2, compute_mask)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5)
        for counted, expected in zip(got[1:], ref[1:]):
            np.testing.assert_array_equal(counted, expected)
    full = conv_relu_pool(x, order, bias, shape, bound, 2)[0]
    np.testing.assert_allclose(maxpool_forward(full)[0],
                               maxpool_forward(relu_conv(x, weight, bias))[0], rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("chunk", [1, 4])
def test_pool_window_kernel_matches_naive_and_keeps_the_max_pool(seed, chunk):
    x, weight, bias, shape = random_case(seed, size=9)           # 7×7 outputs: a ragged edge
    order = term_order(weight, *x.shape[2:], channel_scale=x.mean(axis=(0, 2, 3)) + 0.1)
    mask = np.random.default_rng(seed).random((len(x), *shape)) < 0.8
    for compute_mask in (None, mask):
        got = conv_relu_pool_window(x, order, bias, shape, 2, compute_mask, chunk)
        ref = reference.pool_window_naive(x, order, bias, shape, 2, compute_mask, chunk)
        np.testing.assert_allclose(got[0], ref[0], rtol=1e-5, atol=1e-5)
        for counted, expected in zip(got[1:], ref[1:]):
            np.testing.assert_array_equal(counted, expected)
    full = conv_relu_pool_window(x, order, bias, shape, 2, chunk=chunk)[0]
    np.testing.assert_allclose(maxpool_forward(full)[0],
                               maxpool_forward(relu_conv(x, weight, bias))[0], rtol=1e-5,
                               atol=1e-5)


def test_term_order_prunes_dead_channels_and_orders_by_expected_size():
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((3, 4, 2, 2)).astype(np.float32)
    live = np.array([True, False, True, True])
    scale = np.array([1.0, 5.0, 0.01, 2.0])
    order = term_order(weight, 5, 5, live=live, channel_scale=scale)
    assert order.weights.shape == (3, 12) and order.pruned_terms == 4
    channel = order.offsets // 25                                  # (F, K) input channel
    assert not (channel == 1).any()
    for f in range(3):
        n_pos = order.n_positive[f]
        assert (order.weights[f, :n_pos] > 0).all() and (order.weights[f, n_pos:] <= 0).all()
        # The negative terms come by increasing weight × the channel's mean input.
        expected = order.weights[f, n_pos:] * scale[channel[f, n_pos:]]
        assert (np.diff(expected) >= 0).all()
        # The groups are the live channels only.
        assert sorted(order.group_slot[f]) == [0, 2, 3]
        assert order.group_end[f, -1] == n_pos


def test_receptive_field_bounds_match_naive():
    x, *_ = random_case(3, size=10)
    bound, comparisons = receptive_field_bounds(x, 3, 4)
    np.testing.assert_array_equal(bound, reference.receptive_field_max_naive(x, 3, 4))
    # Separable max: (KW-1) per row segment, then (KH-1) per output, per channel.
    assert comparisons[0] == 3 * (10 * 7 * 3 + 8 * 7 * 2)
    rows, _ = receptive_field_bounds(x, 3, 4, "row")
    np.testing.assert_array_equal(rows.reshape(2, 3, 3, 8, 7).max(axis=2), bound)


def test_lowbit_kernel_matches_naive():
    rng = np.random.default_rng(0)
    xq = rng.integers(0, 16, (2, 3, 7, 7))
    wq = rng.integers(-7, 8, (4, 3, 3, 3))
    bias_q = rng.integers(-50, 50, 4)
    sums, macs = lowbit_conv(xq, wq, bias_q)
    np.testing.assert_array_equal(sums, reference.lowbit_conv_naive(xq, wq, bias_q))
    np.testing.assert_array_equal(macs, [4 * 5 * 5 * 3 * 3 * 3] * 2)


# --- counts against independent hand counts ----------------------------------------------------

def test_snapea_counts_on_a_hand_made_case():
    # One channel, a 1×3 kernel (+2, -1, -3) sorted to (+2 | -3, -1), bias 0, inputs 1×1×5.
    x = np.array([[[[1, 1, 1, 0, 2]]]], np.float32)
    weight = np.array([[[[2, -1, -3]]]], np.float32)
    order = term_order(weight, 1, 5)
    out, macs, checks = conv_relu_snapea(x, order, np.zeros(1, np.float32), (1, 1, 3))
    # Output 0: 2·1 = 2, -3·1 -> -1 (stop: 2 MACs, 2 tests). Output 1: 2·1, -3·0 -> 2, -1·1 -> 1
    # (3 MACs, 3 tests: before each negative term and at the end). Output 2: 2·1 = 2, -3·2 -> -4
    # (2 MACs, 2 tests).
    np.testing.assert_allclose(out.ravel(), [0, 1, 0])
    assert macs[0] == 2 + 3 + 2 and checks[0] == 2 + 3 + 2


def test_pool_counts_on_a_hand_made_case():
    # One filter 1×1 with weight +1 and bias -1 over a 2×2 input: a single 2×2 window.
    x = np.array([[[[3, 2], [5, 0.5]]]], np.float32)
    order = term_order(np.ones((1, 1, 1, 1), np.float32), 2, 2)
    bound = np.full((1, 1, 2, 2), 5, np.float32)                    # a range bound of 5
    out, macs, bound_macs, checks = conv_relu_pool(x, order, np.full(1, -1, np.float32),
                                                  (1, 2, 2), bound, 2)
    # (0,0): bound -1+5 > 0, add 3 -> 2, end test 2 > 0: kept (1 MAC, 2 tests). (0,1): bound
    # -1+5 = 4 > 2, add 2 -> 1 <= 2: dropped (1 MAC, 2 tests). (1,0): 4 > 2, add 5 -> 4 > 2:
    # kept (1 MAC, 2 tests). (1,1): bound 4 <= 4: dropped before any MAC (0 MACs, 1 test).
    np.testing.assert_allclose(out[0, 0], [[2, 0], [4, 0]])
    assert (macs[0], bound_macs[0], checks[0]) == (3, 4, 7)


def test_snapea_chunk_counts_on_a_hand_made_case():
    # Weights (+2 | -3, -1, -1, -1) over inputs all 1, bias 0, chunk 2: 2, test (> 0), add
    # -3 - 1 -> -2 (2 MACs), test (<= 0): stop. 3 MACs in all, 2 tests; chunk 1 stops after
    # the -3 at 2 MACs with 2 tests.
    x = np.ones((1, 1, 1, 5), np.float32)
    weight = np.array([[[[2, -3, -1, -1, -1]]]], np.float32)
    order = term_order(weight, 1, 5)
    for chunk, expected in ((2, (3, 2)), (1, (2, 2))):
        out, macs, checks = conv_relu_snapea(x, order, np.zeros(1, np.float32), (1, 1, 1),
                                             chunk=chunk)
        assert out[0, 0, 0, 0] == 0 and (macs[0], checks[0]) == expected


def test_pool_window_counts_on_a_hand_made_case():
    # One filter 1×2, weights (+1, -1), bias 0, over 1×2×3 inputs: one 2×2 window, outputs
    # (a, b) = x[.., j] - x[.., j+1]. Rows [3, 1, 9] and [2, 0.5, 7].
    x = np.array([[[[3, 1, 9], [2, 0.5, 7]]]], np.float32)
    order = term_order(np.array([[[[1, -1]]]], np.float32), 2, 3)
    out, macs, checks = conv_relu_pool_window(x, order, np.zeros(1, np.float32), (1, 2, 2), 2)
    # Positive sums 3, 1, 2, 0.5 (4 MACs); insertion sort: 1 vs 3 (1), 2 vs 1, 2 vs 3 (2),
    # 0.5 vs 1 (1): 4 comparisons; visit 3, 2, 1, 0.5. (0,0): 3 > 0, minus 1 -> 2 > 0: kept
    # (1 MAC, 2 tests). (1,0): 2 > 2? no: the window is done (1 test). 5 MACs, 7 comparisons.
    np.testing.assert_allclose(out[0, 0], [[2, 0], [0, 0]])
    assert (macs[0], checks[0]) == (5, 7)


def test_dense_flop_table_matches_hand_count():
    model = LeNet.initialize(seed=0)
    rows = {row["layer"]: row for row in cost_table(model)}
    assert rows["conv1"]["macs"] == 6 * 24 * 24 * 25
    assert rows["conv2"]["macs"] == 18 * 8 * 8 * 6 * 25
    assert rows["fc1"]["macs"] == 288 * 120
    assert rows["pool2"]["comparisons"] == 18 * 4 * 4 * 3
    assert rows["conv2"]["flops"] == 2 * rows["conv2"]["macs"] + 18 * 64
    assert network_macs(model) == 86400 + 172800 + 34560 + 10080 + 840


# --- schemes on random models and on the committed one -------------------------------------------

@pytest.fixture(scope="module")
def fitted_small():
    model = LeNet.initialize(Architecture(conv1=3, conv2=5, fc=(16, 12)), seed=2)
    # Biases shifted so that some outputs are positive and some are not.
    rng = np.random.default_rng(0)
    for name in ("conv1.bias", "conv2.bias"):
        model.params[name] = (rng.standard_normal(model.params[name].shape) * 0.3
                              ).astype(np.float32)
    split = load_split("test")
    results = {}
    for layer in ("conv1", "conv2"):
        spec = conv_spec(model, layer)
        ref = collect(model, spec, split, np.arange(60))
        train = training_data(collect(model, spec, split, np.arange(60, 160), keep_relu=False))
        results[layer] = (model, spec, ref, train)
    return results


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_exact_schemes_equal_dense_on_a_random_model(fitted_small, layer):
    model, spec, ref, train = fitted_small[layer]
    for scheme in (Dense(), ReluOracle(), PoolOracle(), SnapeaExact(), PoolExact("field"),
                   PoolExact("range"), LowBitExact(2), LowBitExact(5), LowBitExact(8, "none")):
        ev = evaluate(model, scheme.fit(model, spec, train), ref, batch_size=25)
        np.testing.assert_allclose(ev.logits, ref.logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(ev.logits.argmax(1), ref.logits.argmax(1))


def test_oracle_bounds_and_mask_quality(fitted_small):
    model, spec, ref, train = fitted_small["conv2"]
    schemes = [s.fit(model, spec, train) for s in standard_schemes(spec, [0.5, 1.0], [2, 16],
                                                                   lowbit_snapea=True)]
    rows = [r for r in summary_rows(model, [evaluate(model, s, ref) for s in schemes], ref)]
    overall = {r["scheme"]: r for r in rows if r["digit"] == "all"}
    relu, pool = overall["oracle_relu"], overall["oracle_pool"]
    assert relu["layer_macs"] == pytest.approx((~ref.zero).reshape(60, -1).sum(1).mean()
                                               * spec.macs_per_output)
    assert pool["layer_saved"] >= relu["layer_saved"]
    for r in rows:
        oracle = next(o for o in rows if o["scheme"] == "oracle_pool" and o["digit"] == r["digit"])
        if r["exact"]:
            # No exact scheme computes less than the pool-aware oracle's full outputs.
            assert r["layer_macs"] >= oracle["layer_macs"] - 1e-9
            assert r["changed_predictions"] == 0
    assert relu["skip_precision"] == 1 and relu["skip_recall"] == 1
    assert overall["dense"]["layer_macs"] == spec.dense_macs


def test_class_masks_and_lowbit_on_a_random_model(fitted_small):
    model, spec, ref, train = fitted_small["conv2"]
    everything = ClassMasks(0.0).fit(model, spec, train).run(ref.layer_input)
    assert everything.skip_mask.all() and everything.macs.sum() == 0
    assert (everything.predictor_macs == np.prod(spec.input_shape) * 10).all()
    nothing = ClassMasks(1.0).fit(model, spec, train)
    # τ = 1 skips only outputs that were zero on every training image of the predicted digit.
    assert (nothing.zero_probability[nothing.skip_table] == 1).all()
    wide = LowBit(16).fit(model, spec, train)
    run = wide.run(ref.layer_input)
    assert (run.lowbit_macs == spec.dense_macs).all() and run.bits == 16
    ev = evaluate(model, wide, ref)
    np.testing.assert_array_equal(ev.logits.argmax(1), ref.logits.argmax(1))


def dead_filter_model():
    """A small model whose conv1 filter 1 is provably dead: bias -1 and weights at most
    1/50, so bias + Σ positive weights × 1 < 0 for every input in [0, 1]."""
    model = LeNet.initialize(Architecture(conv1=3, conv2=5, fc=(16, 12)), seed=4)
    rng = np.random.default_rng(3)
    model.params["conv1.weight"][1] = rng.random((1, 5, 5)).astype(np.float32) / 50
    model.params["conv1.bias"][1] = -1.0
    model.params["conv2.bias"] = (rng.standard_normal(5) * 0.3).astype(np.float32)
    return model


def test_dead_channel_terms_are_skipped_counted_and_exact():
    model = dead_filter_model()
    spec = conv_spec(model, "conv2")
    np.testing.assert_array_equal(live_channels(model, spec), [True, False, True])
    split = load_split("test")
    ref = collect(model, spec, split, np.arange(40))
    train = training_data(collect(model, spec, split, np.arange(40, 100), keep_relu=False))
    assert (ref.layer_input[:, 1] == 0).all()
    kept_terms = 2 * 25                                  # of 3 × 25: channel 1 left out
    order = fitted_term_order(model, spec, train)
    assert order.weights.shape[1] == kept_terms and order.pruned_terms == 25
    assert not (order.offsets // (12 * 12) == 1).any()   # no term reads channel 1
    # Every term of a computed output but the dead ones: 50 MACs per output, same values.
    out, macs = conv_relu_masked(ref.layer_input, order, spec.bias, spec.output_shape)
    np.testing.assert_array_equal(macs, kept_terms * 5 * 8 * 8)
    np.testing.assert_allclose(out, relu_conv(ref.layer_input, spec.weight, spec.bias),
                               rtol=1e-5, atol=1e-5)
    for scheme in (SnapeaExact(), SnapeaExact(chunk=1), PoolExact(), PoolExact("field"),
                   PoolExact("range"), LowBitExact(3), LowBitExact(7, "none")):
        ev = evaluate(model, scheme.fit(model, spec, train), ref, batch_size=15)
        np.testing.assert_allclose(ev.logits, ref.logits, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(ev.logits.argmax(1), ref.logits.argmax(1))
        assert (ev.run.macs <= kept_terms * 5 * 8 * 8).all()
    # The kernels' counts with the pruned order match the naive references' on it.
    got = conv_relu_snapea(ref.layer_input[:3], order, spec.bias, spec.output_shape, chunk=4)
    want = reference.snapea_naive(ref.layer_input[:3], order, spec.bias, spec.output_shape, 4)
    for counted, expected in zip(got[1:], want[1:]):
        np.testing.assert_array_equal(counted, expected)
    # The low-bit copy leaves the dead channel out too: 2/3 of the dense layer's MACs.
    run = LowBit(4).fit(model, spec, train).run(ref.layer_input)
    np.testing.assert_array_equal(run.lowbit_macs, spec.dense_macs * 2 // 3)
    exact = LowBitExact(6).fit(model, spec, train)
    assert exact.copy.weight_codes.shape[1] == 2
    np.testing.assert_array_equal(exact.run(ref.layer_input).lowbit_macs,
                                  spec.dense_macs * 2 // 3)
    # Dense and the oracles keep every term.
    dense = Dense().fit(model, spec, train).run(ref.layer_input)
    np.testing.assert_array_equal(dense.macs, spec.dense_macs)


def test_guaranteed_bound_holds(fitted_small):
    model, spec, ref, _ = fitted_small["conv2"]
    bound = guaranteed_input_bound(model, spec)
    assert (ref.layer_input.max(axis=(0, 2, 3)) <= bound + 1e-6).all()
    model1, spec1, *_ = fitted_small["conv1"]
    np.testing.assert_array_equal(guaranteed_input_bound(model1, spec1), [1.0])


def test_exact_schemes_equal_dense_on_the_committed_model():
    model = load_model(DEFAULT_MODEL_PATH)
    split = load_split("test")
    for layer in ("conv2", "conv1"):
        spec = conv_spec(model, layer)
        ref = collect(model, spec, split, np.arange(0, 10000, 50))    # 200 images
        for scheme in (SnapeaExact(), PoolExact("field"), PoolExact("range"), LowBitExact(4),
                       LowBitExact(7)):
            ev = evaluate(model, scheme.fit(model, spec), ref)
            np.testing.assert_allclose(ev.logits, ref.logits, rtol=1e-4, atol=1e-4)
            np.testing.assert_array_equal(ev.logits.argmax(1), ref.logits.argmax(1))
            assert ev.run.macs.mean() < spec.dense_macs


# --- lowbit_exact: the error bound, its kernels, its decisions ---------------------------------

def lowbit_case(seed, bits, n=3, c=3, f=4, size=9, k=3):
    """A random case with its copy: inputs up to a per-channel bound (one channel dead, all
    0, bound 0, when ``seed`` is odd), the copy fitted on those bounds."""
    x, weight, bias, shape = random_case(seed, n, c, f, size, k)
    bound = x.max(axis=(0, 2, 3)) * (1 + np.random.default_rng(seed).random(c))   # (C,) >= x
    if seed % 2:
        x[:, 1] = 0
        bound[1] = 0
    return x, weight, bias, shape, lowbit_copy(weight, bias, bound, bits)


def extreme_inputs(copy, weight, seed, n=3, size=9):
    """Inputs where quantising errs most: half a step (minus a hair) from a code, on the side
    that moves each term the same way, codes at 0 and at the top, values at the bound."""
    rng = np.random.default_rng(seed)
    live = np.flatnonzero(copy.live)
    step = np.zeros(len(copy.live))
    step[live] = copy.channel_step
    codes = rng.integers(0, copy.input_levels + 1, (n, len(step), size, size))
    codes[:, :, 0, :] = copy.input_levels                       # the bound itself
    codes[:, :, -1, :] = 0
    # +0.499 steps above a code for channels whose first filter's weights are mostly
    # positive, -0.499 for the others: the input errors of filter 0 add up.
    sign = np.where(weight[0].sum(axis=(1, 2)) >= 0, 1.0, -1.0)[None, :, None, None]
    x = (codes + 0.499 * sign) * step[None, :, None, None]
    return np.clip(x, 0, (copy.input_levels * step)[None, :, None, None]).astype(np.float32)


def _raw_direct(x, order, bias, shape):
    """conv(x) in float32 with the direct kernel, before the ReLU: the kernel's max(v, 0)
    of v and of -v (a filter and its negation, bias negated) give v = out+ - out-."""
    neg = type(order)(**{**order.__dict__, "weights": -order.weights})
    pos_out, _ = conv_relu_masked(x, order, bias, shape)
    neg_out, _ = conv_relu_masked(x, neg, -np.asarray(bias), shape)
    return pos_out - neg_out


@pytest.mark.parametrize("bits", [2, 3, 4, 6, 8, 12, 16])
@pytest.mark.parametrize("seed", range(8))
def test_lowbit_error_bound_holds_for_every_output(bits, seed):
    # |v - q| <= E for the exact value (float64) and for float32 sums in two orders, on
    # random inputs and on inputs at the rounding extremes.
    x, weight, bias, shape, copy = lowbit_case(seed, bits)
    for inputs in (x, extreme_inputs(copy, weight, seed)):
        estimate, error, *_ = copy.intervals(inputs)
        exact = layer_reference.conv_forward_naive(inputs.astype(np.float64), weight, bias)
        gemm32 = conv_forward(inputs, {"weight": weight, "bias": bias})[0]
        order = term_order(weight, *inputs.shape[2:], live=copy.live)
        direct32 = _raw_direct(inputs, order, bias, shape)
        for value in (exact, gemm32, direct32):
            assert (np.abs(value - estimate) <= error).all()
        assert (error > 0).all()


@pytest.mark.parametrize("bits", [3, 5, 8])
def test_lowbit_error_bound_is_nearly_reached_at_the_extremes(bits):
    # The bound is a guarantee, not a loose cap: with every error pushed the same way it is
    # reached to within 10%. Weights (m + 0.499)·δw (rounded down by almost δw/2) but the
    # largest, exactly 1 (it sets δw = 1 / (2^(k-1) - 1)); inputs 0.499 steps above the
    # code below the top. Every term then adds almost |w|·δx/2 + δw/2·x̂ to v - q.
    rng = np.random.default_rng(bits)
    levels = 2 ** (bits - 1) - 1
    weight = ((rng.integers(0, levels, (1, 2, 3, 3)) + 0.499) / levels).astype(np.float32)
    weight[0, 0, 0, 0] = 1.0
    bias = np.zeros(1, np.float32)
    copy = lowbit_copy(weight, bias, [2.0, 1.0], bits)
    x = ((copy.input_levels - 1 + 0.499)
         * np.ones((1, 2, 3, 3)) * copy.channel_step[None, :, None, None]).astype(np.float32)
    estimate, error, *_ = copy.intervals(x)
    deviation = layer_reference.conv_forward_naive(x.astype(np.float64), weight, bias) - estimate
    assert 0.9 * error[0, 0, 0, 0] <= deviation[0, 0, 0, 0] <= error[0, 0, 0, 0]


@pytest.mark.parametrize("seed", range(3))
def test_lowbit_interval_kernel_matches_naive(seed):
    x, weight, bias, shape, copy = lowbit_case(seed, 5)
    got = copy.intervals(x)
    want = reference.lowbit_intervals_naive(copy.quantise(x), copy.weight_codes,
                                            copy.channel_step, copy.weight_step, copy.bias,
                                            copy.error_const)
    for counted, expected in zip(got[:2], want[:2]):
        np.testing.assert_allclose(counted, expected, rtol=1e-12, atol=1e-12)
    for counted, expected in zip(got[2:], want[2:]):
        np.testing.assert_array_equal(counted, expected)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("chunk,terminate", [(1, True), (4, True), (4, False)])
def test_interval_pool_kernel_matches_naive_and_keeps_the_max_pool(seed, chunk, terminate):
    x, weight, bias, shape, copy = lowbit_case(seed, 3)        # 7×7 outputs: a ragged edge
    order = term_order(weight, *x.shape[2:], live=copy.live,
                       channel_scale=x.mean(axis=(0, 2, 3)) + 0.1)
    estimate, error, *_ = copy.intervals(x)
    got = conv_relu_interval_pool(x, order, bias, estimate, error, 2, chunk, terminate)
    want = reference.interval_pool_naive(x, order, bias, estimate, error, 2, chunk, terminate)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)
    for counted, expected in zip(got[1:], want[1:]):
        np.testing.assert_array_equal(counted, expected)
    np.testing.assert_allclose(maxpool_forward(got[0])[0],
                               maxpool_forward(relu_conv(x, weight, bias))[0], rtol=1e-5,
                               atol=1e-5)


def test_lowbit_exact_counts_on_a_hand_made_case():
    # One 1×1 filter, weight +1, bias 0; k = 2 over a bound of 3: input step 1, weight code 1
    # (step 1): integer inputs are exact, q = x and E = 0.5 + 0.5·x + margin. One window
    # [[3, 1], [0, 2]]: L = 1, 0, -0.5, 0.5 (T = 1 - margin), U = 5, 2, 0.5, 3.5 (+ margin):
    # (1,0) is skipped (0.5 <= 1). Candidates by q: 3, 2, 1 (insertion: 0 + 1 + 2 = 3
    # comparisons), after 8 for the lower and upper bounds.
    x = np.array([[[[3, 1], [0, 2]]]], np.float32)
    weight = np.ones((1, 1, 1, 1), np.float32)
    bias = np.zeros(1, np.float32)
    copy = lowbit_copy(weight, bias, [3.0], 2)
    estimate, error, lowbit_macs, predictor_macs, box_adds = copy.intervals(x)
    np.testing.assert_allclose(estimate[0, 0], [[3, 1], [0, 2]])
    # The margin: 1e-5 × (|b| + |w|·B = 3) + 1e-6.
    np.testing.assert_allclose(error[0, 0], np.array([[2, 1], [0.5, 1.5]]) + 3.1e-5, atol=1e-12)
    # 4 outputs × 1 code MAC; Σx̂: 1 per position (4), then 1 + 2 per output (12); a 1×1
    # box sum adds nothing.
    assert (lowbit_macs[0], predictor_macs[0], box_adds[0]) == (4, 16, 0)
    order = term_order(weight, 2, 2)
    out, candidate, macs, checks = conv_relu_interval_pool(x, order, bias, estimate, error, 2,
                                                           4, True)
    # 3: 1 MAC, end test (1): best 3. 2: U 3.5 > 3 (1 test), 1 MAC, 2 <= 3 dropped (1 test).
    # 1: U 2 <= 3 (1 test), skipped. 2 MACs; 8 + 3 + 1 + 2 + 1 = 15 comparisons.
    np.testing.assert_array_equal(candidate[0, 0], [[True, True], [False, True]])
    np.testing.assert_allclose(out[0, 0], [[3, 0], [0, 0]])
    assert (macs[0], checks[0]) == (2, 15)
    # Without termination every candidate is computed: 3 MACs, 8 + 3 comparisons.
    out, _, macs, checks = conv_relu_interval_pool(x, order, bias, estimate, error, 2, 4, False)
    np.testing.assert_allclose(out[0, 0], [[3, 0], [0, 0]])
    assert (macs[0], checks[0]) == (3, 11)
    # Box sums of a 2×2 kernel over one 3×3 channel: rows 3 × 2 segments × 1 add, then
    # 2 × 2 outputs × 1 add: 10 adds.
    *_, adds = lowbit_intervals(np.ones((1, 1, 3, 3), np.int64), np.ones((1, 1, 2, 2), np.int64),
                                [1.0], [1.0], [0.0], [0.0])
    assert adds[0] == 10


def test_lowbit_exact_refuses_inputs_above_their_bound():
    copy = lowbit_copy(np.ones((1, 1, 1, 1), np.float32), np.zeros(1), [1.0], 4)
    with pytest.raises(ValueError, match="exceeds its channel's guaranteed bound"):
        copy.quantise(np.full((1, 1, 2, 2), 1.1, np.float32))


# --- bad options ------------------------------------------------------------------------------

@pytest.mark.parametrize("tau", [-0.1, 1.5])
def test_tau_outside_unit_interval_is_refused(tau):
    with pytest.raises(LenetError, match="tau must be within"):
        ClassMasks(tau)


@pytest.mark.parametrize("bits", [1, 17, 3.5])
def test_bits_outside_range_are_refused(bits):
    for scheme in (LowBit, LowBitExact):
        with pytest.raises(LenetError, match="bits must be an integer within 2..16"):
            scheme(bits)


@pytest.mark.parametrize("layer", ["relu2", "pool1", "fc1", "fc3", "nope"])
def test_layer_not_a_conv_followed_by_relu_is_refused(small_model, layer):
    with pytest.raises(LenetError, match="conv layer followed by a ReLU|unknown layer"):
        conv_spec(small_model, layer)


@pytest.mark.parametrize("args,fragment", [
    (["--tau", "0.5,1.2"], "tau must be within [0, 1]"),
    (["--bits", "1"], "bits must be an integer within 2..16"),
    (["--exact-bits", "17"], "bits must be an integer within 2..16"),
    (["--layer", "fc1"], "early prediction needs a conv layer followed by a ReLU"),
])
def test_analyze_early_bad_options_give_one_line(tmp_path, args, fragment):
    result = run_cli("lenet_np.analyze", "--early", "--out", tmp_path / "r", *args)
    assert_one_line_error(result, fragment)


def test_analyze_early_end_to_end_on_a_small_model(tmp_path, small_model):
    """CSV, JSON and Markdown of the --early section agree, and the verdict's answer is read
    off the rows it names."""
    import csv
    import json

    from lenet_np import analyze
    from lenet_np.checkpoint import save_checkpoint
    from lenet_np.early_report import CSV_COLUMNS
    checkpoint = tmp_path / "small.npz"
    save_checkpoint(checkpoint, small_model, {})
    out = tmp_path / "r"
    analyze.main(["--model", str(checkpoint), "--digit", "2,7", "--n", "5", "--early",
                  "--fit-n", "300", "--tau", "0.9", "--bits", "3", "--exact-bits", "6",
                  "--out", str(out)])
    with open(out / "early_conv2.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == CSV_COLUMNS
    record = json.loads((out / "report.json").read_text())["early_report"]
    assert len(record["rows"]) == len(rows)
    overall = {r["scheme"]: r for r in record["rows"] if r["digit"] == "all"}
    assert {"dense", "oracle_relu", "oracle_pool", "snapea_exact", "pool_exact",
            "lowbit_exact k=6", "class_masks tau=0.9", "lowbit k=3"} <= set(overall)
    assert {r["digit"] for r in rows} == {"all", "2", "7"}
    for row in rows:                         # every CSV row is the JSON row it names
        twin = next(r for r in record["rows"]
                    if r["scheme"] == row["scheme"] and str(r["digit"]) == row["digit"])
        assert float(row["layer_macs_equiv"]) == pytest.approx(twin["layer_macs_equiv"])
    for name in ("dense", "snapea_exact", "pool_exact", "lowbit_exact k=6"):
        assert overall[name]["changed_predictions"] == 0, name
    assert overall["oracle_relu"]["share_of_relu_oracle"] == pytest.approx(1.0)
    exact = [r for r in overall.values() if r["exact"] and "oracle" not in r["family"]
             and r["family"] != "dense"]
    best = max(exact, key=lambda r: r["layer_saved"])
    answer = record["verdict"][-1]
    assert f"exactly (identical predictions), {best['layer_saved']:.0%}" in answer
    assert f"({best['scheme']})" in answer
    markdown = (out / "report.md").read_text()
    assert "## Early prediction on conv2" in markdown and answer in markdown
    assert (out / "early_conv2.png").is_file()
