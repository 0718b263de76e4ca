"""Canvas colours, taken from the application palette so light and dark systems both read."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtGui import QColor, QGuiApplication, QPalette

CATEGORY_HUES = {"Input": 210, "Dense": 265, "Convolution": 20, "Pooling": 45, "Normalization": 170,
                 "Activation": 130, "Regularization": 300, "Shape": 195, "Recurrent": 330, "Merge": 0,
                 "Padding": 60, "Transformer": 240, "Attention": 285, "Blocks": 225}


@dataclass
class Theme:
    dark: bool
    background: QColor
    grid: QColor
    node: QColor
    node_border: QColor
    text: QColor
    dim_text: QColor
    edge: QColor
    label_background: QColor
    selection: QColor
    error: QColor
    warning: QColor
    port: QColor

    def category(self, name: str) -> QColor:
        hue = CATEGORY_HUES.get(name, 220)
        return QColor.fromHsl(hue, 150, 95 if not self.dark else 150)


def current_theme() -> Theme:
    palette = QGuiApplication.palette()
    window = palette.color(QPalette.ColorRole.Window)
    dark = window.lightness() < 128
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    if dark:
        return Theme(True, base.darker(115), base.lighter(135), QColor(48, 52, 60), QColor(95, 100, 112),
                     text, QColor(165, 170, 180), QColor(140, 150, 165), QColor(40, 44, 52, 230),
                     palette.color(QPalette.ColorRole.Highlight), QColor(240, 90, 80), QColor(230, 170, 60),
                     QColor(150, 160, 175))
    return Theme(False, QColor(247, 248, 250), QColor(228, 231, 236), QColor(255, 255, 255),
                 QColor(170, 176, 186), text, QColor(95, 100, 110), QColor(120, 128, 140),
                 QColor(255, 255, 255, 230), palette.color(QPalette.ColorRole.Highlight),
                 QColor(205, 45, 40), QColor(190, 120, 0), QColor(110, 120, 135))
