"""Validation errors as ``file:line:col path.to.field: message`` lines.

pydantic reports where an error is as a path of keys; the YAML node tree kept while loading maps
that path back to a line and column of the file (or to the ``--set`` that wrote the value), and
the message is reworded the way a recipe author reads it.
"""

from __future__ import annotations

import difflib
import re
import typing

import yaml
from pydantic import ValidationError

from compressctl.core.strict import StrictModel
from compressctl.stages import STAGES
from compressctl.targets import TARGETS

_MESSAGES = {
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "missing": "required field is missing",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "too_short": "must have at least {min_length} item(s)",
    "too_long": "must have at most {max_length} item(s)",
}


def _number(value):
    return int(value) if isinstance(value, float) and value.is_integer() else value


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def render_loc(loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(str(part)):
            out += f".{part}" if out else str(part)
        else:
            out += f"[{str(part)!r}]"  # repr escapes control characters a terminal would act on
    return out or "(recipe)"


def _clean_loc(loc, data) -> tuple:
    """Drop discriminator tags (``stages.0.prune.x`` → ``stages.0.x``) by walking the data."""
    out, cursor = [], data
    for part in loc:
        if isinstance(cursor, dict) and part not in cursor and part in (cursor.get("type"), cursor.get("format")):
            continue  # ``format`` tags the recipe's data sources
        out.append(part)
        if isinstance(cursor, dict):
            cursor = cursor.get(part)
        elif isinstance(cursor, list) and isinstance(part, int) and part < len(cursor):
            cursor = cursor[part]
        else:
            cursor = None
    return tuple(out)


def _fields_for(loc, data, root) -> list[str]:
    """Allowed keys of the mapping that holds the last location part."""
    parent = loc[:-1]
    cursor = data
    for part in parent:
        if isinstance(cursor, dict):
            cursor = cursor.get(part)
        elif isinstance(cursor, list) and isinstance(part, int) and part < len(cursor):
            cursor = cursor[part]
        else:
            return []
    if len(parent) >= 2 and parent[0] in ("stages", "targets") and isinstance(parent[1], int) and len(parent) == 2:
        registry = STAGES if parent[0] == "stages" else TARGETS
        kind = cursor.get("type") if isinstance(cursor, dict) else None
        return sorted(registry[kind].Params.model_fields) if kind in registry else []
    if parent == ("data",) and isinstance(cursor, dict):  # data sources, chosen by ``format``
        from compressctl.datasets.specs import SPECS

        spec = SPECS.get(cursor.get("format"))
        return sorted(spec.model_fields) if spec else []
    model: type = root
    walk = parent
    if len(parent) > 2 and parent[0] in ("stages", "targets") and isinstance(parent[1], int):
        # A mapping inside a stage or target (e.g. a target's litert_quantizer options): start from its Params.
        registry = STAGES if parent[0] == "stages" else TARGETS
        entry = data.get(parent[0]) if isinstance(data, dict) else None
        entry = entry[parent[1]] if isinstance(entry, list) and parent[1] < len(entry) else None
        kind = entry.get("type") if isinstance(entry, dict) else None
        if kind not in registry:
            return []
        model, walk = registry[kind].Params, parent[2:]
    for part in walk:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        annotation = info.annotation if info else None
        # Optional[Model] (a mapping that may be left out) is walked into like Model.
        options = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, StrictModel)]
        annotation = options[0] if len(options) == 1 else annotation
        if not (isinstance(annotation, type) and issubclass(annotation, StrictModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def _message(error: dict, loc: tuple, data, root) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        allowed = _fields_for(loc, data, root)
        hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        text = "unknown field"
        if hint:
            text += f"; did you mean {hint[0]!r}?"
        if allowed:
            text += f" (allowed: {', '.join(allowed)})"
        return text
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected', '')}, got {error.get('input')!r}"
    if kind == "union_tag_invalid":
        expected = ctx.get("expected_tags", "")
        hint = difflib.get_close_matches(str(ctx.get("tag")), [t.strip(" '") for t in expected.split(",")], n=1)
        text = f"unknown type {ctx.get('tag')!r}"
        if hint:
            text += f"; did you mean {hint[0]!r}?"
        return text + f" (expected one of {expected})"
    if kind == "union_tag_not_found":
        return "needs a `type` field"
    if kind in _MESSAGES:
        try:
            return _MESSAGES[kind].format(**{k: _number(v) for k, v in ctx.items()})
        except (KeyError, IndexError):
            return _MESSAGES[kind].split(" {")[0]
    message = error["msg"]
    return message.removeprefix("Value error, ")


def node_at(node, loc, want_key: bool):
    """The YAML node at ``loc`` (the key node when ``want_key``), else the deepest node found."""
    best = node
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            match = None
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(part):
                    match = (key_node, value_node)
                    break
            if match is None:
                return best
            if want_key and i == len(loc) - 1:
                return match[0]
            node = best = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = best = node.value[part]
        else:
            return best
    return best


def where(source, loc: tuple, want_key: bool = False) -> str:
    """``file:line:col`` of the recipe node at ``loc`` (or the ``--set`` that gave it), for error lines."""
    return _where(source, loc, want_key)


def _where(source, loc: tuple, want_key: bool) -> str:
    for prefix_len in range(len(loc), -1, -1):
        shown = source.overrides.get(loc[:prefix_len])
        if shown:
            return shown + ":"
    if source.node is None:
        return f"{source.path}:"
    node = node_at(source.node, loc, want_key)
    mark = node.start_mark
    return f"{source.path}:{mark.line + 1}:{mark.column + 1}"


def format_errors(exc: ValidationError, source, data, root) -> str:
    """One ``file:line:col path: message`` line per error (``--set …:`` for overridden values)."""
    lines = []
    for error in exc.errors():
        loc = _clean_loc(error["loc"], data)
        ctx = error.get("ctx") or {}
        if "at" in ctx:  # a whole-recipe check that names the field it is about
            loc = (*loc, *ctx["at"])
        elif error["type"] in ("stage_order", "duplicate_target") and "index" in ctx:
            loc = (*loc, ctx["index"], "type" if error["type"] == "stage_order" else "name")
            if error["type"] == "duplicate_target" and not _has_path(data, loc):
                loc = loc[:-1]
        if error["type"] == "metric_drop_range":  # a cross-field check on the Recipe, about this one field
            loc = ("gates", "max_metric_drop")
        where = _where(source, loc, want_key=error["type"] == "extra_forbidden")
        lines.append(f"{where} {render_loc(loc)}: {_message(error, loc, data, root)}")
    return "\n".join(lines)


def _has_path(data, loc) -> bool:
    cursor = data
    for part in loc:
        in_dict = isinstance(cursor, dict) and part in cursor
        in_list = isinstance(cursor, list) and isinstance(part, int) and part < len(cursor)
        if in_dict or in_list:
            cursor = cursor[part]
        else:
            return False
    return True
