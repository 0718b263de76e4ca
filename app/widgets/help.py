"""Help > About (what runs here: versions and devices) and Help > Getting started (an
illustrated walk-through shipped in ``app.resources/help``)."""

from __future__ import annotations

import platform
from importlib import metadata, resources
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import Qt, QUrl, qVersion
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPushButton, QTextBrowser, QVBoxLayout, QWidget

from .. import __version__


def versions() -> list[tuple[str, str]]:
    """(component, version) for NetCanvas and what it runs on; absent packages say so."""
    rows = [("NetCanvas", __version__), ("Python", platform.python_version()),
            ("Qt", qVersion()), ("PySide6", pyside_version)]
    for package in ("torch", "numpy", "pyqtgraph", "onnx", "onnxruntime", "onnxscript", "safetensors", "triton"):
        try:
            rows.append((package, metadata.version(package)))
        except metadata.PackageNotFoundError:
            rows.append((package, "not installed"))
    rows.append(("System", f"{platform.system()} {platform.release()} ({platform.machine()})"))
    return rows


def devices() -> list[str]:
    from ..engine.devices import list_devices

    return [d.label() for d in list_devices()]


def about_text() -> str:
    """Plain text of the About box (what "Copy" puts on the clipboard)."""
    lines = [f"{name}: {version}" for name, version in versions()]
    lines += [f"device {d}" for d in devices()]
    return "\n".join(lines)


class AboutDialog(QDialog):
    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About NetCanvas")
        rows = "".join(f"<tr><td>{name}</td><td><b>{version}</b></td></tr>" for name, version in versions())
        rows += "".join(f"<tr><td>device</td><td><b>{d}</b></td></tr>" for d in devices())
        self.label = QLabel(
            f"<h3>NetCanvas {__version__}</h3><p>Design neural networks by drawing them, train them "
            "and watch them learn, and export them to ONNX and PyTorch.</p>"
            f"<table cellspacing=4>{rows}</table>")
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        copy = QPushButton("Copy")
        copy.setToolTip("Copy the versions and devices (for a bug report)")
        buttons.addButton(copy, QDialogButtonBox.ButtonRole.ActionRole)
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(about_text()))
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(buttons)


def icon_path() -> Path:
    return Path(str(resources.files("app.resources") / "icons" / "netcanvas.svg"))


def help_dir() -> Path:
    return Path(str(resources.files("app.resources") / "help"))


class GettingStartedDialog(QDialog):
    """The walk-through, in a browser that follows its own links (external ones open in the
    system's browser)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Getting started with NetCanvas")
        self.browser = QTextBrowser()
        self.browser.setOpenExternalLinks(True)
        self.browser.setSearchPaths([str(help_dir())])
        self.browser.setSource(QUrl.fromLocalFile(str(help_dir() / "getting_started.html")))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(820, 720)
