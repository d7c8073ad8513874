"""The ``cfx`` command line. Each family registers its subcommands from its own module."""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import signal
import sys

from cfx import __version__
from cfx.cli import augment as augment_cmd
from cfx.cli import data as data_cmd
from cfx.cli import demo as demo_cmd
from cfx.cli import label as label_cmd
from cfx.cli import recourse as recourse_cmd
from cfx.cli import saliency as saliency_cmd
from cfx.cli import shortcuts as shortcuts_cmd
from cfx.cli import train as train_cmd
from cfx.cli import trajectory as trajectory_cmd
from cfx.cli.console import console
from cfx.errors import DivergedError, check_seed


class HelpWithDefaults(argparse.HelpFormatter):
    """Help that ends each option's text with ``(default: X)`` where there is a default worth
    showing (not None, not a flag's False) and the text does not already speak of its default;
    one format for every command (argparse's own formatter also printed ``(default: None)``
    for required options)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if (
            not text
            or "default" in text
            or action.required
            or not action.option_strings
            or action.default is None
            or action.default is False  # a flag's; `in` would take a default of 0 for it too
            or action.default == argparse.SUPPRESS
            or (isinstance(action.default, str | list | tuple) and not action.default)
        ):
            return text
        return text + " (default: %(default)s)"


def _finish(parser: argparse.ArgumentParser, *, top: bool = True) -> None:
    """:class:`HelpWithDefaults` for ``parser`` and every subcommand under it, and ``-v`` on
    every command too (``cfx trajectory -v`` was "unrecognized arguments"; the default is
    suppressed so a command's -v does not undo ``cfx -v trajectory``'s)."""
    parser.formatter_class = HelpWithDefaults
    subcommands = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for action in subcommands:
        for child in action.choices.values():
            _finish(child, top=False)
    if not top:
        # the deepest command's parser, for its own usage line on a stray argument
        parser.set_defaults(cfx_parser=parser)
        # -v on group commands too: `cfx train -v generator`
        parser.add_argument(
            "-v",
            "--verbose",
            action="store_true",
            default=argparse.SUPPRESS,
            help="log progress details (as cfx -v)",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cfx", description="Generative counterfactual explanations for PyTorch models."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    parser.add_argument("--version", action="version", version=f"cfx {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    augment_cmd.register(sub)
    demo_cmd.register(sub)
    data_cmd.register(sub)
    label_cmd.register(sub)
    recourse_cmd.register(sub)
    saliency_cmd.register(sub)
    shortcuts_cmd.register(sub)
    train_cmd.register(sub)
    trajectory_cmd.register(sub)
    _finish(parser)
    return parser


def _command(args: argparse.Namespace) -> str:
    """The command as typed, e.g. ``cfx saliency compare``, as argparse's own errors name it."""
    action = getattr(args, f"{args.command}_command", None)
    return f"cfx {args.command}" + (f" {action}" if action else "")


def _stdout_closed() -> bool:
    """Whether the reader of stdout has gone. Asked of the pipe itself (poll reports an
    error on a pipe's write end without readers): flushing again could not tell, since after
    the failed write Python had dropped the buffer, the flush succeeded and `cfx ... | head`
    ended in 'error: Broken pipe', exit 2 (session-53 audit). Without poll (Windows) or a
    file behind stdout, the flush."""
    import select

    try:
        fd: int | None = sys.stdout.fileno()
    except (OSError, ValueError, AttributeError):  # replaced by an object without a file
        fd = None
    if fd is not None and hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poller.poll(0))
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return True
    except (OSError, ValueError):
        return False
    return False


SEEDS = ("seed", "data_seed", "val_seed", "pool_seed")
"""Every command's seed options: each is checked before any command runs."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    command = vars(args).pop("cfx_parser", parser)  # not a setting: out of `args` at once
    if extra:  # said by the command's parser (it was cfx's top usage line, no command's)
        # a bare value first: `--methods gradient gradcam`, a list given with a space
        stray = not extra[0].startswith("-")
        hint = " (a list is one argument, comma-separated: a,b)" if stray else ""
        command.error(f"unrecognized arguments: {' '.join(extra)}{hint}")
    try:
        for dest in SEEDS:  # a seed NumPy or torch cannot take failed late: "Overflow when
            if getattr(args, dest, None) is not None:  # unpacking long long"; -1 drew a set
                check_seed(f"--{dest.replace('_', '-')}", getattr(args, dest), optional=False)
        with console(args.verbose):
            return int(args.run(args) or 0)
    except BrokenPipeError as err:  # `cfx ... | head` stopped reading: stop quietly, as
        # `cat` does; another pipe broken (a worker's) is an error like any other
        if args.verbose:
            raise
        if not _stdout_closed():
            print(f"{_command(args)}: error: {err}", file=sys.stderr)
            return 2
        # the interpreter's own flush at exit would fail (and say so) too
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # the shell's code for SIGPIPE
    except KeyboardInterrupt:  # Ctrl-C: one line, not a traceback from deep inside torch
        if args.verbose:
            raise
        print(f"{_command(args)}: interrupted", file=sys.stderr)
        return 130  # the shell's code for SIGINT
    except (ValueError, TypeError, KeyError, OSError, DivergedError) as err:
        # user errors, unreadable or unwritable files and diverged training: one clear line
        # (-v: the traceback)
        if args.verbose:
            raise
        hint = ""
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:  # it said only that
            name = err.filename
            where = f"the disk holding {os.path.dirname(name) or '.'}" if name else "the disk"
            hint = (
                f"; {where} is full: free space and rerun the same command (resumable runs "
                "keep what they finished: trajectory batches, training checkpoints, "
                "augmentation rounds, recourse plans)"
            )
        print(f"{_command(args)}: error: {err}{hint}", file=sys.stderr)
        return 2


def entry() -> int:
    """The ``cfx`` program (its script and ``python -m cfx``): :func:`main`, and once a
    Ctrl-C has stopped the command, a second one is ignored while the interpreter shuts down
    (it landed in an atexit callback and printed a traceback after "interrupted"). Not in
    :func:`main` itself: a caller in Python keeps its own Ctrl-C."""
    code = main()
    if code == 130:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    raise SystemExit(entry())
