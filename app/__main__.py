"""``netcanvas`` / ``python -m app``: the editor by default, or a headless command."""

from __future__ import annotations

import multiprocessing
import os
import sys

from . import __version__

INTERRUPTED = 130  # the shell's code for a program ended by Ctrl+C (128 + SIGINT)


def main(argv: list[str] | None = None) -> int:
    multiprocessing.freeze_support()  # a frozen build's training process starts here too
    _printable_streams()
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in ("--version", "-V"):
            print(f"netcanvas {__version__}")
            return 0
        from .engine import cli  # here: not for --version, and Ctrl+C while torch loads is caught below

        if args and (args[0] in cli.COMMANDS or args[0] in ("-h", "--help")):
            return cli.main(args)
        from .gui import run_gui  # here: the headless commands never load Qt

        return run_gui(args)
    except KeyboardInterrupt:  # Ctrl+C before a command took it over (while torch loads, say)
        try:
            sys.stderr.write("netcanvas: interrupted (Ctrl+C)\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        return INTERRUPTED
    except BrokenPipeError:  # the reader went away (``netcanvas check x --json | head``): not an error of ours
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not fail again on the
    closed pipe (what Python's documentation advises for SIGPIPE)."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _printable_streams() -> None:
    """Text that the terminal's encoding cannot hold (a lone surrogate in a project's name,
    say) is written as a backslash escape instead of ending the command with an error."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):
                pass


if __name__ == "__main__":
    sys.exit(main())
