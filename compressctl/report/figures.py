"""The figures a stage or a target reports: declared on its class, shown by the renderers as declared.

A ``Figure`` names one measured value, its type, and how it reads: ``show`` is a format string
with ``{value}`` (and ``{pct}``, 100 × the value) such as ``"sparsity {pct:.1f} %"``, and
``heading`` is its column in a per-layer table. ``Stage`` and ``Target`` subclasses declare theirs
(``figures``, ``layer_figures``), kept here by type when the class is defined (a type not yet seen
has its package imported first, ``core.registry.load``). The record checks measured values against
them and the renderers read them, so neither holds a list of any stage's or target's fields. A
report whose stage or target no module here defines (a plugin not installed) shows them by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from compressctl.core import registry

Scalar = str | int | float | bool | None
_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


@dataclass(frozen=True)
class Figure:
    key: str
    type: str = "float"  # int | float | str | bool
    show: str | None = None  # format string of {value} / {pct}; None: the value itself (ints with separators)
    heading: str | None = None  # its column in a per-layer table (default: the key with spaces)

    def __post_init__(self):
        if self.type not in _TYPES:
            raise ValueError(f"figure {self.key}: type must be one of {', '.join(_TYPES)}, not {self.type!r}")

    @property
    def column(self) -> str:
        return self.heading or self.key.replace("_", " ")

    def accepts(self, value) -> bool:
        """Whether ``value`` is of the declared type (an int is a float; a bool is neither); None always is."""
        if value is None:
            return True
        if self.type == "float":
            return isinstance(value, int | float) and not isinstance(value, bool)
        if self.type == "int":
            return isinstance(value, int) and not isinstance(value, bool)
        return isinstance(value, _TYPES[self.type])

    def text(self, value) -> str:
        if self.show is None:
            return count(value)
        pct = 100 * value if isinstance(value, int | float) and not isinstance(value, bool) else value
        return self.show.format(value=value, pct=pct)


def count(value) -> str:
    """A value as it is; an int with thousands separators."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class Declared:
    """What one stage or target type reports: overall figures, then per-layer ones (stages only)."""

    figures: tuple[Figure, ...] = ()
    layer_figures: tuple[Figure, ...] = ()

    def figure(self, key: str) -> Figure | None:
        return next((f for f in self.figures if f.key == key), None)

    def layer_figure(self, key: str) -> Figure | None:
        return next((f for f in self.layer_figures if f.key == key), None)


_DECLARED: dict[tuple[str, str], Declared] = {}


def declare(kind: str, type_: str, figures=(), layer_figures=()) -> None:
    """Keep what a ``kind`` ("stage" or "target") of type ``type_`` reports (called as its class is defined)."""
    _DECLARED[(kind, type_)] = Declared(tuple(figures), tuple(layer_figures))


def declared(kind: str, type_: str) -> Declared | None:
    """What the stage or target type declared; None when neither compressctl nor a plugin here defines it."""
    if (kind, type_) not in _DECLARED:
        registry.load(f"{kind}s")  # the stage and target classes declare theirs as they are defined
    return _DECLARED.get((kind, type_))


def check(kind: str, type_: str, values: dict, undeclared: bool = False) -> None:
    """Refuse a figure that is not a scalar, or of another type than its known stage or target declared;
    an undeclared one unless ``undeclared`` (a stage may record more than it shows)."""
    known = declared(kind, type_)
    for key, value in values.items():
        if not isinstance(value, Scalar):
            raise ValueError(f"{key}: a {kind}'s measured figure must be a number, string or bool")
        if known is None:
            continue
        figure = known.figure(key)
        if figure is None:
            if undeclared:
                continue
            raise ValueError(f"{key}: {kind} {type_} declares no such figure")
        if not figure.accepts(value):
            raise ValueError(f"{key}: {kind} {type_} declares it a {figure.type}, got {value!r}")


def summary(kind: str, type_: str, values: dict) -> list[str]:
    """The figures present in ``values``, as text: those its stage or target declared, in their order;
    all of them by name when the type is not known to this process."""
    known = declared(kind, type_)
    keys = [f.key for f in known.figures] if known else list(values)
    known = known or Declared()
    out = []
    for key in keys:
        value = values.get(key)
        if value is None:
            continue
        figure = known.figure(key)
        out.append(figure.text(value) if figure else f"{key.replace('_', ' ')} {count(value)}")
    return out
