"""What an adapter declares about a library's internals, and the check that they are still there.

Each adapter (``compressctl.core.internals.<library>``) lists in ``INTERNALS`` every private attribute
or internal module path it relies on, and its ``check()`` returns one line per one that the installed
library no longer has (its tests assert that list is empty). Nothing here imports a library at import
time.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata


@dataclass(frozen=True)
class Internal:
    """One private name compressctl reads or sets on a library object.

    ``owner``: where the name is looked up, as a dotted path (a module, or a class of one) that is
    imported and walked attribute by attribute; ``make``, when given, builds the object instead (for
    names a library sets on each instance in ``__init__``, so only an instance has them).
    ``parameters``: keyword parameters the named callable must still accept.
    """

    owner: str
    name: str
    used_for: str
    make: Callable[[], object] | None = field(default=None, compare=False)
    parameters: tuple[str, ...] = ()

    @property
    def path(self) -> str:
        return f"{self.owner}.{self.name}"


def version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def resolve(dotted: str) -> object:
    """The object at ``dotted``: its first part imported, then each further part an attribute or a submodule."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for index, part in enumerate(parts[1:], start=2):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[:index]))
    return obj


def missing(internal: Internal) -> str | None:
    """Why ``internal`` is no longer usable, or None when it is."""
    try:
        owner = internal.make() if internal.make is not None else resolve(internal.owner)
    except (ImportError, AttributeError) as exc:
        return f"{internal.owner} cannot be found ({type(exc).__name__}: {exc})"
    if not hasattr(owner, internal.name):
        return f"{internal.owner} has no attribute {internal.name}"
    if internal.parameters:
        try:
            accepted = inspect.signature(getattr(owner, internal.name)).parameters
        except (TypeError, ValueError):
            return f"{internal.path} has no signature to check"
        lacking = [name for name in internal.parameters if name not in accepted]
        if lacking:
            return f"{internal.path} no longer takes {', '.join(lacking)}"
    return None


def check(distribution: str, internals: tuple[Internal, ...], adapter: str) -> list[str]:
    """One line per internal the installed ``distribution`` lacks, naming it, the version and the adapter."""
    found = []
    for internal in internals:
        why = missing(internal)
        if why is not None:
            found.append(
                f"{distribution} {version(distribution)}: {why} (compressctl uses {internal.path} for "
                f"{internal.used_for}; update {adapter})"
            )
    return found
