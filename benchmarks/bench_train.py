"""Training and inference throughput of the default LeNet, against PyTorch when importable.

    python benchmarks/bench_train.py [--batch-size 64] [--threads 2] [--steps 300] [--rounds 5]

Both frameworks run the same architecture from the same initial weights on the same MNIST
batches at the same batch size and thread count, in alternating rounds of one invocation;
each figure is the median over the rounds, so a burst of load on a shared machine shifts
both sides alike. PyTorch runs in a worker process that this script starts: in one process,
its OpenMP threads keep spinning after each call and steal the cores from lenet_np's GEMMs. Training counts a
forward pass, the backward pass and an SGD-with-momentum step; inference a forward pass
(lenet_np keeps every intermediate, as it always does; PyTorch runs under ``no_grad``).
The last line is key=value pairs.
"""
import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from lenet_np.data import load_split  # noqa: E402
from lenet_np.model import LeNet  # noqa: E402
from lenet_np.optim import SGD  # noqa: E402


def batches(split, batch_size, steps, seed=0):
    order = np.random.default_rng(seed).permutation(len(split.labels))[:batch_size * steps]
    x = split.inputs(order).reshape(steps, batch_size, 1, 28, 28)
    y = split.labels[order].astype(np.int64).reshape(steps, batch_size)
    return x, y


def time_numpy_train(model, optimizer, x, y):
    started = time.perf_counter()
    for xb, yb in zip(x, y):
        _, grads, _ = model.loss_and_grads(xb, yb)
        optimizer.step(grads, lr=0.01)
    return x.shape[0] * x.shape[1] / (time.perf_counter() - started)


def time_numpy_infer(model, x):
    started = time.perf_counter()
    for xb in x:
        model.forward(xb)
    return x.shape[0] * x.shape[1] / (time.perf_counter() - started)


def torch_model(model):
    """The same architecture from torch.nn layers, holding the same initial weights."""
    import torch
    from torch import nn
    arch = model.arch
    layers = [nn.Conv2d(arch.in_channels, arch.conv1, arch.kernel), nn.ReLU(),
              nn.MaxPool2d(arch.pool),
              nn.Conv2d(arch.conv1, arch.conv2, arch.kernel), nn.ReLU(), nn.MaxPool2d(arch.pool),
              nn.Flatten()]
    names = ["conv1", None, None, "conv2", None, None, None]
    fan_in = model.params["fc1.weight"].shape[1]
    widths = list(arch.fc) + [arch.n_classes]
    for i, width in enumerate(widths, start=1):
        layers.append(nn.Linear(fan_in, width))
        names.append(f"fc{i}")
        if i < len(widths):
            layers.append(nn.ReLU())
            names.append(None)
        fan_in = width
    net = nn.Sequential(*layers)
    state = {f"{i}.{kind}": torch.from_numpy(model.params[f"{name}.{kind}"].copy())
             for i, name in enumerate(names) if name for kind in ("weight", "bias")}
    net.load_state_dict(state)
    return net


def time_torch_train(net, optimizer, x, y):
    import torch
    loss_fn = torch.nn.CrossEntropyLoss()
    started = time.perf_counter()
    for xb, yb in zip(x, y):
        optimizer.zero_grad()
        loss_fn(net(xb), yb).backward()
        optimizer.step()
    return x.shape[0] * x.shape[1] / (time.perf_counter() - started)


def time_torch_infer(net, x):
    import torch
    started = time.perf_counter()
    with torch.no_grad():
        for xb in x:
            net(xb)
    return x.shape[0] * x.shape[1] / (time.perf_counter() - started)


IDLE_PAUSE_S = 1.0


def torch_worker(args):
    """Serve timing rounds for PyTorch: read "train"/"infer" lines, answer images/s."""
    import torch
    torch.set_num_threads(args.threads)
    x, y = batches(load_split("train"), args.batch_size, args.steps)
    net = torch_model(LeNet.initialize(seed=0))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    time_torch_train(net, optimizer, tx[:5], ty[:5])        # warm-up
    time_torch_infer(net, tx[:5])
    print("ready", flush=True)
    for line in sys.stdin:
        kind = line.strip()
        rate = (time_torch_train(net, optimizer, tx, ty) if kind == "train"
                else time_torch_infer(net, tx))
        print(f"{rate:.3f}", flush=True)


def start_torch_worker(args):
    """The PyTorch worker process, or None when PyTorch is not importable."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return None
    worker = subprocess.Popen(
        [sys.executable, __file__, "--torch-worker", "--batch-size", str(args.batch_size),
         "--threads", str(args.threads), "--steps", str(args.steps)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    if worker.stdout.readline().strip() != "ready":
        raise SystemExit("the PyTorch worker failed to start")
    return worker


def ask(worker, kind):
    """One timed PyTorch round; then a pause, so the worker's idle OpenMP threads stop
    spinning before lenet_np is timed again."""
    worker.stdin.write(kind + "\n")
    worker.stdin.flush()
    rate = float(worker.stdout.readline())
    time.sleep(IDLE_PAUSE_S)
    return rate


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="batches per timed round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_worker:
        return torch_worker(args)
    # lenet_np's parallelism is OpenBLAS's (its numba kernels are serial).
    if os.environ.get("OPENBLAS_NUM_THREADS", str(args.threads)) != str(args.threads):
        print(f"note: OPENBLAS_NUM_THREADS={os.environ['OPENBLAS_NUM_THREADS']} overrides "
              f"--threads for lenet_np's GEMMs", file=sys.stderr)

    worker = start_torch_worker(args)
    x, y = batches(load_split("train"), args.batch_size, args.steps)
    model = LeNet.initialize(seed=0)
    optimizer = SGD(model.params, momentum=0.9, weight_decay=5e-4)
    time_numpy_train(model, optimizer, x[:5], y[:5])   # warm-up: numba compiles or loads its cache
    time_numpy_infer(model, x[:5])

    results = {"train_img_s": [], "infer_img_s": [], "torch_train_img_s": [],
               "torch_infer_img_s": []}
    for _ in range(args.rounds):
        results["train_img_s"].append(time_numpy_train(model, optimizer, x, y))
        if worker:
            results["torch_train_img_s"].append(ask(worker, "train"))
        results["infer_img_s"].append(time_numpy_infer(model, x))
        if worker:
            results["torch_infer_img_s"].append(ask(worker, "infer"))
    if worker:
        worker.stdin.close()
        worker.wait()
    medians = {k: statistics.median(v) for k, v in results.items() if v}

    print(f"LeNet {model.arch.conv1}/{model.arch.conv2}/{','.join(map(str, model.arch.fc))}, "
          f"batch {args.batch_size}, {args.threads} threads, {args.steps} batches × "
          f"{args.rounds} rounds (median images/s)")
    print(f"{'':10}{'lenet_np':>12}{'PyTorch':>12}{'ratio':>8}")
    ratios = {}
    for kind in ("train", "infer"):
        ours = medians[f"{kind}_img_s"]
        theirs = medians.get(f"torch_{kind}_img_s")
        if theirs:
            ratios[f"{kind}_ratio"] = ours / theirs
            print(f"{kind:10}{ours:12.0f}{theirs:12.0f}{ours / theirs:8.2f}")
        else:
            print(f"{kind:10}{ours:12.0f}{'-':>12}{'-':>8}")
    if worker is None:
        print("PyTorch is not importable: no comparison (pip install torch to add one)")
    print(" ".join([f"{k}={v:.0f}" for k, v in medians.items()] +
                   [f"{k}={v:.2f}" for k, v in ratios.items()]))


if __name__ == "__main__":
    main()
