"""Editor fields for layer parameters: one factory per ``Param.kind``, and the text parsing
the line-edit fields share.

A field shows a value and reports user edits; it never keeps the value itself. Parsing is
lenient about spelling ("5, 3", "[5, 3]", "5 3") and leaves judging to ``Param.check``, so
the messages the user reads are the engine's own ("expected ..., received ...").
A block's parameters (kind ``any``) take any JSON value (``AnyField``); inside a block, a
field may also hold a reference to one of the block's parameters, ``"$width"``
(``ReferenceField``).
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..engine.blocks import reference
from ..engine.params import Param, is_int, show

MISSING = object()  # a parameter the node does not set and that has no default
INT_LIMIT = 2**31 - 1  # QSpinBox holds a C int


# -- values and text ------------------------------------------------------------------
def same(a: Any, b: Any) -> bool:
    """Equal and of the same types (``1``, ``1.0`` and ``True`` are different values here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def format_value(value: Any) -> str:
    """The text a line-edit field shows for ``value``: lists as ``5, 3``."""
    if value is MISSING or value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(format_value(v) if not isinstance(v, (list, dict)) else show(v)
                         for v in value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (str, int)):
        return str(value)
    return show(value)


def _number(token: str) -> Any:
    """``token`` as an int or a float where it reads as one, else the text unchanged."""
    for convert in (int, float):
        try:
            return convert(token)
        except ValueError:
            pass
    return token


def parse_text(param: Param, text: str) -> Any:
    """The value typed as ``text`` for ``param``, checked; raises ``ValueError`` with the
    message to show under the field."""
    t = text.strip()
    if not t:
        if param.nullable:
            return None
        raise ValueError(f"expected {param.expected()}")
    if param.kind in ("string", "column"):
        value: Any = int(t) if param.kind == "column" and re.fullmatch(r"-?\d+", t) else t
    elif t.lower() in ("none", "null"):
        value = None
    elif param.kind == "padding" and t.lower() == "same":
        value = "same"
    elif param.kind in ("int_or_pair", "padding", "shape", "scale"):
        bracketed = t.startswith("[") and t.endswith("]")
        inner = t[1:-1].strip() if bracketed else t
        parts = re.split(r"\s*,\s*|\s+", inner)
        if len(parts) == 1 and not bracketed and param.kind != "shape":
            value = _number(parts[0])
        else:
            value = [_number(p) for p in parts]
    else:  # float (and int, should a line edit ever hold one)
        value = _number(t)
        if param.kind == "float" and is_int(value):
            value = float(value)
    return param.check(value)


def parse_any(text: str) -> Any:
    """The value typed as ``text`` where any JSON value is allowed (a block's parameter):
    JSON as written (``64``, ``[3, 3]``, ``true``, ``"same"``), plus the spellings the other
    fields accept: ``True``/``False``/``None``, ``3, 3`` or ``3 3`` for a list of numbers,
    and a bare word as text. Raises ValueError for empty text and for a broken list."""
    t = text.strip()
    if not t:
        raise ValueError("expected a value: a number, true or false, a list such as [3, 3], or text")
    try:
        return json.loads(t)
    except (ValueError, RecursionError):
        pass
    lowered = t.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    inner = t[1:-1].strip() if t.startswith("[") and t.endswith("]") else t
    parts = [p for p in re.split(r"\s*,\s*|\s+", inner) if p]
    numbers = [_number(p) for p in parts]
    if len(parts) > 1 and not any(isinstance(n, str) for n in numbers):
        return numbers
    if t.startswith(("[", "{")):
        raise ValueError(f"{t} is not a value that reads: lists look like [3, 3], text like \"same\"")
    return t


def format_any(value: Any) -> str:
    """The text an ``any`` field shows for ``value``, which ``parse_any`` reads back as it
    was: JSON, but a text that reads as itself without quotes (``same``) bare."""
    if isinstance(value, str):
        try:
            if parse_any(value) == value:
                return value
        except ValueError:
            pass
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):  # (values come from JSON: not expected)
        return show(value)


def error_colours(palette: QPalette) -> tuple[str, str]:
    """(error red, warning amber) readable on the palette's window colour."""
    dark = palette.color(QPalette.ColorRole.Window).lightness() < 128
    return ("#ff6b6b", "#f0b429") if dark else ("#c62828", "#9a5b00")


class _WheelGuard(QObject):
    """Spin boxes and combos ignore the wheel unless focused, so scrolling the form does not
    change values under the pointer."""

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Wheel and not obj.hasFocus():
            event.ignore()
            return True
        return False


def _guard_wheel(widget: QWidget) -> None:
    widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
    widget.installEventFilter(_WheelGuard(widget))


# -- fields ---------------------------------------------------------------------------
class Field:
    """An editor for one parameter plus a message line under it (a form names its row
    ``param.title``: the parameter's label, e.g. "data split seed" for the dataset's seed).

    ``value()`` returns what the editor shows as a checked value or raises ``ValueError``;
    ``show_value(v)`` displays ``v`` without reporting an edit; ``on_edit()`` is called after
    each user edit. ``container`` holds the editor and the message label.
    """

    def __init__(self, param: Param, on_edit: Callable[[], None]):
        self.param = param
        self._on_edit = on_edit
        self.editor = self.make_editor()
        self.editor.setObjectName(f"param_{param.name}")
        self.editor.setAccessibleName(param.title)
        tip = (param.doc + " " if param.doc else "") + f"Expects {param.expected()}."
        self.editor.setToolTip(tip)
        self.message = QLabel()
        self.message.setObjectName(f"param_{param.name}_message")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.message.hide()
        self.container = QWidget()
        box = QVBoxLayout(self.container)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        if isinstance(self.editor, QLineEdit):
            self._marked = self.editor
            box.addWidget(self.editor)
        else:
            # spin boxes and combos lose their native arrows when styled with a border, so
            # the error border goes on a thin frame around them
            self._marked = QFrame()
            self._marked.setObjectName(f"param_{param.name}_frame")
            inner = QHBoxLayout(self._marked)
            inner.setContentsMargins(1, 1, 1, 1)
            inner.addWidget(self.editor)
            box.addWidget(self._marked, 0, self.editor_alignment())
        box.addWidget(self.message)

    def row_height(self) -> int:
        """Height of the editor line (without the message), to align the row's name with."""
        return self._marked.sizeHint().height()

    def make_editor(self) -> QWidget:
        raise NotImplementedError

    def editor_alignment(self) -> Qt.AlignmentFlag:
        return Qt.AlignmentFlag(0)

    def value(self) -> Any:
        raise NotImplementedError

    def show_value(self, value: Any) -> None:
        """Display ``value`` (MISSING: an empty field) without calling ``on_edit``."""
        blocked = self.editor.blockSignals(True)
        try:
            self._display(value)
        finally:
            self.editor.blockSignals(blocked)

    def sync(self, value: Any) -> bool:
        """Show ``value`` unless the field already shows an equal one (so text being typed
        stays as it is); True when it was shown."""
        try:
            if same(self.value(), value):
                return False
        except ValueError:  # half-typed text: replaced by the value
            pass
        self.show_value(value)
        return True

    def _display(self, value: Any) -> None:
        raise NotImplementedError

    def _edited(self, *_: Any) -> None:
        self._on_edit()

    def set_message(self, text: str, severity: str | None, colours: tuple[str, str],
                    restyle: bool = False) -> None:
        """Show ``text`` under the editor; severity ``"error"`` also marks the editor red
        (dynamic property ``invalid`` plus a style sheet on the marked widget alone, so the
        rest of the form keeps following the system palette). ``colours``: (red, amber) as
        ``error_colours`` picks them; ``restyle``: the palette changed, polish again."""
        red, amber = colours
        self.message.setText(text)
        self.message.setVisible(bool(text))
        self.message.setProperty("severity", severity or "")
        colour = red if severity == "error" else amber
        _style(self.message, f"QLabel {{ color: {colour}; }}" if text else "", restyle)
        invalid = bool(text) and severity == "error"
        self.editor.setProperty("invalid", invalid)
        self._marked.setProperty("invalid", invalid)
        name = self._marked.objectName()
        border = (f'#{name}[invalid="true"] {{ border: 1px solid {red}; border-radius: 3px; '
                  "padding: 1px; }")
        _style(self._marked, border if invalid else "", restyle)


def _style(widget: QWidget, sheet: str, force: bool) -> None:
    if force and sheet:
        widget.setStyleSheet("")  # re-polish against the new palette
    if widget.styleSheet() != sheet:
        widget.setStyleSheet(sheet)


class IntField(Field):
    """QSpinBox over the parameter's range. One step below the minimum is a special value:
    "none" for nullable parameters, a blank for required ones not set yet."""

    def make_editor(self) -> QSpinBox:
        p = self.param
        spin = QSpinBox()
        # the parameter's own range (the engine bounds every int within a C int); clamped
        # all the same, as QSpinBox cannot hold more and one step below is kept for "none"
        low = max(int(p.low), -INT_LIMIT)
        high = min(int(p.high), INT_LIMIT)
        self.empty: int | None = None
        if p.nullable or p.required:
            self.empty = low - 1
            low -= 1
            spin.setSpecialValueText("none" if p.nullable else " ")
        spin.setRange(low, high)
        spin.setKeyboardTracking(True)
        spin.setAccelerated(True)
        spin.valueChanged.connect(self._edited)
        _guard_wheel(spin)
        return spin

    def value(self) -> Any:
        v = self.editor.value()
        if v == self.empty:
            if self.param.nullable:
                return None
            raise ValueError(f"expected {self.param.expected()}")
        return self.param.check(v)

    def _display(self, value: Any) -> None:
        spin: QSpinBox = self.editor
        if is_int(value) and spin.minimum() <= value <= spin.maximum():
            spin.setValue(value)
        elif self.empty is not None and (value is None or value is MISSING or not is_int(value)):
            spin.setValue(self.empty)
        elif is_int(value):  # out of the range a spin box holds: its issue says why
            spin.setValue(max(spin.minimum(), min(spin.maximum(), value)))


class TextField(Field):
    """QLineEdit parsed by ``parse_text``: floats ("1e-5"), int-or-pairs ("5, 3"),
    padding ("same"), shapes ("1, 28, 28"), scales, strings and columns."""

    PLACEHOLDERS = {
        "int_or_pair": "e.g. 3 or 3, 5",
        "padding": "e.g. 1 or 1, 2 or same",
        "shape": "e.g. 1, 28, 28",
        "scale": "e.g. 2 or 2, 1.5",
        "float": "a number, e.g. 0.5 or 1e-5",
        "column": "column name or index",
    }

    def make_editor(self) -> QLineEdit:
        edit = QLineEdit()
        p = self.param
        if p.nullable:
            hint = "none"
        elif p.required:
            hint = "required: " + self.PLACEHOLDERS.get(p.kind, p.expected())
        else:
            hint = self.PLACEHOLDERS.get(p.kind, "")
        edit.setPlaceholderText(hint)
        edit.textEdited.connect(self._edited)
        return edit

    def value(self) -> Any:
        return parse_text(self.param, self.editor.text())

    def _display(self, value: Any) -> None:
        self.editor.setText(format_value(value))
        self.editor.setCursorPosition(0)


class BoolField(Field):
    def make_editor(self) -> QCheckBox:
        box = QCheckBox()
        box.toggled.connect(self._edited)
        return box

    def editor_alignment(self) -> Qt.AlignmentFlag:
        return Qt.AlignmentFlag.AlignLeft

    def value(self) -> Any:
        return self.editor.isChecked()

    def _display(self, value: Any) -> None:
        self.editor.setChecked(value is True)


class ChoiceField(Field):
    """QComboBox of the choices, plus "none" first when the parameter is nullable. A value
    outside the choices (from a file) shows as no selection."""

    def make_editor(self) -> QComboBox:
        combo = QComboBox()
        if self.param.nullable:
            combo.addItem("none", None)
        for choice in self.param.choices:
            combo.addItem(str(choice), choice)
        combo.currentIndexChanged.connect(self._edited)
        _guard_wheel(combo)
        return combo

    def value(self) -> Any:
        combo: QComboBox = self.editor
        if combo.currentIndex() < 0:
            raise ValueError(f"expected {self.param.expected()}")
        return self.param.check(combo.currentData())

    def _display(self, value: Any) -> None:
        combo: QComboBox = self.editor
        index = next((i for i in range(combo.count()) if same(combo.itemData(i), value)), -1)
        combo.setCurrentIndex(index)


class AnyField(TextField):
    """QLineEdit for a block's parameter (kind ``any``): what ``parse_any`` reads (numbers,
    true/false, lists, text); whether the layers inside accept it is the analysis's say."""

    def make_editor(self) -> QLineEdit:
        edit = super().make_editor()
        edit.setPlaceholderText("a number, true/false, a list such as [3, 3], or text")
        return edit

    def value(self) -> Any:
        return self.param.check(parse_any(self.editor.text()))

    def _display(self, value: Any) -> None:
        self.editor.setText("" if value is MISSING else format_any(value))
        self.editor.setCursorPosition(0)


class ReferenceField(TextField):
    """QLineEdit for a parameter of a layer inside a block: its kind's value, or
    ``$name``, a reference to one of the block's parameters (the analysis says when the
    block does not declare it)."""

    def make_editor(self) -> QLineEdit:
        edit = super().make_editor()
        edit.setPlaceholderText((edit.placeholderText() + ", or " if edit.placeholderText() else "")
                                + "$name of a block parameter")
        return edit

    def value(self) -> Any:
        text = self.editor.text().strip()
        if reference(text) is not None:
            return text
        if self.param.kind in ("bool", "choice", "any"):
            return self.param.check(parse_any(text))
        return parse_text(self.param, text)

    def _display(self, value: Any) -> None:
        if isinstance(value, bool) or (self.param.kind == "choice" and value is not MISSING):
            self.editor.setText(format_any(value))
        else:
            super()._display(value)
        self.editor.setCursorPosition(0)


FIELDS: dict[str, type[Field]] = {
    "int": IntField,
    "bool": BoolField,
    "choice": ChoiceField,
    "any": AnyField,
    **{kind: TextField for kind in
       ("float", "int_or_pair", "padding", "shape", "scale", "string", "column")},
}


def make_field(param: Param, on_edit: Callable[[], None], references: bool = False) -> Field:
    """The field for ``param``'s kind; ``on_edit`` is called after each user edit. With
    ``references`` (a layer inside a block), a line edit that also takes ``$name``."""
    if references:
        return ReferenceField(param, on_edit)
    return FIELDS.get(param.kind, TextField)(param, on_edit)
