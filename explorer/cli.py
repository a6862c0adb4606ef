"""The ``layer-explorer`` command: the window by default, headless subcommands otherwise.

Nothing here imports Qt unless the window is asked for, so ``report`` runs on machines
without a display or Qt libraries.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from typing import Sequence

from explorer import __version__
from explorer.image.errors import ExplorerError, SelectionError, SourceError

EXIT_OK, EXIT_OTHER, EXIT_SOURCE = 0, 1, 2
COMMANDS = ("report",)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1: 2 is reserved for unreadable sources."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_OTHER, f"{self.prog}: error: {message}\n")


def _report_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="layer-explorer report", description="Print what is inside one image of SOURCE.")
    p.add_argument("source", metavar="SOURCE", help="an image archive (tar, optionally gzip/zstd/xz/bzip2) or an OCI layout folder")
    p.add_argument("--image", metavar="REF", help="in a multi-image archive: a tag, a position (0, 1, ...) or a config digest (prefix)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="in a multi-platform index (default: this machine's, else the first)")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", dest="fmt", action="store_const", const="json", help="print JSON (the default when stdout is not a terminal)")
    out.add_argument("--text", dest="fmt", action="store_const", const="text", help="print a readable summary")
    return p


def _main_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="layer-explorer",
        description="Look inside container images: layers, history, and the files each layer changed. "
        "With no command, opens the window (loading SOURCE if given).",
        epilog="Commands: 'layer-explorer report SOURCE' prints an image's layers, history and files "
        "(run 'layer-explorer report --help').",
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image archives or OCI layout folders to open")
    p.add_argument("--demo", action="store_true", help="open the bundled sample image")
    p.add_argument("--version", action="version", version=f"layer-explorer {__version__}")
    return p


def run_report(argv: Sequence[str]) -> int:
    """``layer-explorer report``."""
    from explorer.image.loader import load_image
    from explorer.image.source import open_source
    from explorer.report import build_report, text_report, write_json

    args = _report_parser().parse_args(argv)
    fmt = args.fmt or ("text" if sys.stdout.isatty() else "json")
    with open_source(args.source) as source:
        ref = source.select(args.image, args.platform)
        image = load_image(source, ref)
        image.warnings.extend(source.notes)
        gc.disable()  # the report is made of acyclic objects only
        if fmt == "json":
            write_json(image, source.images, args.source, sys.stdout)
        else:
            sys.stdout.write(text_report(build_report(image, source.images, args.source)))
    sys.stdout.flush()
    return EXIT_OK


def entry() -> None:
    """The console script: run, then leave without tearing down millions of objects one by one."""
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] == "report":
            return run_report(argv[1:])
        args = _main_parser().parse_args(argv)
        from explorer.app import main as run_window

        return run_window((["--demo"] if args.demo else []) + list(args.sources))
    except SourceError as exc:
        print(f"layer-explorer: {exc}", file=sys.stderr)
        return EXIT_SOURCE
    except SelectionError as exc:
        print(f"layer-explorer: {exc}", file=sys.stderr)
        return EXIT_OTHER
    except ExplorerError as exc:
        print(f"layer-explorer: {exc}", file=sys.stderr)
        return EXIT_OTHER
    except BrokenPipeError:
        # The reader went away (report | head); say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OTHER
    except KeyboardInterrupt:
        return 130
    except MemoryError:
        print("layer-explorer: out of memory while reading the image", file=sys.stderr)
        return EXIT_OTHER
    except Exception as exc:  # a bug: one line, not a traceback, unless asked for
        if os.environ.get("LAYER_EXPLORER_DEBUG"):
            raise
        print(f"layer-explorer: internal error: {type(exc).__name__}: {exc} (set LAYER_EXPLORER_DEBUG=1 for details)", file=sys.stderr)
        return EXIT_OTHER
