"""The bundled example projects (resources/examples, shipped as app.resources)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from .errors import ProjectError
from .project import SUFFIX, Project, load_project


@dataclass(frozen=True)
class Example:
    name: str
    title: str
    path: Path


def examples_dir() -> Path:
    """The folder holding the example files (inside the installed package)."""
    return Path(str(resources.files("app.resources") / "examples"))


def list_examples() -> list[Example]:
    found = []
    for path in sorted(examples_dir().glob("*" + SUFFIX)):
        name = path.name[: -len(SUFFIX)]
        try:
            title = json.loads(path.read_text("utf-8")).get("name", name)
        except (OSError, ValueError):
            title = name
        found.append(Example(name, title, path))
    return found


def example_path(name: str) -> Path:
    """The file of the example called ``name``; raises ``ProjectError`` listing the known ones."""
    for ex in list_examples():
        if ex.name == name:
            return ex.path
    known = ", ".join(ex.name for ex in list_examples())
    raise ProjectError(f"there is no example {name!r}; the examples are: {known}")


def load_example(name: str) -> Project:
    return load_project(example_path(name))
