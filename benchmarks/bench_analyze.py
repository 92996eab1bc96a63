"""End-to-end time of the analysis command: the default run, and every layer over the full
test set with all digits.

    python benchmarks/bench_analyze.py [--layers conv1,conv2,...] [--repeats 3]

Each run is a fresh ``python -m lenet_np.analyze`` process, as a user would start it, with
numba's on-disk cache already warm (a first run fills it). Reports go to a temporary folder.
Printed: the median wall time per configuration and the largest peak resident memory of any
run; the last line is key=value pairs.
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from lenet_np import load_model  # noqa: E402


def run(args, out):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "lenet_np.analyze", *args, "--out", str(out),
                    "--force"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env=env, cwd=ROOT)
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--layers", default=",".join(load_model().layer_names),
                        help="layers to time over the full test set (default: every layer)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    configs = [("default: --digit 0", ["--digit", "0"])]
    configs += [(f"--digit all --n all --layer {layer}",
                 ["--digit", "all", "--n", "all", "--layer", layer])
                for layer in args.layers.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        run(["--digit", "0"], Path(tmp) / "warm-up")           # fills numba's on-disk cache
        times = {}
        for label, config in configs:
            times[label] = statistics.median(run(config, Path(tmp) / "r")
                                             for _ in range(args.repeats))
            print(f"{label:45} {times[label]:6.2f} s", flush=True)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    full = [t for label, t in times.items() if "--n all" in label]
    print(f"peak resident memory of a run: {peak_mb:.0f} MB")
    print(f"default_s={times['default: --digit 0']:.2f} full_test_set_max_s={max(full):.2f} "
          f"full_test_set_total_s={sum(full):.2f} layers={len(full)} peak_mb={peak_mb:.0f}")


if __name__ == "__main__":
    main()
