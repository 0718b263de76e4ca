"""Help > About (what runs here: versions and devices) and Help > Getting started (an
illustrated walk-through shipped in ``app.resources/help``)."""

from __future__ import annotations

import platform
from importlib import metadata, resources
from pathlib import Path

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QSize, Qt, QUrl, qVersion
from PySide6.QtGui import QDesktopServices, QGuiApplication, QImage, QPixmap, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QScrollArea,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from .. import __version__
from ..engine.devices import list_devices


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
    system's browser). Its pictures (screenshots of the whole window) take the browser's
    width, up to their own size, as the dialog is resized; a click shows one at full size."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Getting started with NetCanvas")
        self._sizes: dict[str, QSize] = {}  # each picture's own size
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)  # pictures open in a viewer; pages and web links below
        self.browser.anchorClicked.connect(self._follow)
        self.browser.setSearchPaths([str(help_dir())])
        self.browser.setSource(QUrl.fromLocalFile(str(help_dir() / "getting_started.html")))
        self.viewer: ImageViewer | None = None
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        screen = QGuiApplication.primaryScreen().availableGeometry() if QGuiApplication.primaryScreen() else None
        width, height = (1200, 900) if screen is None else (min(1200, int(screen.width() * 0.85)),
                                                           min(900, int(screen.height() * 0.85)))
        self.resize(max(width, 640), max(height, 480))

    def image_widths(self) -> dict[str, int]:
        """Each picture's name -> the width it is drawn at now."""
        return {fmt.name(): int(fmt.width()) for _cursor, fmt in self._images()}

    def _images(self):
        doc = self.browser.document()
        block = doc.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                if fragment.isValid() and fragment.charFormat().isImageFormat():
                    cursor = QTextCursor(doc)
                    cursor.setPosition(fragment.position())
                    cursor.setPosition(fragment.position() + fragment.length(), QTextCursor.MoveMode.KeepAnchor)
                    yield cursor, fragment.charFormat().toImageFormat()
                it += 1
            block = block.next()

    def _fit_images(self) -> None:
        room = self.browser.viewport().width() - 2 * int(self.browser.document().documentMargin()) - 6
        for cursor, fmt in list(self._images()):
            if fmt.name() not in self._sizes:  # read once: a resize must not decode every picture
                self._sizes[fmt.name()] = self._image(fmt.name()).size()
            size = self._sizes[fmt.name()]
            if size.isEmpty():
                continue
            width = max(120, min(size.width(), room))
            if int(fmt.width()) != width:
                fmt.setWidth(width)
                fmt.setHeight(width * size.height() / size.width())
                cursor.setCharFormat(fmt)

    def _image(self, name: str) -> QImage:
        return QImage(str(help_dir() / Path(name).name))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_images()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit_images()

    def _follow(self, url: QUrl) -> None:
        if url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
        elif url.path().lower().endswith(".png"):
            self.show_image(Path(url.path()).name)
        else:
            self.browser.setSource(url)

    def show_image(self, name: str) -> "ImageViewer":
        """The picture ``name`` at its own size, in a window of its own (scrolling if need be)."""
        if self.viewer is None:
            self.viewer = ImageViewer(self)
        self.viewer.show_image(self._image(name), name)
        return self.viewer


class ImageViewer(QDialog):
    """One picture at its own size, scrolling where the screen is smaller."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        area = QScrollArea()
        area.setWidget(self.label)
        area.setWidgetResizable(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(area)
        layout.addWidget(buttons)

    def show_image(self, image: QImage, name: str) -> None:
        self.setWindowTitle(name)
        self.label.setPixmap(QPixmap.fromImage(image))
        screen = QGuiApplication.primaryScreen().availableGeometry() if QGuiApplication.primaryScreen() else None
        limit = (1600, 1000) if screen is None else (screen.width() - 40, screen.height() - 60)
        self.resize(min(image.width() + 40, limit[0]), min(image.height() + 70, limit[1]))
        self.show()
        self.raise_()
