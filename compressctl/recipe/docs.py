"""docs/recipes.md, the recipe reference, generated from the recipe's JSON Schema.

Every section, stage type and target type the schema knows is listed, each field with its type,
default, bounds and description, so the reference cannot drift from the code: ``make schema``
rewrites it and a test fails when the committed file differs from what this module generates.
Defaults that the schema cannot state (lists and mappings built by a factory) come from the
pydantic models themselves.

    python -m compressctl.recipe.docs docs/recipes.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from compressctl.datasets.specs import SPECS
from compressctl.recipe.schema import Recipe, json_schema
from compressctl.stages import STAGES
from compressctl.targets import TARGETS

HEADER = """\
# Recipe reference

<!-- Generated from the recipe schema by `make schema` (compressctl/recipe/docs.py); do not edit by hand. -->

A recipe is a YAML file validated against this format before anything runs; an unknown key, a
value out of bounds or stages in an order TFMOT cannot stack are errors that name the file, line
and field. `compressctl schema` prints the same format as JSON Schema; the bundled copy is
`recipes/recipe.schema.json`. Start a recipe with

```yaml
# yaml-language-server: $schema=recipe.schema.json
```

(the path relative to the recipe) and editors with the YAML language server (VS Code's YAML
extension, Neovim, Helix, JetBrains) complete and check every field below as you type.
`compressctl init MODEL` writes a starter recipe for a model; `compressctl recipes` lists the
bundled ones.
"""

_BOUNDS = (
    ("minimum", "≥ {}"),
    ("exclusiveMinimum", "> {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMaximum", "< {}"),
    ("minItems", "at least {} item(s)"),
    ("maxItems", "at most {} item(s)"),
    ("minLength", "at least {} character(s)"),
    ("maxLength", "at most {} character(s)"),
    ("pattern", "matches `{}`"),
)


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False)


class _Doc:
    def __init__(self, schema: dict):
        self.schema = schema
        self.defs = schema.get("$defs", {})
        # $defs name → (section title, anchor) for objects documented in their own section.
        self.sections: dict[str, tuple[str, str]] = {}

    def resolve(self, node: dict) -> dict:
        while "$ref" in node:
            node = self.defs[_ref_name(node["$ref"])]
        return node

    def type_of(self, node: dict) -> str:
        if "$ref" in node:
            name = _ref_name(node["$ref"])
            if name in self.sections:
                title, anchor = self.sections[name]
                return f"[{title}](#{anchor})"
            return self.type_of(self.defs[name])
        if "const" in node:
            return f"`{_json(node['const'])}`"
        if "enum" in node:
            return "one of " + ", ".join(f"`{_json(v)}`" for v in node["enum"])
        if "anyOf" in node or "oneOf" in node:
            members = node.get("anyOf") or node.get("oneOf")
            named = [self.type_of(m) for m in members if m.get("type") != "null"]
            text = " or ".join(named)
            return text + (" or `null`" if any(m.get("type") == "null" for m in members) else "")
        kind = node.get("type")
        if kind == "array":
            items = node.get("items", {})
            if "discriminator" in items:
                return "list of " + self.tagged_union(items)
            return f"list of {self.type_of(items)}" if items else "list"
        if kind == "object":
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                return f"mapping of string → {self.type_of(extra)}"
            return "mapping"
        if isinstance(kind, list):
            return " or ".join(kind)
        return {"integer": "integer", "number": "number", "string": "string", "boolean": "boolean"}.get(
            kind, kind or "any"
        )

    def tagged_union(self, items: dict) -> str:
        mapping = items["discriminator"]["mapping"]
        links = []
        order = [_ref_name(m["$ref"]) for m in items.get("oneOf", []) if "$ref" in m]
        pairs = sorted(
            mapping.items(), key=lambda kv: order.index(_ref_name(kv[1])) if _ref_name(kv[1]) in order else 99
        )
        for tag, ref in pairs:
            title, anchor = self.sections.get(_ref_name(ref), (tag, tag))
            links.append(f"[{tag}](#{anchor})")
        return ", ".join(links) + " (by `type`)"

    def bounds(self, node: dict) -> str:
        found = []
        for candidate in [node, *(node.get("anyOf") or [])]:
            for key, template in _BOUNDS:
                if key in candidate:
                    found.append(template.format(_json(candidate[key]) if key == "pattern" else candidate[key]))
            items = candidate.get("items")
            if isinstance(items, dict):
                inner = [template.format(items[k]) for k, template in _BOUNDS[:4] if k in items]
                if inner:
                    found.append("each " + ", ".join(inner))
            extra = candidate.get("additionalProperties")
            if isinstance(extra, dict):
                inner = [template.format(extra[k]) for k, template in _BOUNDS[:4] if k in extra]
                if inner:
                    found.append("each value " + ", ".join(inner))
        return ", ".join(found)

    def fields_table(self, node: dict, defaults: dict) -> list[str]:
        node = self.resolve(node)
        required = set(node.get("required", []))
        lines = ["| field | type | default | bounds | description |", "| --- | --- | --- | --- | --- |"]
        for name, prop in node.get("properties", {}).items():
            if name in required:
                default = "required"
            elif "default" in prop:
                default = f"`{_json(prop['default'])}`"
            elif name in defaults and not isinstance(defaults[name], dict):
                default = f"`{_json(defaults[name])}`"
            elif name in defaults:
                default = "see below"
            else:
                default = ""
            description = " ".join(str(prop.get("description", "")).split()).replace("|", "\\|")
            kind = self.type_of(prop).replace("|", "\\|")
            bounds = self.bounds(prop).replace("|", "\\|")
            lines.append(f"| `{name}` | {kind} | {default} | {bounds} | {description} |")
        return lines


def _field_defaults(model) -> dict:
    """Each optional field's default as JSON data, factories called (the schema omits those)."""
    from pydantic_core import PydanticUndefined, to_jsonable_python

    found = {}
    for name, info in model.model_fields.items():
        value = info.get_default(call_default_factory=True)
        if value is not PydanticUndefined:
            found[name] = to_jsonable_python(value)
    return found


def _first_paragraph(text: str | None) -> str:
    if not text:
        return ""
    return " ".join(text.strip().split("\n\n")[0].split())


def _tagged(schema: dict, field: str) -> dict[str, str]:
    """type tag → $defs name for the stages or targets list."""
    items = schema["properties"][field]["items"]
    tags = {_ref_name(ref): tag for tag, ref in items["discriminator"]["mapping"].items()}
    # The order of oneOf is the registry's (prune, cluster, quantize, ...), not the alphabet's.
    order = [_ref_name(member["$ref"]) for member in items.get("oneOf", []) if "$ref" in member]
    order += [ref for ref in tags if ref not in order]
    return {tags[ref]: ref for ref in order}


def _optional_ref(prop: dict) -> dict:
    """``anyOf: [{$ref}, {type: null}]`` as the ``$ref`` (with the field's description), else unchanged."""
    ref = next((a for a in prop.get("anyOf", []) if "$ref" in a), None)
    if "$ref" in prop or ref is None:
        return prop
    return {**ref, "description": prop.get("description", "")}


def render_recipe_docs(schema: dict | None = None) -> str:
    """The Markdown reference for every field of the recipe format."""
    schema = schema or json_schema()
    doc = _Doc(schema)
    defaults = _field_defaults(Recipe)
    top = schema["properties"]
    # An optional section (`search: Search | None`) is anyOf [$ref, null]: documented like the others.
    top = {name: _optional_ref(prop) for name, prop in top.items()}
    sections = [name for name, prop in top.items() if "$ref" in prop]
    for name in sections:
        doc.sections[_ref_name(top[name]["$ref"])] = (f"`{name}`", name)
    stage_defs, target_defs = _tagged(schema, "stages"), _tagged(schema, "targets")
    for tag, ref in stage_defs.items():
        doc.sections[ref] = (f"stage `{tag}`", f"stage-{tag}")
    for tag, ref in target_defs.items():
        doc.sections[ref] = (f"target `{tag}`", f"target-{tag}")
    # Data sources (``data: {format: ...}``), each documented in its own section.
    data_defs = {tag: spec.__name__ for tag, spec in SPECS.items() if spec.__name__ in doc.defs}
    for tag, ref in data_defs.items():
        doc.sections[ref] = (f"data `{tag}`", f"data-{tag}")

    out = [HEADER]
    out += ["## Contents", ""]
    out.append("- [Top level](#top-level)")
    out += [f"- [`{name}`](#{name})" for name in sections]
    out.append("- Stages: " + ", ".join(f"[`{t}`](#stage-{t})" for t in stage_defs))
    out.append("- Targets: " + ", ".join(f"[`{t}`](#target-{t})" for t in target_defs))
    out.append("- Data sources: " + ", ".join(f"[`{t}`](#data-{t})" for t in data_defs))
    out += ["", '<a id="top-level"></a>', "", "## Top level", "", _first_paragraph(schema.get("description")), ""]
    out += doc.fields_table(schema, defaults)
    for name in sections:
        node = doc.resolve(top[name])
        out += ["", f'<a id="{name}"></a>', "", f"## `{name}`", ""]
        description = _first_paragraph(node.get("description")) or _first_paragraph(top[name].get("description"))
        if description:
            out += [description, ""]
        info = Recipe.model_fields.get(name)
        model = info.annotation if info is not None else None
        model = next((a for a in getattr(model, "__args__", ()) if hasattr(a, "model_fields")), model)
        out += doc.fields_table(node, _field_defaults(model) if hasattr(model, "model_fields") else {})
    sections = (
        ("stage", "stages", stage_defs, STAGES, "one technique, picked by its `type`."),
        (
            "target",
            "targets",
            target_defs,
            TARGETS,
            "one artifact, picked by its `type`; the default is one `cpu` target.",
        ),
    )
    for kind, key, defs, registry, entry in sections:
        intro = _first_paragraph(top[key].get("description")) + f" Each entry of `{key}:` is {entry}"
        out += ["", f"## {key.capitalize()}", "", intro]
        for tag, ref in defs.items():
            out += _typed_section(kind, tag, ref, doc, registry.get(tag))
    out += [
        "",
        "## Data sources",
        "",
        "`data:` is a path to an `.npz` (x_train, y_train, x_test, y_test), or a mapping picked by its `format`."
        " No source needs the whole set in memory: fine-tuning, calibration and evaluation stream.",
    ]
    for tag, ref in data_defs.items():
        out += _typed_section("data", tag, ref, doc, SPECS.get(tag))
    return "\n".join(out).rstrip() + "\n"


def _typed_section(kind: str, tag: str, ref: str, doc: _Doc, cls) -> list[str]:
    node = doc.defs[ref]
    lines = ["", f'<a id="{kind}-{tag}"></a>', "", f"### {kind} `{tag}`", ""]
    params = getattr(cls, "Params", None)
    description = _first_paragraph(node.get("description")) or _first_paragraph(getattr(cls, "__doc__", None))
    if description:
        lines += [description, ""]
    lines += doc.fields_table(node, _field_defaults(params) if params is not None else {})
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    text = render_recipe_docs()
    if args:
        Path(args[0]).parent.mkdir(parents=True, exist_ok=True)
        Path(args[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
