"""The ``layer-explorer`` command: the window by default, headless subcommands otherwise.

Nothing here imports Qt unless the window is asked for, so ``report`` runs on machines
without a display or Qt libraries.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import sys
from typing import Any, Sequence

from explorer import __version__
from explorer.model.errors import ExplorerError, SelectionError, SourceError
from explorer.model.text import printable, printable_lines

EXIT_OK, EXIT_OTHER, EXIT_SOURCE = 0, 1, 2  # 2 also: the window cannot start here
SKIPPED_SHOWN = 200  # lines of what extraction left out, before a count of the rest


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error exits 1: 2 is reserved for unreadable sources."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_OTHER, f"{self.prog}: error: {message}\n")


def _report_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="layer-explorer report", description="Print what is inside one image of SOURCE.")
    p.add_argument("source", metavar="SOURCE", help="an image archive (tar, optionally gzip/zstd/xz/bzip2), an OCI layout "
                   "folder, docker://IMAGE, podman://IMAGE or registry://HOST[:PORT]/REPO[:TAG|@DIGEST]")
    _selection(p)
    p.add_argument("--verify", action="store_true", help="read every layer blob whole and check its digest and diff_id "
                   "(exit 1 on a mismatch)")
    _output_format(p)
    return p


def _output_format(p: argparse.ArgumentParser) -> None:
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", dest="fmt", action="store_const", const="json", help="print JSON (the default when stdout is not a terminal)")
    out.add_argument("--text", dest="fmt", action="store_const", const="text", help="print a readable summary")


def _selection(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-cache", action="store_true", help="neither use nor write the index cache")
    p.add_argument("--insecure", action="store_true", help="talk plain HTTP to a registry:// source (a local test registry)")
    p.add_argument("--image", metavar="REF", help="in a multi-image archive: a tag, a position (0, 1, ...) or a config digest (prefix)")
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="in a multi-platform index (default: this machine's, else the first)")


def _cat_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="layer-explorer cat", description="Write the content of one file of an image to stdout.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("path", metavar="PATH", help="absolute path inside the image, e.g. /etc/os-release")
    p.add_argument("--layer", type=int, metavar="K", help="as it is after layer K (default: the final image)")
    _selection(p)
    return p


def _extract_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="layer-explorer extract",
                description="Extract a file, a folder or the whole filesystem of an image into a folder, safely: "
                "nothing is written outside it and nothing in it is overwritten.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("path", metavar="PATH", nargs="?", default="/", help="what to extract (default: everything)")
    p.add_argument("-o", "--output", metavar="DIR", required=True, help="the folder to extract into (created if missing)")
    p.add_argument("--layer", type=int, metavar="K", help="the filesystem as it is after layer K (default: the final image)")
    p.add_argument("--only-layer", action="store_true", help="only what layer K itself stored (needs --layer)")
    p.add_argument("--raw", action="store_true", help="save layer K's tar as it is (needs --layer), as DIR/layer-K.tar")
    p.add_argument("--devices", action="store_true", help="create device files too (needs root)")
    p.add_argument("--keep-special-bits", action="store_true", help="keep setuid and setgid bits")
    p.add_argument("--same-owner", action="store_true", help="give files the uid:gid the image says (needs root)")
    _selection(p)
    return p


def _source_args(args: argparse.Namespace, sources: tuple[str, ...] = ("source",)) -> argparse.Namespace:
    """Apply ``--insecure`` to registry sources (the arguments named ``sources``), and ``--no-cache``."""
    if getattr(args, "no_cache", False):
        os.environ["LAYER_EXPLORER_NO_INDEX_CACHE"] = "1"
    if getattr(args, "insecure", False):
        from explorer.formats.registry import insecure_url

        for name in sources:
            setattr(args, name, insecure_url(getattr(args, name)))
    return args


def _open_image(args: argparse.Namespace, on_tree=None):
    """Open the source and load the selected image (the caller closes the source); ``on_tree``
    as for ``load_image``."""
    from explorer.image.loader import load_image
    from explorer.formats.source import open_source

    source = open_source(args.source)
    try:
        image = load_image(source, source.select(args.image, args.platform), parallel=True, on_tree=on_tree)
        return source, _left_for_exit(image)
    except BaseException:
        source.close()
        raise


def _check_layer(image, layer: int | None) -> None:
    if layer is not None and not 0 <= layer < len(image.layers):
        raise SelectionError(f"no layer {layer}: the image has layers 0..{len(image.layers) - 1}")


def _where(layer: int | None) -> str:
    return "the final image" if layer is None else f"layer {layer}"


def _through(found) -> str:
    """What a lookup went through, for a message: `` (through /bin -> usr/bin)``."""
    return f" (through {found.route()})" if found.via else ""


def _look_up(image, path: str, layer: int | None, follow_last: bool):
    """A path as a process in the container finds it; says on stderr which links it took."""
    from explorer.tree.resolve import resolve

    found = resolve(image.tree, path, layer, follow_last)
    if found.problem is not None:
        raise SelectionError(f"{path}: {found.problem} at {_where(layer)}{_through(found)}")
    if found.via and found.entry is not None:
        print(f"layer-explorer: {path} is {found.path}{_through(found)}", file=sys.stderr)
    return found


def run_cat(argv: Sequence[str]) -> int:
    """``layer-explorer cat``."""
    from explorer.image.content import open_entry

    args = _source_args(_cat_parser().parse_args(argv))
    source, image = _open_image(args)
    with source:
        _check_layer(image, args.layer)
        found = _look_up(image, args.path, args.layer, follow_last=True)
        entry = found.entry
        if entry is None or entry.type == "dir":
            what = "a folder" if entry is not None else "no such file"
            raise SelectionError(f"{args.path}: {what} at {_where(args.layer)}{_through(found)}")
        read = open_entry(source, image, image.tree.effective(entry, args.layer))
        out = sys.stdout.buffer
        while chunk := read(1 << 20):
            out.write(chunk)
        out.flush()
    return EXIT_OK


def run_extract(argv: Sequence[str]) -> int:
    """``layer-explorer extract``."""
    from explorer.image.extract import ExtractOptions, extract, select_entries, write_layer_tar
    from explorer.tree.names import normalise

    args = _source_args(_extract_parser().parse_args(argv))
    if (args.only_layer or args.raw) and args.layer is None:
        raise SelectionError("--only-layer and --raw need --layer K")
    source, image = _open_image(args)
    with source:
        _check_layer(image, args.layer)
        if args.raw:
            os.makedirs(args.output, exist_ok=True)
            target = os.path.join(args.output, f"layer-{args.layer}.tar")
            size = write_layer_tar(source, image, args.layer, target)
            print(f"wrote {target} ({size:,} bytes)", file=sys.stderr)
            return EXIT_OK
        path = normalise(args.path) or "/"
        if path != "/":
            # a symlink itself, as docker cp copies it; with a trailing slash what it leads to, as ls /bin/
            follow = args.path.endswith("/")
            found = _look_up(image, path, args.layer, follow_last=follow)
            if found.entry is None and not args.only_layer:
                raise SelectionError(f"{args.path}: no such file at {_where(args.layer)}{_through(found)}")
            if found.entry is not None and found.entry.type == "symlink":
                print(printable(f"layer-explorer: {args.path} is a symlink to {found.entry.target}: it is extracted as a "
                                f"link; ask for {args.path.rstrip('/')}/ to extract what it leads to"), file=sys.stderr)
            path = found.path
        entries = select_entries(image, path, args.layer, args.only_layer)
        result = extract(source, image, entries, args.output, base=path,
                         options=ExtractOptions(devices=args.devices, special_bits=args.keep_special_bits,
                                                owners=args.same_owner))
    print(result.summary(), file=sys.stderr)
    _say_paths("skipped", result.skipped, "skipped")
    _say_paths("note:", result.changed, "written so")
    if result.changed:
        print("(--keep-special-bits keeps setuid and setgid bits)", file=sys.stderr)
    return EXIT_OK


def _say_paths(word: str, said: list[tuple[str, str]], more: str) -> None:
    """One line per (path, why), the first ``SKIPPED_SHOWN`` of them: a hostile image can make
    millions, and the first say enough."""
    for p, why in said[:SKIPPED_SHOWN]:
        print(printable(f"{word} {p[:1000]}: {why}"), file=sys.stderr)
    if len(said) > SKIPPED_SHOWN:
        print(f"... and {len(said) - SKIPPED_SHOWN:,} more {more}", file=sys.stderr)


def _check_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="layer-explorer check",
                description="Check an image against efficiency rules (dive's .dive-ci rules and numbers). "
                "Exit 0 when every rule passes, 1 when one fails, 2 when the source cannot be read.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--lowest-efficiency", metavar="X", help="fail below this efficiency score (0..1)")
    p.add_argument("--highest-wasted-bytes", metavar="N", help="fail above this many wasted bytes (20MB, 1.5GiB, ...)")
    p.add_argument("--highest-user-wasted-percent", metavar="P", help="fail above this share of wasted bytes (0..1)")
    p.add_argument("--config", metavar="FILE", help="a .dive-ci file (default: ./.dive-ci when it exists)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    _selection(p)
    return p


def run_check(argv: Sequence[str]) -> int:
    """``layer-explorer check``: the CI gate."""
    from explorer.check import evaluate, format_results, rules_from

    args = _source_args(_check_parser().parse_args(argv))
    rules = rules_from(args.config, args.lowest_efficiency, args.highest_wasted_bytes, args.highest_user_wasted_percent)
    source, image = _open_image(args)
    with source:
        results = evaluate(image, rules)
        _keep_index(source, image)
    if args.json:
        from explorer.report import efficiency_record

        sys.stdout.write(json.dumps({"source": args.source, "efficiency": efficiency_record(image),
                                     "rules": [r.__dict__ for r in results],
                                     "passed": all(r.passed for r in results)}, default=str) + "\n")
    else:
        sys.stdout.write(format_results(image, results))
    return EXIT_OK if all(r.passed for r in results) else EXIT_OTHER


def _diff_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="layer-explorer diff", description="Compare two images: shared layers and how their files differ.")
    p.add_argument("a", metavar="A", help="the first image's source")
    p.add_argument("b", metavar="B", help="the second image's source (may be the same archive)")
    for side in ("a", "b"):
        p.add_argument(f"--image-{side}", metavar="REF", help=f"the image of {side.upper()} (tag, position or digest)")
        p.add_argument(f"--platform-{side}", metavar="OS/ARCH", help=f"the platform of {side.upper()}")
    p.add_argument("--insecure", action="store_true", help="talk plain HTTP to registry:// sources")
    p.add_argument("--no-cache", action="store_true", help="neither use nor write the index cache")
    _output_format(p)
    return p


def _many_parser(command: str) -> argparse.ArgumentParser:
    if command == "updates":
        p = _Parser(prog="layer-explorer updates", description="What each update of an image downloads: several "
                    "versions of one image, oldest first, and the layers to split, merge or move.")
        p.add_argument("sources", metavar="VERSION", nargs="+", help="an archive, a layout folder, docker://IMAGE or "
                       "registry://HOST/REPO:TAG per version, oldest first; registry://HOST/REPO with --tags N")
        p.add_argument("--tags", type=int, metavar="N", help="for a registry://HOST/REPO: its N newest tags")
    else:
        p = _Parser(prog="layer-explorer fleet", description="The layers many images share, the bytes they take "
                    "together and alone, and the base images they are built on.")
        p.add_argument("sources", metavar="SOURCE", nargs="+", help="archives (every image of each), layout folders, "
                       "docker://IMAGE, or docker:// alone for every local image")
    p.add_argument("--insecure", action="store_true", help="talk plain HTTP to registry:// sources")
    p.add_argument("--no-cache", action="store_true", help="neither use nor write the index cache (images are then "
                   "read one after the other)")
    _output_format(p)
    return p


def run_many(command: str, argv: Sequence[str]) -> int:
    """``layer-explorer updates`` and ``layer-explorer fleet``."""
    from explorer.formats.registry import insecure_url
    from explorer.image.many import expand, measure
    from explorer.report import fleet_text, updates_text

    args = _source_args(_many_parser(command).parse_args(argv), ())
    if args.insecure:
        args.sources = [insecure_url(s) for s in args.sources]
    fmt = args.fmt or ("text" if sys.stdout.isatty() else "json")
    wanted = expand(args.sources, every_image=command == "fleet", newest_tags=getattr(args, "tags", None))
    if command == "updates" and len(wanted) < 2:
        raise SelectionError("updates needs at least two versions, oldest first")
    if not wanted:
        raise SelectionError("no image to look at")

    def progress(done: int, total: int, name: str) -> None:
        if sys.stderr.isatty():
            print(f"\rlayer-explorer: indexed {done} of {total} ({name})\033[K", end="", file=sys.stderr, flush=True)

    report = measure(command, wanted, progress, hold=lambda opened: _left_for_exit(opened.image))
    if sys.stderr.isatty():
        print(file=sys.stderr)
    if fmt == "json":
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        sys.stdout.write(updates_text(report) if command == "updates" else fleet_text(report))
    return EXIT_OK


def run_diff(argv: Sequence[str]) -> int:
    """``layer-explorer diff A B``."""
    from explorer.image.compare import compare
    from explorer.image.loader import load_image
    from explorer.formats.source import open_source
    from explorer.report import diff_report, diff_text

    args = _source_args(_diff_parser().parse_args(argv), ("a", "b"))
    fmt = args.fmt or ("text" if sys.stdout.isatty() else "json")
    with open_source(args.a) as sa, open_source(args.b) as sb:
        ref_a, ref_b = sa.select(args.image_a, args.platform_a), sb.select(args.image_b, args.platform_b)
        for side, source, ref, asked in (("a", sa, ref_a, args.image_a or args.platform_a),
                                         ("b", sb, ref_b, args.image_b or args.platform_b)):
            if len(source.images) > 1 and not asked:
                print(_default_image_note(side, source, ref), file=sys.stderr)
        a = _left_for_exit(load_image(sa, ref_a, parallel=True))
        b = _left_for_exit(load_image(sb, ref_b, parallel=True))
        report = diff_report(compare(sa, a, sb, b), args.a, args.b)
    sys.stdout.write(json.dumps(report) + "\n" if fmt == "json" else diff_text(report))
    return EXIT_OK


def _default_image_note(side: str, source, chosen) -> str:
    """Which image of a multi-image side ``diff`` took by default, the others, and how to choose."""
    lines = [f"layer-explorer: {side.upper()}: {source.info.path} holds {len(source.images)} images; comparing "
             f"image {chosen.index} (*); choose with --image-{side} REF or --platform-{side} OS/ARCH:"]
    for ref in source.images:
        mark = "*" if ref.index == chosen.index else " "
        lines.append(f"  {mark} {ref.index}: {', '.join(ref.tags) or '<untagged>'}  {ref.platform or 'unknown'}  {ref.config_digest[:19]}")
    return printable_lines(lines).rstrip("\n")


def _inspect_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="layer-explorer inspect",
                description="Print an image's config and identifiers, shaped like 'docker image inspect'.")
    p.add_argument("source", metavar="SOURCE")
    p.add_argument("--json", action="store_true", help="print JSON: a list of one object, like docker image inspect")
    p.add_argument("--documents", action="store_true", help="also print the JSON documents as stored (the output is JSON then)")
    _selection(p)
    return p


def run_inspect(argv: Sequence[str]) -> int:
    """``layer-explorer inspect``."""
    from explorer.image.inspect import documents, inspect_object, inspect_text

    args = _source_args(_inspect_parser().parse_args(argv))
    source, image = _open_image(args)
    with source:
        obj = inspect_object(source, image)
        if args.documents:
            obj["Documents"] = documents(source, image)
    # the documents are JSON: asked for, they come as JSON even without --json
    sys.stdout.write(json.dumps([obj], indent=4) + "\n" if args.json or args.documents else inspect_text(obj))
    return EXIT_OK


COMMANDS = ("report", "cat", "extract", "check", "diff", "inspect", "updates", "fleet")


def _main_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="layer-explorer",
        description="Look inside container images: layers, history, and the files each layer changed. "
        "With no command, opens the window (loading SOURCE if given).",
        epilog="Commands: 'report SOURCE' prints an image's layers, history and files; 'cat SOURCE PATH' "
        "writes one file to stdout; 'extract SOURCE [PATH] -o DIR' extracts safely; 'check SOURCE' gates CI on "
        "efficiency rules; 'diff A B' compares two images; 'inspect SOURCE' prints the config and identifiers; "
        "'updates V1 V2 ...' measures what each update of an image downloads; 'fleet SOURCE ...' what many "
        "images share. Each has --help.",
    )
    p.add_argument("sources", nargs="*", metavar="SOURCE", help="image archives or OCI layout folders to open")
    p.add_argument("--demo", action="store_true", help="open the bundled sample image")
    p.add_argument("--version", action="version", version=f"layer-explorer {__version__}")
    return p


def run_report(argv: Sequence[str]) -> int:
    """``layer-explorer report``."""
    from explorer.image.loader import prepare_first_view
    from explorer.report import ContentsInChild, build_report, text_report, write_json

    args = _source_args(_report_parser().parse_args(argv))
    fmt = args.fmt or ("text" if sys.stdout.isatty() else "json")
    contents: list[ContentsInChild] = []  # the JSON's file list, formatted on the other core meanwhile

    def format_contents(tree) -> None:
        child = ContentsInChild.start(tree, sys.stdout)
        if child is not None:
            contents.append(child)

    try:
        source, image = _open_image(args, format_contents if fmt == "json" else None)
        with source:
            image = image.replace(warnings=image.warnings + tuple(source.notes))
            checks = None
            if args.verify:
                from explorer.image.verify import describe, verify

                checks = verify(source, image)
                image = image.replace(warnings=image.warnings + tuple(describe(c) for c in checks if not c.ok),
                                      verification=[c.as_dict() for c in checks])
            if fmt == "json":
                write_json(image, source.images, args.source, sys.stdout, contents[0] if contents else None)
            else:
                image = prepare_first_view(image)  # the counts (a cached index has them)
                report = build_report(image, source.images, args.source, contents=False)
                owned = [l.owned_bytes for l in image.packages.layers] if image.packages else None
                sys.stdout.write(text_report(report, image.file_count, image.file_bytes, owned))
            sys.stdout.flush()
            _keep_index(source, image)
    finally:
        for child in contents:
            child.cancel()  # a no-op once it has written
    if checks is not None and not all(c.ok for c in checks):
        print(f"layer-explorer: {args.source}: verification failed for layer(s) "
              f"{', '.join(str(c.layer) for c in checks if not c.ok)}", file=sys.stderr)
        return EXIT_OTHER
    if checks is not None and fmt != "json":  # (the JSON says it in "verification")
        print(f"layer-explorer: {args.source}: verified: every layer's blob digest and diff_id match "
              f"({len(checks)} layer(s))", file=sys.stderr)
    return EXIT_OK


_DETACH_SAVES = False  # set by the console script: save the index in a child, not in the user's time
# Images the console script leaves for its exit, which skips freeing millions of objects one
# by one (a third of a second at a million files).
_LEFT_FOR_EXIT: list[Any] = []


def _left_for_exit(image: Any) -> Any:
    """``image``, kept for the console script's exit (see ``_LEFT_FOR_EXIT``)."""
    if _DETACH_SAVES:
        _LEFT_FOR_EXIT.append(image)
    return image


def _keep_index(source, image) -> None:
    """Save the index for the next open, after the output: the reader should not wait for it.

    From the console script (a process without threads) a forked child writes it while the
    command returns.
    """
    if image.from_cache:
        return
    from explorer.image import index_cache

    if not index_cache.enabled():
        return
    if _DETACH_SAVES and hasattr(os, "fork"):
        sys.stdout.flush()
        if os.fork() == 0:
            try:
                os.setsid()
                index_cache.save(source, image)
            finally:
                os._exit(0)
        return
    index_cache.save(source, image)


def entry() -> None:
    """The console script: run, then leave without tearing down millions of objects one by one."""
    global _DETACH_SAVES
    _DETACH_SAVES = True
    if sys.argv[1:2] and sys.argv[1] in COMMANDS:
        # A command's process keeps the cycle collector off to its end: turned on again as
        # ``main`` returns, its first pass walked every object the command had made (0.7 s
        # after a report of a million entries), just before leaving without freeing them.
        gc.disable()
    code = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        pass
    os._exit(code)


def _command(name: str, argv: list[str]) -> int:
    """Run one of ``COMMANDS``."""
    if name in ("updates", "fleet"):
        return run_many(name, argv)
    run = {"report": run_report, "cat": run_cat, "extract": run_extract, "check": run_check, "diff": run_diff,
           "inspect": run_inspect}[name]
    return run(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv and argv[0] in COMMANDS:
            from explorer.image.loader import collector_off

            with collector_off():  # (what a command builds, it holds until it ends)
                return _command(argv[0], argv[1:])
        if argv and re.fullmatch(r"[a-z][a-z-]*", argv[0]) and not os.path.exists(argv[0]):
            # a word that is neither a command nor a file: a mistyped command, not an image to open
            raise SelectionError(f"no command or file named {argv[0]!r}; the commands are "
                                 f"{', '.join(COMMANDS)} (each has --help), or give an image to open")
        args = _main_parser().parse_args(argv)
        from explorer.ui.display_check import problem

        message = problem()
        if message:  # Qt would abort (SIGABRT) where Python cannot catch it: say what to do
            print(message, file=sys.stderr)
            return EXIT_SOURCE
        try:
            from explorer.app import main as run_window
        except ImportError as exc:  # a library Qt itself links (libGL, libEGL, fontconfig) is missing
            print(f"layer-explorer: the window cannot load Qt ({exc}); install that library with your package "
                  "manager, or use 'layer-explorer report --text SOURCE'", file=sys.stderr)
            return EXIT_SOURCE
        return run_window((["--demo"] if args.demo else []) + list(args.sources))
    except SourceError as exc:
        print(printable(f"layer-explorer: {exc}"), file=sys.stderr)
        return EXIT_SOURCE
    except ExplorerError as exc:  # a selection that matches nothing, among others
        print(printable(f"layer-explorer: {exc}"), file=sys.stderr)
        return EXIT_OTHER
    except BrokenPipeError:  # before OSError, which it is one of
        # The reader went away (report | head); say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OTHER
    except OSError as exc:  # the output side: a folder that cannot be written, a full disk
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"layer-explorer: {where}{exc.strerror or exc}", file=sys.stderr)
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
