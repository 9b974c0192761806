"""``raynas`` command line: parses arguments and calls exactly one library function per command.

Exit codes: 0 success, 2 bad input (any :class:`RaynasError`, argparse errors), 1 unexpected failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable, Sequence

from raynas import __version__
from raynas.errors import RaynasError

log = logging.getLogger("raynas")

#: command modules, each exposing ``add_parser(subparsers)`` that sets ``func`` on its parser
_COMMANDS = ("list_cmd", "score_cmd", "search_cmd", "report_cmd", "show_cmd")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = argparse.ArgumentParser(
        prog="raynas",
        description="Large-scale training-free neural architecture search on Ray.",
        epilog="Exit codes: 0 ok, 2 bad input, 1 failure. See `raynas COMMAND --help`.",
    )
    parser.add_argument("--version", action="version", version=f"raynas {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging verbosity (default WARNING)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _COMMANDS:
        importlib.import_module(f"raynas.cli.{mod}").add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    func: Callable[[argparse.Namespace], int | None] = args.func
    try:
        rc = func(args)
    except RaynasError as e:
        sys.stderr.write(f"raynas: error: {e}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("raynas: interrupted; stored results are kept (re-run with --resume)\n")
        return 130
    except Exception as e:  # noqa: BLE001 - last-resort mapping to exit code 1 with one line
        log.debug("unexpected failure", exc_info=True)
        sys.stderr.write(f"raynas: failure: {type(e).__name__}: {e} (use --log-level DEBUG for the traceback)\n")
        return 1
    return int(rc or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
