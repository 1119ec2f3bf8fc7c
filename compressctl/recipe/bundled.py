"""The recipes that come with compressctl, and the recipe JSON Schema file beside them.

They live in ``recipes/`` at the repository root. A wheel ships them as package data:
``compressctl/recipes`` is a symbolic link to ``../recipes`` and pyproject's package-data takes
``recipes/*.yaml`` and ``recipes/*.json`` through it, so nothing is moved or copied in the source
tree. Lookup tries the package folder first (a wheel, or a checkout where the link exists) and then
the repository root beside the package (an editable install on a system where git wrote the link
as a plain file).
"""

from __future__ import annotations

from pathlib import Path

import yaml

SCHEMA_FILE = "recipe.schema.json"
SCHEMA_COMMENT = "# yaml-language-server: $schema="


def recipes_dir() -> Path | None:
    package = Path(__file__).resolve().parents[1]
    for candidate in (package / "recipes", package.parent / "recipes"):
        if candidate.is_dir() and any(candidate.glob("*.yaml")):
            return candidate.resolve()
    return None


def schema_file() -> Path | None:
    folder = recipes_dir()
    path = folder / SCHEMA_FILE if folder else None
    return path if path and path.is_file() else None


def bundled_recipes() -> list[dict]:
    """name, description and path of every bundled recipe, by file name."""
    folder = recipes_dir()
    if folder is None:
        return []
    found = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            found.append({"name": path.stem, "description": f"(unreadable: {exc})", "path": str(path)})
            continue
        data = data if isinstance(data, dict) else {}
        found.append(
            {
                "name": str(data.get("name") or path.stem),
                "description": " ".join(str(data.get("description") or "").split()),
                "path": str(path),
            }
        )
    return found
