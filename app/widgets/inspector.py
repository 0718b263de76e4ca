"""The inspector: a form for the selected node, generated from its layer's parameter schema.

It shows the node and reports edits; it never keeps parameter values of its own. The window
calls ``set_node`` when the selection changes and ``refresh`` after the model changes; a
valid edit is announced as ``params_edited(node_id, params)`` with the node's complete new
explicit parameters, which the window turns into an undoable command. Text that does not
parse or that ``Param.check`` refuses is marked in place and not announced. The node's
options, which are not parameters of its type (``repeat``, ``trainable``), have their own
rows below, announced as ``options_edited(node_id, {"repeat": 12})`` (or ``"trainable"``),
for ``option_commands.SetOptions``.

Types are looked up with ``spec_of`` (the window gives the open graph's ``spec``, which
knows the project's blocks: a block node's parameters are fields like a layer's). With
``inside_block`` set, the node is a layer inside a block: its fields also take ``$name``,
a reference to one of the block's parameters, and the block's Inputs have no form.
"""

from __future__ import annotations

import copy
import html
from typing import Any, Callable

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QScrollArea, QSizePolicy, QVBoxLayout, QWidget

from ..engine.blocks import reference
from ..engine.errors import Issue
from ..engine.graph import Node
from ..engine.inference import MAX_REPEAT, Analysis
from ..engine.layers import get_spec
from ..engine.layers.spec import LayerSpec
from ..engine.params import Param
from .param_fields import MISSING, Field, error_colours, make_field, same

HINT = "Select a layer to edit its parameters"

REPEAT = Param("repeat", "int", 1, doc="Copies of this layer in a chain, each with its own weights, "
               "each taking the previous copy's output.", minimum=1, maximum=MAX_REPEAT)
TRAINABLE = Param("trainable", "bool", True, doc="Unchecked: frozen. Training leaves its weights and "
                  "normalization statistics as they are (transfer learning).")


def can_repeat(spec: LayerSpec | None) -> bool:
    """Whether nodes of ``spec``'s type may repeat: one input and one output."""
    return spec is not None and spec.max_inputs != 0 and spec.min_inputs <= 1 and not spec.multi_output()


def can_freeze(spec: LayerSpec | None) -> bool:
    """Whether ``trainable`` means anything for ``spec``'s type (every type but Input)."""
    return spec is not None and spec.max_inputs != 0


def summary_text(shape: tuple[int, ...] | None, count: int | None) -> str:
    """``Output [6, 24, 24] · 156 parameters``, or ``Output ?`` when the shape is unknown."""
    if shape is None:
        return "Output ?"
    text = "Output [" + ", ".join(str(d) for d in shape) + "]"
    if count is not None:
        text += f" · {count:,} parameter" + ("" if count == 1 else "s")
    return text


def same_form(a: LayerSpec | None, b: LayerSpec | None) -> bool:
    """Whether the forms of ``a`` and ``b`` have the same rows: the same declaration, or
    a block's declaration made again with parameters of the same names and kinds."""
    if a is b:
        return True
    if a is None or b is None or a.type != b.type or (a.min_inputs, a.max_inputs) != (b.min_inputs, b.max_inputs):
        return False
    return [(p.name, p.kind) for p in a.params] == [(p.name, p.kind) for p in b.params]


class Inspector(QWidget):
    """Parameter form of one node. Signals ``params_edited(node_id, params)`` and
    ``options_edited(node_id, {option: value})``."""

    params_edited = Signal(str, dict)
    options_edited = Signal(str, dict)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("inspector")
        self._node: Node | None = None
        self._spec: LayerSpec | None = None
        self._fields: dict[str, Field] = {}
        self._options: dict[str, Field] = {}  # repeat, trainable: the node's, not its type's
        self._synced: dict[str, Any] = {}  # per field: the model value it last showed or sent
        self._typing_errors: dict[str, str] = {}
        self._issues: list[Issue] = []
        self.spec_of: Callable[[str], LayerSpec | None] = get_spec
        self.inside_block = False

        self.hint = QLabel(HINT)
        self.hint.setObjectName("inspector_hint")
        self.hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.hint.setWordWrap(True)
        self.hint.setEnabled(False)  # the palette's muted text colour

        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.RichText)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        self.title.setFont(font)
        self.doc = QLabel()
        self.doc.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setObjectName("inspector_summary")
        self.node_issues = QLabel()
        self.node_issues.setObjectName("inspector_issues")
        self.node_issues.setWordWrap(True)
        self.node_issues.setTextFormat(Qt.TextFormat.RichText)
        self.node_issues.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for label in (self.title, self.doc, self.summary):
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        self.scroll = QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)

        line = QFrame()
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)

        self.page = QWidget()
        page = QVBoxLayout(self.page)
        page.setContentsMargins(0, 0, 0, 0)
        page.setSpacing(4)
        for w in (self.title, self.doc, self.summary, self.node_issues):
            page.addWidget(w)
        page.addSpacing(2)
        page.addWidget(line)
        page.addWidget(self.scroll, 1)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.addWidget(self.hint, 1)  # one of the two shows at a time
        layout.addWidget(self.page, 1)
        self.set_node(None, None)

    # -- public -----------------------------------------------------------------------
    def node_id(self) -> str | None:
        """The id of the node shown, or None."""
        return self._node.id if self._node is not None else None

    def field(self, name: str) -> QWidget:
        """The editor widget of parameter ``name`` (QSpinBox, QLineEdit, QCheckBox, QComboBox)."""
        return self._fields[name].editor

    def option_field(self, name: str) -> QWidget | None:
        """The editor of option ``name`` ("repeat": QSpinBox, "trainable": QCheckBox), or
        None where the node's type has no such option."""
        field = self._options.get(name)
        return field.editor if field is not None else None

    def message_label(self, name: str) -> QLabel:
        """The label under parameter ``name`` that shows its error or warning."""
        return self._fields[name].message

    def set_node(self, node: Node | None, analysis: Analysis | None) -> None:
        """Rebuild the form for ``node`` (None: show the hint)."""
        self._node = node
        self._spec = self.spec_of(node.type) if node is not None else None
        self._fields = {}
        self._options = {}
        self._synced = {}
        self._typing_errors = {}
        old = self.scroll.takeWidget()
        if old is not None:  # later: an edit signal of one of its fields may still be running
            old.deleteLater()
        self.hint.setVisible(node is None)
        self.page.setVisible(node is not None)
        if node is None:
            return
        self.title.setText(f"<b>{html.escape(node.id)}</b>&nbsp;&nbsp;{html.escape(node.type)}")
        self.doc.setText(self._spec.doc if self._spec else "")
        self.doc.setVisible(bool(self.doc.text()))
        self.scroll.setWidget(self._build_form())
        self._sync_values(force=True)
        self._show_analysis(analysis)

    def refresh(self, node: Node | None, analysis: Analysis | None) -> None:
        """Show ``node``'s current values, shape, count and issues. The form is rebuilt only
        for a different node; fields already showing the model's value are left untouched
        (focus and cursor stay where the user has them), and nothing is announced."""
        spec = self.spec_of(node.type) if node is not None else None
        if (node is None or self._node is None or node.id != self._node.id
                or not same_form(spec, self._spec)):
            self.set_node(node, analysis)
            return
        self._node, self._spec = node, spec  # (a block's declaration is rebuilt on any change of the blocks)
        self._sync_values(force=False)
        self._show_analysis(analysis)

    # -- building ---------------------------------------------------------------------
    def _build_form(self) -> QWidget:
        form = QWidget()
        form.setObjectName("inspector_form")
        grid = QGridLayout(form)
        grid.setContentsMargins(0, 6, 4, 6)
        grid.setHorizontalSpacing(10)
        grid.setVerticalSpacing(8)
        params = self._spec.params if self._spec else ()
        if self.inside_block and self._node.type == "Input":
            note = QLabel("An input of the block: it takes the value coming into the block node (the "
                          "block's k-th Input takes its input slot k), with the shape it has there.")
            note.setWordWrap(True)
            note.setEnabled(False)
            grid.addWidget(note, 0, 0, 1, 2)
            grid.setRowStretch(1, 1)
            return form
        for row, param in enumerate(params):
            # inside a block a value may refer to a block parameter ("$width"); check boxes and
            # lists of choices keep their own editor unless they hold a reference already
            refs = self.inside_block and (param.kind not in ("bool", "choice")
                                          or reference(self._explicit().get(param.name)) is not None)
            field = make_field(param, lambda name=param.name: self._field_edited(name), references=refs)
            self._fields[param.name] = field
            _add_row(grid, row, param.name, field)
        row = len(params)
        if not params and self._spec is not None:
            none = QLabel("This layer has no parameters.")
            none.setEnabled(False)
            grid.addWidget(none, 0, 0, 1, 2)
            row = 1
        options = [p for p, shown in ((REPEAT, can_repeat(self._spec) or self._node.repeat != 1),
                                      (TRAINABLE, can_freeze(self._spec) or self._node.trainable is not True))
                   if shown]
        if options:
            line = QFrame()
            line.setFrameShape(QFrame.Shape.HLine)
            line.setFrameShadow(QFrame.Shadow.Sunken)
            grid.addWidget(line, row, 0, 1, 2)
            row += 1
        for param in options:
            field = make_field(param, lambda name=param.name: self._option_edited(name))
            field.editor.setObjectName(f"option_{param.name}")
            self._options[param.name] = field
            _add_row(grid, row, param.name, field)
            row += 1
        grid.setColumnStretch(1, 1)
        grid.setRowStretch(max(row, 1), 1)
        form.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        return form

    # -- model to widgets -------------------------------------------------------------
    def _model_value(self, name: str) -> Any:
        param, given = self._spec.param_index[name], self._explicit()
        if name in given:
            return given[name]
        return MISSING if param.required else param.default

    def _explicit(self) -> dict[str, Any]:
        """The node's explicit parameters (a file may hold something else: its issue says so)."""
        params = self._node.params
        return params if isinstance(params, dict) else {}

    def _sync_values(self, force: bool) -> None:
        for name, field in self._options.items():
            value = getattr(self._node, name)
            field.show_value(value) if force else field.sync(value)
        for name, field in self._fields.items():
            value = self._model_value(name)
            if not force and name in self._synced and same(self._synced[name], value):
                continue  # the model did not change here: keep whatever the user is typing
            self._synced[name] = value
            self._typing_errors.pop(name, None)
            if force:
                field.show_value(value)
            else:
                field.sync(value)

    def _show_analysis(self, analysis: Analysis | None) -> None:
        node_id = self._node.id
        self._issues = analysis.issues_for(node_id) if analysis is not None else []
        shape = analysis.shapes.get(node_id) if analysis is not None else None
        count = analysis.param_counts.get(node_id) if analysis is not None else None
        self.summary.setText(summary_text(shape, count))
        self._show_issues()

    def _show_issues(self, restyle: bool = False) -> None:
        red, amber = error_colours(self.palette())
        lines = []
        for issue in self._issues:
            if issue.param not in self._fields:
                colour = red if issue.severity == "error" else amber
                prefix = "" if issue.severity == "error" else "Warning: "
                lines.append(f'<span style="color:{colour}">{html.escape(prefix + issue.message, quote=False)}</span>')
        self.node_issues.setText("<br>".join(lines))
        self.node_issues.setVisible(bool(lines))
        for name in self._fields:
            self._show_message(name, restyle)

    def _show_message(self, name: str, restyle: bool = False) -> None:
        field = self._fields[name]
        colours = error_colours(self.palette())
        if name in self._typing_errors:
            field.set_message(self._typing_errors[name], "error", colours, restyle)
            return
        issues = [i for i in self._issues if i.param == name]
        severity = "error" if any(i.severity == "error" for i in issues) else "warning"
        field.set_message("\n".join(i.message for i in issues), severity if issues else None,
                          colours, restyle)

    # -- widgets to model -------------------------------------------------------------
    def _field_edited(self, name: str) -> None:
        field, node = self._fields.get(name), self._node
        if field is None or node is None:
            return
        try:
            value = field.value()
        except ValueError as e:
            self._typing_errors[name] = str(e)
            self._show_message(name)
            return
        self._typing_errors.pop(name, None)
        self._show_message(name)
        self._synced[name] = value
        given = self._explicit()
        if name in given and same(given[name], value):
            return  # back to what the model holds: nothing to announce
        params = copy.deepcopy(given)
        params[name] = value
        self.params_edited.emit(node.id, params)

    def _option_edited(self, name: str) -> None:
        field, node = self._options.get(name), self._node
        if field is None or node is None:
            return
        try:
            value = field.value()
        except ValueError:  # (a spin box and a check box hold valid values only)
            return
        if not same(getattr(node, name), value):
            self.options_edited.emit(node.id, {name: value})

    # -- style ------------------------------------------------------------------------
    def changeEvent(self, event: QEvent) -> None:
        # No style sheet on the form itself: it would pin every child to the palette of the
        # moment. Only error colours are picked here, again when the palette changes.
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            if self._node is not None:
                self._show_issues(restyle=True)
        super().changeEvent(event)


def _add_row(grid, row: int, name: str, field) -> None:
    """A parameter's name and its field on one row of the form."""
    label = QLabel(name)
    label.setBuddy(field.editor)
    label.setToolTip(field.editor.toolTip())
    # as tall as the editor, so the name lines up with it and not with its message
    label.setMinimumHeight(field.row_height())
    label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
    grid.addWidget(label, row, 0, Qt.AlignmentFlag.AlignTop)
    grid.addWidget(field.container, row, 1, Qt.AlignmentFlag.AlignTop)
