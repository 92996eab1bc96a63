"""Time of the ``--similarity`` report section on all digits over all 10,000 test images.

    python benchmarks/bench_similarity.py [--layer conv2] [--pair-sample 100] [--shifts 1,2]

Builds the section exactly as ``python -m lenet_np.analyze --digit all --n all --similarity``
does (into a temporary folder that is removed), timing the section alone, after one warm-up
on a few images so numba compilation and the training split's loading are not counted. The
last line is key=value pairs: seconds, pairs, the peak resident memory of the process in MB
(ru_maxrss) and the thread count the BLAS may use.
"""
import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lenet_np import analyze, similarity_report  # noqa: E402
from lenet_np.checkpoint import load_checkpoint  # noqa: E402
from lenet_np.data import load_split  # noqa: E402
from lenet_np.report import ReportWriter  # noqa: E402


def context(argv, out):
    parser = analyze.build_parser([similarity_report])
    args = parser.parse_args(argv + ["--out", str(out)])
    config = analyze.config_from_args(args)
    model, meta, _ = load_checkpoint(config.model)
    similarity_report.check(vars(args), model)
    split = load_split(config.split)
    indices = analyze.select_images(split.labels, config.digits, config.n, config.sample,
                                    config.seed)
    writer = ReportWriter(out, force=True)
    return analyze.AnalysisContext(config, vars(args), model, meta, split, indices, writer)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer", default="conv2")
    parser.add_argument("--pair-sample", default="100")
    parser.add_argument("--shifts", default="1,2")
    args = parser.parse_args()
    common = ["--similarity", "--layer", args.layer, "--pair-sample", args.pair_sample,
              "--shifts", args.shifts]
    with tempfile.TemporaryDirectory() as folder:
        warm = context(["--digit", "0", "--n", "20"] + common, Path(folder) / "warm")
        similarity_report.build(warm)
        warm.writer.abort()
        ctx = context(["--digit", "all", "--n", "all"] + common, Path(folder) / "all")
        ctx._splits.update(warm._splits)            # the training split, already loaded
        started = time.perf_counter()
        result = similarity_report.build(ctx)
        seconds = time.perf_counter() - started
        ctx.writer.abort()
    n_images = sum(result["json"]["pool_images_per_digit"].values())
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"similarity section, {args.layer}, all digits, {n_images} test images, "
          f"{n_images * (n_images - 1) // 2} pairs: {seconds:.1f} s, peak memory {peak_mb:.0f} MB")
    print(f"seconds={seconds:.2f} images={n_images} pairs={n_images * (n_images - 1) // 2} "
          f"peak_rss_mb={peak_mb:.0f} cpus={os.cpu_count()}")


if __name__ == "__main__":
    main()
