"""``raynas`` command line: parses arguments and calls exactly one library function per command.

Exit codes: 0 success, 2 bad input (any :class:`RaynasError`, argparse errors), 1 unexpected failure.
A reader that closes stdout early (``raynas show RUN | head``) ends any command quietly with 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

from raynas import __version__
from raynas.errors import RaynasError

log = logging.getLogger("raynas")

#: command modules, each exposing ``add_parser(subparsers)`` that sets ``func`` on its parser
_COMMANDS = ("list_cmd", "score_cmd", "search_cmd", "report_cmd", "show_cmd", "export_cmd")


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


def _stdout_closed() -> bool:
    """True when stdout is a pipe or socket whose reader has gone (poll reports an error on it)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a non-file object, or already closed
        return False
    try:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        events = poller.poll(0)
    except (AttributeError, OSError, ValueError):  # no poll() here (Windows): trust the BrokenPipeError
        return True
    return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in events)


def _silence_stdout() -> None:
    """Point stdout at devnull so the interpreter's final flush cannot fail again (the recipe of the Python
    docs' signal module notes on SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        rc = _main(argv)
        sys.stdout.flush()  # a closed stdout shows up here at the latest
    except BrokenPipeError:  # only a closed stdout gets here (see _main)
        _silence_stdout()
        return 0
    return rc


def _main(argv: Sequence[str] | None) -> int:
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
        sys.stderr.write(f"raynas: {_interrupted(args)}\n")
        return 130
    except BrokenPipeError as e:
        if _stdout_closed():  # the reader of our output has gone: main() ends quietly
            raise
        return _failure(e)  # some other pipe (a worker's, a socket) broke: a real failure
    except Exception as e:  # noqa: BLE001 - last-resort mapping to exit code 1 with one line
        return _failure(e)
    return int(rc or 0)


def _interrupted(args: argparse.Namespace) -> str:
    """The command's own account of what an interrupt left (``interrupted`` set by its parser), else a plain word."""
    describe: Callable[[argparse.Namespace], str] | None = getattr(args, "interrupted", None)
    if describe is None:
        return "interrupted"
    try:
        return describe(args)
    except (OSError, RaynasError) as e:  # the account is a courtesy: never let it hide the interrupt
        log.debug("could not tell what the interrupted command stored", exc_info=e)
        return "interrupted"


def _failure(e: BaseException) -> int:
    log.debug("unexpected failure", exc_info=e)
    sys.stderr.write(f"raynas: failure: {type(e).__name__}: {e} (use --log-level DEBUG for the traceback)\n")
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
