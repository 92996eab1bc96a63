"""The report folder: staged in a temporary folder, moved into place only when complete.

A :class:`ReportWriter` hands out paths inside a staging folder beside the target; CSV files,
figures and text go there. ``commit()`` replaces the target in one rename (an existing report,
when ``--force`` allows replacing it, is moved aside first and removed after), so a failure or
Ctrl-C at any point leaves either the old report or the new one, never a mixture.
"""
import csv
import io
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")                     # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

from .errors import LenetError  # noqa: E402


class ReportWriter:
    """Stage the files of one report folder and move them into place atomically."""

    def __init__(self, out_dir, force=False):
        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and not force:
            raise LenetError(f"{self.out_dir}: a report is already there; pass --force to "
                             f"replace it or --out to write elsewhere")
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise LenetError(f"{self.out_dir}: exists and is not a folder")
        parent = self.out_dir.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
            self.staging = Path(tempfile.mkdtemp(prefix=f".tmp-{self.out_dir.name}-",
                                                 dir=parent))
        except OSError as err:
            raise LenetError(f"{parent}: cannot write the report there ({err.strerror})") \
                from None
        self.files = []

    def path(self, name):
        """Where to write the report's file ``name`` while the report is being built."""
        self.files.append(name)
        return self.staging / name

    def write_text(self, name, text):
        self.path(name).write_text(text, encoding="utf-8")
        return name

    def write_json(self, name, record):
        return self.write_text(name, json.dumps(record, indent=2, sort_keys=False,
                                                default=_json_default) + "\n")

    def write_csv(self, name, columns, rows):
        """A CSV with a header row; ``rows`` are dicts keyed by ``columns`` (floats as repr)."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n",
                                extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(row[k]) for k in columns})
        return self.write_text(name, buffer.getvalue())

    def save_figure(self, fig, name):
        """Save a matplotlib figure as PNG under ``name`` and close it."""
        fig.savefig(self.path(name), dpi=110)
        plt.close(fig)
        return name

    def commit(self):
        """Move the staged folder into place, replacing an old report only now."""
        old = None
        if self.out_dir.exists():
            old = self.out_dir.with_name(f".old-{self.out_dir.name}-{os.getpid()}")
            os.replace(self.out_dir, old)
        os.replace(self.staging, self.out_dir)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def abort(self):
        shutil.rmtree(self.staging, ignore_errors=True)


def _csv_value(value):
    if isinstance(value, float):
        return repr(value)
    return value


def _json_default(value):
    """numpy scalars and arrays in JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _cell(value, spec):
    """A table cell: ``value`` formatted by ``spec``; NaN (a statistic of no values) as "–"."""
    if isinstance(value, float) and math.isnan(value):
        return "–"
    return format(value, spec) if spec else str(value)


def markdown_table(columns, rows, formats=None):
    """A Markdown table; ``formats`` maps a column to a format spec like ``".3f"``."""
    formats = formats or {}
    lines = ["| " + " | ".join(columns) + " |",
             "|" + "|".join("---:" if c in formats else "---" for c in columns) + "|"]
    for row in rows:
        cells = [_cell(row[c], formats.get(c)) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def text_table(columns, rows, formats=None):
    """The same table aligned for a terminal."""
    formats = formats or {}
    cells = [[_cell(row[c], formats.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths))]
    lines += ["  ".join(v.rjust(w) for v, w in zip(r, widths)) for r in cells]
    return "\n".join(lines)
