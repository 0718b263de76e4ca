"""``netcanvas`` / ``python -m app``: the editor by default, or a headless command."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    import multiprocessing

    multiprocessing.freeze_support()  # a frozen build's training process starts here too
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("--version", "-V"):
        from . import __version__

        print(f"netcanvas {__version__}")
        return 0
    from .engine import cli

    if args and (args[0] in cli.COMMANDS or args[0] in ("-h", "--help")):
        return cli.main(args)
    from .gui import run_gui

    return run_gui(args)


if __name__ == "__main__":
    sys.exit(main())
