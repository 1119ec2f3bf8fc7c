"""Finding the stage, target and data-source classes: every module of a package is read, no list is kept by hand.

Adding a technique or a target is one new module under ``stages/`` or ``targets/``; the recipe
schema, the order rules, ``inspect``, ``init`` and the reference docs pick it up from here.

Plugins add classes from outside the package, one module each, found in two places:

- an entry point of group ``compressctl.stages``, ``compressctl.targets`` or
  ``compressctl.data_sources`` in an installed distribution (``[project.entry-points."compressctl.stages"]
  my_stage = "my_package.my_stage"`` in its pyproject.toml); the value names a module;
- the environment variable ``COMPRESSCTL_PLUGINS``: comma-separated ``KIND=MODULE`` entries, KIND one
  of ``stages``, ``targets``, ``data_sources`` (e.g. ``stages=my_package.my_stage``), for modules on
  ``sys.path`` that no distribution installs.

Each group is read when its package is first imported, so a plugin module imports only the base
of its own kind (``compressctl.stages.base`` for a stage). A plugin that fails to import, or a type
that is already taken, is a ``PluginError`` naming the plugin.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
from importlib.metadata import entry_points

from compressctl.core.errors import UserError

PLUGINS_ENV = "COMPRESSCTL_PLUGINS"
KINDS = ("stages", "targets", "data_sources")
# The package each kind's classes live in: importing it reads its modules and the kind's plugins.
PACKAGES = {"stages": "compressctl.stages", "targets": "compressctl.targets", "data_sources": "compressctl.datasets"}


def load(kind: str) -> None:
    """Import the package of ``kind`` (by name, as an entry point is), so its classes and plugins are defined.

    For readers below that package (the report renderers read what each stage and target declared).
    """
    importlib.import_module(PACKAGES[kind])


class PluginError(UserError):
    """A plugin module could not be imported, or declares a type compressctl already has (exit 2)."""


def plugin_modules(kind: str) -> list[tuple[str, str]]:
    """The plugin modules of one kind, as (module, where it was named): entry points first, then the variable."""
    if kind not in KINDS:
        raise ValueError(f"not a plugin kind: {kind!r} (kinds: {', '.join(KINDS)})")
    group = f"compressctl.{kind}"
    found = [
        (ep.value.split(":")[0].strip(), f"entry point {ep.name!r} of group {group}")
        for ep in entry_points(group=group)
    ]
    for entry in filter(None, (part.strip() for part in os.environ.get(PLUGINS_ENV, "").split(","))):
        named, _, module = entry.partition("=")
        if not module or named.strip() not in KINDS:
            raise PluginError(f"{PLUGINS_ENV}: {entry!r} is not KIND=MODULE with KIND one of {', '.join(KINDS)}")
        if named.strip() == kind:
            found.append((module.strip(), PLUGINS_ENV))
    seen: set[str] = set()
    return [(m, where) for m, where in found if not (m in seen or seen.add(m))]


def _classes(module, base: type, attribute: str) -> list[type]:
    return [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, base)
        and value is not base
        and value.__module__ == module.__name__
        and attribute in vars(value)
    ]


def discover(package: str, base: type, kind: str | None = None, attribute: str = "type") -> list[type]:
    """Subclasses of ``base`` that declare ``attribute``: the package's modules by name, then ``kind``'s plugins."""
    found = []
    module = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda m: m.name):
        found += _classes(importlib.import_module(f"{package}.{info.name}"), base, attribute)
    return found + (plugins(kind, base, attribute, taken={getattr(c, attribute) for c in found}) if kind else [])


def plugins(kind: str, base: type, attribute: str = "type", taken: set | None = None) -> list[type]:
    """The classes the plugin modules of ``kind`` define (subclasses of ``base`` declaring ``attribute``)."""
    taken = set(taken or ())
    found = []
    for name, where in plugin_modules(kind):
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of a plugin is reported as that plugin's
            raise PluginError(f"plugin {name} ({where}) could not be imported: {type(exc).__name__}: {exc}") from exc
        classes = _classes(module, base, attribute)
        if not classes:
            raise PluginError(f"plugin {name} ({where}) defines no {base.__name__} subclass with a `{attribute}`")
        for cls in classes:
            value = getattr(cls, attribute)
            if value in taken:
                raise PluginError(f"plugin {name} ({where}): {attribute} {value!r} is already taken")
            taken.add(value)
            found.append(cls)
    return found
