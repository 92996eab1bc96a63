"""The analysis report: every number pinned to the filter, digit and layer it names."""
import csv
import json

import numpy as np
import pytest

from lenet_np import analyze
from lenet_np.checkpoint import DEFAULT_MODEL_PATH, load_model, save_checkpoint
from lenet_np.data import load_split
from lenet_np.errors import LenetError
from lenet_np.stats import describe, filter_stats, zero_shares
from tests.conftest import assert_one_line_error, run_cli


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def digit0_report(tmp_path_factory):
    """The default analysis (digit 0, first 100 test images, conv2) of the committed model."""
    out = tmp_path_factory.mktemp("reports") / "digit0"
    analyze.main(["--digit", "0", "--out", str(out)])
    return out


@pytest.fixture(scope="module")
def digit0_acts():
    split = load_split("test")
    index = np.flatnonzero(split.labels == 0)[:100]
    _, acts = load_model().forward(split.inputs(index))
    return index, acts


@pytest.mark.parametrize("f", [0, 1, 2, 11, 13, 16, 17])
def test_table1_rows_match_numpy_on_the_filters_raw_slice(digit0_report, digit0_acts, f):
    """Row f of Table 1 is filter f of conv2: the study's tables repeated rows 0, 1 as 16, 17."""
    _, acts = digit0_acts
    values = acts["conv2"][:, f, :, :].astype(np.float64).ravel()
    row = read_csv(digit0_report / "stats_conv2.csv")[f]
    assert int(row["digit"]) == 0 and int(row["filter"]) == f
    assert int(row["n_values"]) == 100 * 8 * 8
    assert float(row["mean"]) == pytest.approx(values.mean(), rel=1e-12)
    assert float(row["median"]) == pytest.approx(np.median(values), rel=1e-12)
    assert float(row["variance"]) == pytest.approx(np.var(values, ddof=0), rel=1e-12)
    assert float(row["std"]) == pytest.approx(np.std(values), rel=1e-12)
    assert float(row["min"]) == values.min() and float(row["max"]) == values.max()
    assert float(row["q1"]) == pytest.approx(np.quantile(values, 0.25), rel=1e-12)
    assert float(row["q3"]) == pytest.approx(np.quantile(values, 0.75), rel=1e-12)
    assert float(row["negative_share"]) == pytest.approx(np.mean(values < 0))


@pytest.mark.parametrize("f", [0, 3, 16, 17])
def test_table2_and_zero_share_match_direct_counts(digit0_report, digit0_acts, f):
    _, acts = digit0_acts
    relu = acts["relu2"][:, f].ravel().astype(np.float64)
    nonzero = relu[relu != 0]
    row = read_csv(digit0_report / "stats_relu2_nonzero.csv")[f]
    assert int(row["filter"]) == f and int(row["n_values"]) == nonzero.size
    if nonzero.size:
        assert float(row["mean"]) == pytest.approx(nonzero.mean(), rel=1e-12)
        assert float(row["median"]) == pytest.approx(np.median(nonzero), rel=1e-12)
    zero_row = read_csv(digit0_report / "zero_share_relu2.csv")[f]
    assert int(zero_row["filter"]) == f
    direct = np.count_nonzero(acts["relu2"][:, f] == 0) / acts["relu2"][:, f].size
    assert float(zero_row["zero_share"]) == pytest.approx(direct, rel=1e-12)
    # the ReLU zeroes exactly the non-positive conv2 outputs
    assert direct == pytest.approx(np.mean(acts["conv2"][:, f] <= 0))


def test_csv_json_and_markdown_agree(digit0_report):
    record = json.loads((digit0_report / "report.json").read_text())
    markdown = (digit0_report / "report.md").read_text()
    rows = read_csv(digit0_report / "stats_conv2.csv")
    assert len(rows) == len(record["stats"]) == 18
    for row, item in zip(rows, record["stats"]):
        assert int(row["filter"]) == item["filter"]
        assert float(row["mean"]) == item["mean"]
        # the Markdown row of this filter shows the same mean, rounded
        assert f"| 0 | {item['filter']} | {item['n_values']} | {item['mean']:.4f} |" in markdown
    zeros = read_csv(digit0_report / "zero_share_relu2.csv")
    for row, item in zip(zeros, record["zero_share"]):
        assert float(row["zero_share"]) == item["zero_share"]
        assert f"Proportion of 0 in filter{item['filter']}: {item['zero_share']:.3%}" in markdown
    mean = np.mean([item["zero_share"] for item in record["zero_share"]])
    assert record["zero_share_mean"]["0"] == pytest.approx(mean)
    for name in record["files"].values():
        assert (digit0_report / name).is_file()
        if name.endswith(".png"):
            assert f"]({name})" in markdown


def test_provenance(digit0_report, digit0_acts):
    index, _ = digit0_acts
    prov = json.loads((digit0_report / "report.json").read_text())["provenance"]
    assert prov["indices"]["0"] == index.tolist()
    assert prov["images_per_digit"] == {"0": 100}
    assert prov["split"] == "test" and prov["layer"] == "conv2" and prov["zero_layer"] == "relu2"
    assert prov["dataset"] == "mnist"
    assert prov["data_sha256"]["t10k-images-idx3-ubyte"].startswith("0fa7898d")
    assert len(prov["model_params_sha256"]) == 64 and len(prov["model_file_sha256"]) == 64
    assert prov["command"].startswith("python -m lenet_np.analyze")


def test_terminal_output_is_pinned_to_filters(tmp_path, capsys, digit0_acts):
    analyze.main(["--digit", "0", "--out", str(tmp_path / "r")])
    printed = capsys.readouterr().out
    _, acts = digit0_acts
    for f in (0, 17):
        share = np.mean(acts["relu2"][:, f] == 0)
        assert f"Proportion of 0 in filter{f}: {share:.3%}" in printed
    average = np.mean([np.mean(acts["relu2"][:, f] == 0) for f in range(18)])
    assert f"Average proportion of 0 over 18 filters: {average:.3%}" in printed


def test_filter_stats_catch_a_mixed_up_filter():
    """Each filter has its own offset, so a row that describes another filter is caught."""
    rng = np.random.default_rng(0)
    act = rng.standard_normal((7, 18, 4, 4)) + np.arange(18)[None, :, None, None] * 100
    rows = filter_stats(act)
    for f in range(18):
        assert rows[f]["filter"] == f
        assert rows[f]["mean"] == pytest.approx(act[:, f].mean())
        assert 100 * f - 10 < rows[f]["median"] < 100 * f + 10
    assert describe(np.array([1.0, 2, 3, 4]))["variance"] == pytest.approx(1.25)   # ddof=0


def test_zero_shares_and_dense_units():
    act = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])          # (N=2, U=3)
    np.testing.assert_array_equal(zero_shares(act), [1.0, 0.5, 0.5])
    rows = filter_stats(act, nonzero_only=True)
    assert rows[0]["n_values"] == 0 and np.isnan(rows[0]["mean"])
    assert rows[1]["n_values"] == 1 and rows[1]["mean"] == 1.0


@pytest.fixture
def small_checkpoint(tmp_path, small_model):
    path = tmp_path / "small.npz"
    save_checkpoint(path, small_model, {"test_accuracy": None})
    return path


@pytest.mark.parametrize("layer,zero_layer,n_filters", [
    ("conv1", "relu1", 3), ("relu2", "relu2", 5), ("pool2", "pool2", 5), ("fc1", "relu3", 16),
    ("fc3", None, 10), ("input", "input", 1)])
def test_any_layer_on_a_small_model(tmp_path, small_checkpoint, layer, zero_layer, n_filters):
    out = tmp_path / "r"
    analyze.main(["--model", str(small_checkpoint), "--digit", "3,5", "--n", "7",
                  "--layer", layer, "--out", str(out)])
    record = json.loads((out / "report.json").read_text())
    assert record["zero_layer"] == zero_layer
    assert len(record["stats"]) == 2 * n_filters
    assert [r["digit"] for r in record["stats"]] == [3] * n_filters + [5] * n_filters
    assert (out / f"stats_{layer}.csv").is_file()
    assert (out / f"heatmap_mean_{layer}.png").is_file()
    if zero_layer:
        assert (out / f"zero_share_{zero_layer}.csv").is_file()
        assert (out / f"heatmap_zero_share_{zero_layer}.png").is_file()
    else:
        assert "zero_share" not in record


def test_all_digits_random_sample_is_reproducible(tmp_path, small_checkpoint):
    args = ["--model", str(small_checkpoint), "--digit", "all", "--n", "5", "--sample", "random",
            "--seed", "3"]
    analyze.main(args + ["--out", str(tmp_path / "a")])
    analyze.main(args + ["--out", str(tmp_path / "b")])
    a = json.loads((tmp_path / "a" / "report.json").read_text())
    b = json.loads((tmp_path / "b" / "report.json").read_text())
    a["provenance"].pop("command"), b["provenance"].pop("command")
    a["provenance"]["options"].pop("out"), b["provenance"]["options"].pop("out")
    assert a == b
    assert sorted(a["provenance"]["images_per_digit"]) == [str(d) for d in range(10)]
    labels = load_split("test").labels
    for d, index in a["provenance"]["indices"].items():
        assert all(labels[i] == int(d) for i in index) and index == sorted(index)


def test_existing_report_is_kept_without_force(tmp_path, small_checkpoint):
    out = tmp_path / "r"
    args = ["--model", str(small_checkpoint), "--n", "3", "--out", str(out)]
    analyze.main(args)
    before = (out / "report.json").read_text()
    with pytest.raises(LenetError, match="--force"):
        analyze.main(args + ["--digit", "1"])
    assert (out / "report.json").read_text() == before
    analyze.main(args + ["--digit", "1", "--force"])
    assert json.loads((out / "report.json").read_text())["provenance"]["digits"] == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r", "small.npz"]   # nothing left over


def test_a_failure_midway_leaves_nothing_behind(tmp_path, small_checkpoint, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(analyze.plots, "zero_share_bars", broken)
    with pytest.raises(RuntimeError):
        analyze.main(["--model", str(small_checkpoint), "--n", "3", "--out", str(tmp_path / "r")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.npz"]


@pytest.mark.parametrize("args,expected", [
    (["--layer", "conv3"], "unknown layer 'conv3'; the layers are input, conv1, relu1"),
    (["--digit", "12"], "--digit must be within 0-9"),
    (["--digit", "x"], "--digit takes 0-9"),
    (["--n", "5000"], "more images than the 980 of digit 0"),
    (["--n", "0"], "--n must be at least 1"),
    (["--split", "validation"], "argument --split: invalid choice: 'validation'"),
    (["--model", "NOWHERE"], "checkpoint not found"),
    (["--model", "CORRUPT"], "not a readable checkpoint"),
    (["--out", "UNWRITABLE"], "cannot write the report there"),
])
def test_cli_bad_input_is_one_line(tmp_path, args, expected):
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 broken")
    (tmp_path / "a-file").write_text("")
    replace = {"NOWHERE": str(tmp_path / "none.npz"), "CORRUPT": str(tmp_path / "corrupt.npz"),
               "UNWRITABLE": str(tmp_path / "a-file" / "report")}
    args = [replace.get(a, a) for a in args]
    if "--out" not in args:
        args += ["--out", str(tmp_path / "out")]
    result = run_cli("lenet_np.analyze", *args)
    assert_one_line_error(result, "lenet_np.analyze: error: ", expected)
    assert not (tmp_path / "out").exists()


def test_cli_default_run_on_the_committed_model(tmp_path):
    out = tmp_path / "digit0-conv2"
    result = run_cli("lenet_np.analyze", "--digit", "0", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "Proportion of 0 in filter17:" in result.stdout
    record = json.loads((out / "report.json").read_text())
    assert record["provenance"]["model"] == str(DEFAULT_MODEL_PATH)


def test_tables_show_a_statistic_of_no_values_as_a_dash():
    from lenet_np.report import markdown_table, text_table
    rows = filter_stats(np.zeros((2, 2, 3, 3)), nonzero_only=True)   # two all-zero filters
    table = markdown_table(["filter", "n_values", "mean"], rows, {"mean": ".4f"})
    assert "| 1 | 0 | – |" in table and "nan" not in table
    assert "nan" not in text_table(["filter", "mean"], rows, {"mean": ".4f"})
