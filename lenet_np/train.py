"""Train LeNet on MNIST-format IDX files: ``python -m lenet_np.train``.

Mini-batch SGD with momentum and a cosine learning-rate decay. After every epoch the test
accuracy is measured and a checkpoint written atomically, so Ctrl-C leaves the last complete
epoch on disk and ``--resume`` continues from it. The shuffle of epoch ``e`` is drawn from
``(seed, e)`` alone, which makes an interrupted-and-resumed run bit-identical to an
uninterrupted one.
"""
import argparse
import os
import sys
import time
from dataclasses import asdict, dataclass

import numpy as np
from tqdm import tqdm

from . import __version__
from .checkpoint import DEFAULT_MODEL_PATH, load_checkpoint, save_checkpoint
from .data import load_split
from .errors import CliParser, EXIT_INTERRUPTED, LenetError, run_cli
from .model import Architecture, LeNet
from .optim import SGD, cosine_lr


@dataclass
class TrainConfig:
    epochs: int = 12              # passes over the training set; 12 reach ≥ 99.0% on MNIST
    batch_size: int = 64          # images per SGD step
    lr: float = 0.05              # peak learning rate, decayed by a cosine to 0 over the epochs
    momentum: float = 0.9         # SGD momentum
    weight_decay: float = 5e-4    # L2 penalty on weights (not biases)
    seed: int = 0                 # weights and shuffles derive from it alone
    conv1: int = 6                # conv1 filters
    conv2: int = 18               # conv2 filters (the study's 18)
    fc: str = "120,84"            # hidden dense widths
    train_limit: int = 0          # use only the first N training images (0: all), for quick runs
    data_dir: str = ""            # folder of the four IDX files ("" = the project's data/mnist)
    out: str = str(DEFAULT_MODEL_PATH)   # checkpoint path, rewritten after every epoch
    resume: bool = False          # continue from the checkpoint at ``out``

    def architecture(self):
        try:
            fc = tuple(int(w) for w in self.fc.split(",") if w.strip())
        except ValueError:
            raise LenetError(f"--fc takes comma-separated integers, got {self.fc!r}") from None
        arch = Architecture(conv1=self.conv1, conv2=self.conv2, fc=fc)
        try:
            arch.validate()
        except ValueError as err:
            raise LenetError(str(err)) from None
        return arch

    def validate(self):
        if self.epochs < 1:
            raise LenetError(f"--epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise LenetError(f"--batch-size must be at least 1, got {self.batch_size}")
        if not self.lr > 0:
            raise LenetError(f"--lr must be positive, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise LenetError(f"--momentum must be in [0, 1), got {self.momentum}")
        if self.weight_decay < 0:
            raise LenetError(f"--weight-decay must be non-negative, got {self.weight_decay}")
        if self.train_limit < 0:
            raise LenetError(f"--train-limit must be non-negative, got {self.train_limit}")
        out_dir = os.path.dirname(os.path.abspath(self.out))
        if not os.path.isdir(out_dir):
            raise LenetError(f"{out_dir}: output folder not found")
        if not os.access(out_dir, os.W_OK):
            raise LenetError(f"{out_dir}: output folder is not writable")


def train_epoch(model, optimizer, images, labels, config, epoch, lr):
    """One pass of SGD over the shuffled training images; returns (mean loss, accuracy)."""
    order = np.random.default_rng([config.seed, epoch]).permutation(len(images))
    n_batches = -(-len(images) // config.batch_size)
    loss_sum = correct = seen = 0
    bar = tqdm(range(n_batches), desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch",
               leave=True, file=sys.stderr, mininterval=0.5)
    for step in bar:
        batch = order[step * config.batch_size:(step + 1) * config.batch_size]
        loss, grads, logits = model.loss_and_grads(images[batch], labels[batch])
        optimizer.step(grads, lr)
        loss_sum += loss * len(batch)
        correct += int((logits.argmax(axis=1) == labels[batch]).sum())
        seen += len(batch)
        if step % 50 == 0 or step == n_batches - 1:
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
    bar.close()
    return loss_sum / seen, correct / seen


def train(config, argv=None):
    """Train as ``config`` says, writing a checkpoint after every epoch; returns the model."""
    config.validate()
    arch = config.architecture()
    data_dir = config.data_dir or None
    train_split = load_split("train", data_dir)
    test_split = load_split("test", data_dir)
    n_train = config.train_limit or len(train_split.labels)
    images = train_split.inputs(slice(0, n_train))             # (n, 1, 28, 28) float32
    labels = train_split.labels[:n_train].astype(np.int64)
    test_images = test_split.inputs()
    test_labels = test_split.labels.astype(np.int64)

    history, start_epoch, velocity = [], 0, None
    if config.resume:
        model, meta, velocity = load_checkpoint(config.out)
        saved = meta.get("config", {})
        for key in ("batch_size", "lr", "momentum", "weight_decay", "seed", "train_limit"):
            if key in saved and saved[key] != getattr(config, key):
                raise LenetError(f"--resume: the checkpoint was trained with {key}="
                                 f"{saved[key]}, not {getattr(config, key)}")
        if model.arch != arch:
            raise LenetError(f"--resume: the checkpoint's architecture {model.arch.to_dict()} "
                             f"differs from the options'")
        history = meta.get("history", [])
        start_epoch = meta.get("epochs_done", 0)
        if start_epoch >= config.epochs:
            raise LenetError(f"--resume: the checkpoint already has {start_epoch} epochs; "
                             f"ask for more with --epochs")
    else:
        model = LeNet.initialize(arch, seed=config.seed)
    optimizer = SGD(model.params, config.momentum, config.weight_decay, velocity)

    for epoch in range(start_epoch, config.epochs):
        lr = cosine_lr(config.lr, epoch, config.epochs)
        started = time.perf_counter()
        try:
            loss, train_acc = train_epoch(model, optimizer, images, labels, config, epoch, lr)
        except KeyboardInterrupt:
            kept = (f"the checkpoint of epoch {epoch} at {config.out} is intact; continue with "
                    f"--resume" if epoch > 0 else "no checkpoint was written")
            print(f"lenet_np.train: interrupted in epoch {epoch + 1}; {kept}", file=sys.stderr)
            raise SystemExit(EXIT_INTERRUPTED)
        seconds = time.perf_counter() - started
        test_acc = model.accuracy(test_images, test_labels)
        history.append({"epoch": epoch + 1, "lr": lr, "loss": loss, "train_accuracy": train_acc,
                        "test_accuracy": test_acc, "seconds": round(seconds, 2)})
        print(f"epoch {epoch + 1}: loss {loss:.4f}  train accuracy {train_acc:.4%}  "
              f"test accuracy {test_acc:.4%}  ({seconds:.1f} s)", file=sys.stderr)
        meta = {"config": asdict(config), "epochs_done": epoch + 1, "history": history,
                "test_accuracy": test_acc, "train_images": n_train,
                "dataset": train_split.dataset,
                "data_sha256": {**train_split.sha256, **test_split.sha256},
                "command": "python -m lenet_np.train " + " ".join(argv or [])}
        save_checkpoint(config.out, model, meta, optimizer.velocity)
    return model


def parse_args(argv):
    defaults = TrainConfig()
    parser = CliParser(prog="python -m lenet_np.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--momentum", type=float, default=defaults.momentum)
    parser.add_argument("--weight-decay", type=float, default=defaults.weight_decay)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--conv1", type=int, default=defaults.conv1, help="conv1 filters")
    parser.add_argument("--conv2", type=int, default=defaults.conv2, help="conv2 filters")
    parser.add_argument("--fc", default=defaults.fc, help="hidden dense widths, e.g. 120,84")
    parser.add_argument("--train-limit", type=int, default=defaults.train_limit,
                        help="train on the first N images only (0: all)")
    parser.add_argument("--data-dir", default=defaults.data_dir,
                        help="folder with the four IDX files (default: data/mnist)")
    parser.add_argument("--out", default=defaults.out, help="checkpoint path")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint at --out")
    parser.add_argument("--version", action="version", version=f"lenet_np {__version__}")
    return TrainConfig(**{k: v for k, v in vars(parser.parse_args(argv)).items()})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    config = parse_args(argv)
    train(config, argv)
    print(f"saved {config.out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
