"""Finding the stage and target classes: every module of a package is read, no list is kept by hand.

Adding a technique or a target is one new module under ``stages/`` or ``targets/``; the recipe
schema, the order rules, ``inspect``, ``init`` and the reference docs pick it up from here.
"""

from __future__ import annotations

import importlib
import pkgutil


def discover(package: str, base: type) -> list[type]:
    """Subclasses of ``base`` defined in the modules of ``package`` that declare a ``type``, by module name."""
    found = []
    module = importlib.import_module(package)
    for info in sorted(pkgutil.iter_modules(module.__path__), key=lambda m: m.name):
        sub = importlib.import_module(f"{package}.{info.name}")
        for value in vars(sub).values():
            if (
                isinstance(value, type)
                and issubclass(value, base)
                and value is not base
                and value.__module__ == sub.__name__
                and "type" in vars(value)
            ):
                found.append(value)
    return found
