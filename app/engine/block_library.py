"""The block library: reusable block definitions kept in files of their own.

One file per entry (docs/FORMAT_EXTENSIONS.md, "Block library files"):
``{"format": "netcanvas-block", "version": 2, "name": "Bottleneck", "doc": "...",
"input_shapes": [[64, 56, 56]], "blocks": {"Bottleneck": {...}, ...}}``. ``blocks`` holds
the entry's block (``name``) and every block it uses, written as a project's ``blocks``
are, and nothing else. The built-in entries live in resources/blocks; the user's in
folders of their own. Inserting an entry copies its blocks into a project's ``Blocks``,
since a project file is self-contained; a block the project already has keeps the
project's definition (the format: "a file's block named like one of them is the file's
own"). Nothing in a file is executed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

from .errors import ProjectError
from .files import atomic_write, read_bytes
from .graph import Block, Blocks
from .params import is_int, show
from .project import VERSION, decode_json, graph_to_dict, parse_project

FORMAT = "netcanvas-block"
SUFFIX = ".json"
KEYS = ("format", "version", "name", "doc", "input_shapes", "blocks")
MAX_BYTES = 1 << 20  # an entry is a few kB; a bigger file is not one
MAX_DOC = 4000  # characters of ``doc``
# a stand-in graph: the entry's blocks are parsed (and checked) as a project's blocks
_STAND_IN = {"nodes": [{"id": "input", "type": "Input", "params": {"shape": [1]}}], "edges": []}


@dataclass
class LibraryEntry:
    """One library file: its block ``name`` (whose definition ``blocks`` holds, with the
    blocks it uses), what it does (``doc``), a shape for each of its inputs that suits its
    default parameters (``input_shapes``, None when the file gives none), where it lives and
    whether it ships with NetCanvas. ``error`` is set (and ``blocks`` None) for a file in a
    listed folder that could not be loaded."""

    name: str
    doc: str
    path: Path
    builtin: bool
    blocks: Blocks | None = None
    input_shapes: list[list[int]] | None = None
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict, repr=False)  # the ``blocks`` object as read


def builtin_folder() -> Path:
    """The folder of the built-in entries (inside the installed package)."""
    return Path(str(resources.files("app.resources") / "blocks"))


def list_library(folders: Iterable[str | Path] = (), builtin: bool = True) -> list[LibraryEntry]:
    """The entries of the built-in folder (unless ``builtin`` is false) and of ``folders``,
    in that order, each folder's files sorted by name. A folder that does not exist has no
    entries; a file that cannot be loaded is listed with its ``error`` (never raised)."""
    found: list[LibraryEntry] = []
    chosen = ([builtin_folder()] if builtin else []) + [Path(f) for f in folders]
    for folder in chosen:
        try:
            paths = sorted(p for p in folder.glob("*" + SUFFIX) if p.is_file())
        except OSError:
            continue
        for path in paths:
            try:
                found.append(load_entry(path))
            except ProjectError as e:
                found.append(LibraryEntry(path.name[: -len(SUFFIX)], "", path, _is_builtin(path), error=str(e)))
    return found


def load_entry(path: str | Path) -> LibraryEntry:
    """Read and check a library file. Raises ``ProjectError`` naming the file and the field
    for anything wrong with it (too large, not JSON, an unknown key, a bad block, a block
    that the entry's block does not use, ...)."""
    p = Path(path)
    try:
        size = p.stat().st_size
    except OSError:
        size = 0  # (read_bytes says what is wrong with the path)
    if size > MAX_BYTES:
        raise ProjectError(f"is {size:,} bytes; a block library file is at most {MAX_BYTES:,}", str(p))
    raw = read_bytes(p, ProjectError, "a block library file")
    if len(raw) > MAX_BYTES:
        raise ProjectError(f"is over {MAX_BYTES:,} bytes; a block library file is at most that", str(p))
    return parse_entry(raw, source=str(p), path=p)


def parse_entry(raw: bytes | str | Any, source: str = "<block library entry>",
                path: Path | None = None) -> LibraryEntry:
    """Check a library entry given as JSON text (or already decoded); see ``load_entry``."""
    data = decode_json(raw, source) if isinstance(raw, (bytes, str)) else raw

    def fail(where: str, message: str):
        raise ProjectError(message, f"{source}: {where}")

    if not isinstance(data, dict):
        fail("(top)", f"expected a JSON object, received {type(data).__name__}")
    for key in data:
        if key not in KEYS:
            fail(key, "unknown key; a block library file takes: " + ", ".join(KEYS))
    if data.get("format") != FORMAT:
        fail("format", f"expected {json.dumps(FORMAT)}, received {show(data.get('format'))}")
    version = data.get("version")
    if not is_int(version) or version < 2:
        fail("version", f"expected an integer >= 2 (blocks are new in format version 2), received {show(version)}")
    if version > VERSION:
        fail("version", f"the file is format version {version}, but this NetCanvas reads versions up to "
                        f"{VERSION}; open it with a newer NetCanvas")
    name = data.get("name")
    if not isinstance(name, str):
        fail("name", f"expected the name of the entry's block (a string), received {show(name)}")
    doc = data.get("doc", "")
    if not isinstance(doc, str) or len(doc) > MAX_DOC:
        fail("doc", f"expected a string of at most {MAX_DOC} characters, received {show(doc)}")
    if "blocks" not in data:
        fail("blocks", "missing; the entry's block and the blocks it uses")
    defs = data["blocks"]
    if not isinstance(defs, dict):
        fail("blocks", f"expected an object naming each block, received {show(defs)}")
    if name not in defs:
        fail("name", f"{name!r} is not one of the file's blocks ({', '.join(map(repr, defs)) or 'none'})")
    stand_in = {"format": "netcanvas", "version": version, "blocks": defs, "graph": _STAND_IN}
    blocks = parse_project(stand_in, source=source).graph.blocks
    unused = [b for b in blocks if b not in _used_by(blocks, name)]
    if unused:
        fail(f"blocks.{unused[0]}", f"block {name} does not use it; an entry holds its block and the blocks "
                                    "that block uses, nothing else")
    shapes = data.get("input_shapes")
    if "input_shapes" in data:
        count = len(blocks[name].inputs())
        if not (isinstance(shapes, list) and len(shapes) == count and all(_is_shape(s) for s in shapes)):
            fail("input_shapes", f"expected a list of {count} shape(s) (lists of integers >= 1) for block "
                                 f"{name}'s Input node(s), received {show(shapes)}")
    return LibraryEntry(name, doc, path or Path(source), _is_builtin(path), blocks, shapes, data=defs)


def insert_entry(blocks: Blocks, entry: LibraryEntry) -> list[str]:
    """Copy ``entry``'s blocks into a project's ``blocks``; returns the names copied, in the
    entry's order. A block that ``blocks`` already has is the project's own and is kept (so
    inserting twice copies nothing). Raises ``ProjectError`` (and copies nothing) when the
    entry could not be loaded, or when the copies would make a block use itself with the
    project's own blocks."""
    if entry.blocks is None:
        raise ProjectError(entry.error or "the entry could not be loaded", str(entry.path))
    names = [n for n in entry.blocks if n not in blocks]
    for n in names:
        source = entry.blocks[n]
        blocks.add(Block(n, json.loads(json.dumps(source.params)), source.graph.copy(blocks)))
    cycle = blocks.cycle()
    if cycle:
        for n in reversed(names):
            blocks.remove(n)
        raise ProjectError("with the project's own blocks, a block would use itself: " + " -> ".join(cycle),
                           str(entry.path))
    return names


def save_entry(blocks: Blocks, name: str, folder: str | Path, doc: str = "",
               input_shapes: list[list[int]] | None = None) -> Path:
    """Write block ``name`` of ``blocks`` and the blocks it uses, directly or not, to
    ``folder``/``name``.json (atomically; the folder is made if needed; an entry of that name
    is replaced). The file is checked as ``load_entry`` checks it before it is written.
    Returns its path; raises ``ProjectError`` when there is no such block or the result
    would not load, ``OSError`` when the folder cannot be written."""
    if name not in blocks:
        raise ProjectError(f"there is no block {name!r} to save; the blocks: {', '.join(blocks) or 'none'}")
    used = _used_by(blocks, name)
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION, "name": name, "doc": doc}
    if input_shapes is not None:
        data["input_shapes"] = [list(s) for s in input_shapes]
    data["blocks"] = {b: {"params": blocks[b].params, "graph": graph_to_dict(blocks[b].graph)} for b in used}
    text = json.dumps(data, indent=1, allow_nan=False) + "\n"
    target = Path(folder) / (name + SUFFIX)
    parse_entry(text, source=str(target), path=target)
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(target, text.encode("utf-8"))
    return target


def _used_by(blocks: Blocks, name: str) -> list[str]:
    """``name`` and the blocks it uses, directly or not, in the order first met."""
    order, stack = [], [name]
    while stack:
        current = stack.pop(0)
        if current in order or current not in blocks:
            continue
        order.append(current)
        stack.extend(sorted(blocks[current].uses()))
    return order


def _is_shape(value: Any) -> bool:
    return isinstance(value, list) and 0 < len(value) <= 8 and all(is_int(d) and 1 <= d <= 1 << 31 for d in value)


def _is_builtin(path: Path | None) -> bool:
    if path is None:
        return False
    try:
        return Path(path).resolve().parent == builtin_folder().resolve()
    except OSError:
        return False
