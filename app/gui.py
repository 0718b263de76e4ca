"""Starting the editor: ``netcanvas [FILE] [--screenshot OUT.png]``."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _has_display() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return True
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def prepare_qt() -> None:
    """Environment for Qt, before the QApplication exists (the app and its benchmarks).

    Qt's raster engine splits large fills over a thread pool of its own. While a run trains,
    its threads take every core; a paint helper that wakes takes one from them, and the
    other training threads wait for it at the end of each parallel operation. The editor's
    fills take a few milliseconds at most, so they stay on the GUI thread (Qt reads
    QT_NO_GUI_THREADPOOL, any value; NETCANVAS_PAINT_THREADS=1 keeps the pool)."""
    if not os.environ.get("NETCANVAS_PAINT_THREADS"):
        os.environ.setdefault("QT_NO_GUI_THREADPOOL", "1")


def run_gui(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="netcanvas", description="NetCanvas: design, train and export "
                                     "neural networks. Headless commands: netcanvas check | train | examples.")
    parser.add_argument("file", nargs="?", help="a project to open (default: the LeNet-5 example)")
    parser.add_argument("--screenshot", metavar="OUT.png", help="render the main window to OUT.png and exit")
    parser.add_argument("--size", default="1400x880", help="window size for --screenshot (WxH)")
    args = parser.parse_args(argv)
    if not _has_display():
        if not args.screenshot:
            print("netcanvas: no display found (DISPLAY is not set); the editor needs one. Headless "
                  "commands work anywhere: netcanvas check FILE, netcanvas train FILE, netcanvas examples.",
                  file=sys.stderr)
            return 2
        os.environ["QT_QPA_PLATFORM"] = "offscreen"

    prepare_qt()
    # Qt is imported once prepare_qt() has set the environment it reads as it loads
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from .widgets.errors import ErrorHandler
    from .widgets.help import icon_path
    from .widgets.main_window import MainWindow
    from .widgets.threads import GuiGarbageCollector

    from .engine.examples import example_path  # torch comes with it: after the display check

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("NetCanvas")
    app.setApplicationName("NetCanvas")
    app.setDesktopFileName("netcanvas")
    app.setWindowIcon(QIcon(str(icon_path())))
    collector = GuiGarbageCollector(app)  # noqa: F841 - held while the app runs (threads.py says why)
    window = MainWindow()
    errors = ErrorHandler(window)  # every error that escapes: logged, shown, and the editor goes on
    errors.install()
    if args.file:
        target, example, problem = _file_or_example(args.file)
        if problem:
            window.show_error("Cannot open", problem)
        opened = not problem and window.open_file(target, example=example, ask=False)
        if not opened and args.screenshot:
            print(f"netcanvas: {window.last_error}", file=sys.stderr)
            return 2
    else:
        window.open_file(example_path("lenet5"), example=True, ask=False)
    if args.screenshot:
        return _screenshot(app, window, args.screenshot, args.size)
    window.show()
    window.offer_recoveries()
    try:
        return app.exec()
    finally:
        errors.uninstall()  # the window and its handler go away with the event loop


def _file_or_example(spec: str):
    """(path, is an example, problem) for ``netcanvas SPEC``: a file, or an example's name as
    the headless commands take it (``netcanvas resnet``; the rule of ``app.engine.cli_io.open_project``:
    a name that is no file, has no folder and does not end in .json). ``problem``: what to
    say when it is neither."""
    # torch comes with these: `netcanvas` without a display says so before loading it
    from .engine.errors import ProjectError
    from .engine.examples import example_path

    if Path(spec).exists() or spec.lower().endswith((".json", ".onnx")) or "/" in spec or "\\" in spec:
        return spec, False, ""
    try:
        return example_path(spec), True, ""
    except ProjectError as e:
        return spec, False, f"{spec}: no such file, and {e}"


def _screenshot(app, window, out: str, size: str) -> int:
    width, height = (int(v) for v in size.lower().split("x"))
    window.resize(width, height)
    window.show()
    for _ in range(3):
        app.processEvents()
    window.view.fit()
    app.processEvents()
    ok = window.grab().save(out)
    window.doc.history.set_clean()
    window.close()
    if not ok:
        print(f"netcanvas: could not write {out}", file=sys.stderr)
        return 1
    print(out)
    return 0
