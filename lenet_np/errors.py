"""One clear line, never a traceback: the error type every command-line entry point reports."""
import argparse
import sys


class LenetError(Exception):
    """Bad input a user can fix (a path, a file, an option): reported as one line, exit 2."""


class CliParser(argparse.ArgumentParser):
    """argparse, but a bad option is a LenetError: one line, not usage text plus a line."""

    def error(self, message):
        raise LenetError(f"{message} (see --help)")


EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def run_cli(main, argv=None):
    """Call ``main(argv)`` and turn its failures into one line on stderr and an exit status."""
    prog = getattr(main, "__module__", "lenet_np")
    if prog == "__main__":                   # run as ``python -m lenet_np.x``: name the module
        spec = getattr(sys.modules["__main__"], "__spec__", None)
        prog = spec.name if spec else "lenet_np"
    try:
        return main(argv) or 0
    except LenetError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
