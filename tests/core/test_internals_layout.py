"""Libraries' private names and internal modules are used in compressctl.core.internals only.

Outside the adapters no module of compressctl imports a library's internal module
(``tensorflow.python``, ``tf_keras.src``, ``tensorflow_model_optimization.python``, ``ray._private``,
``optuna._...``), imports a private name from a library, or reads a private attribute (``x._name``,
``getattr(x, "_name")``) that compressctl does not define itself; and no private name an adapter
declares appears anywhere else.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

import pytest

from compressctl.core import internals
from tests.conftest import REPO

pytestmark = pytest.mark.unit

PACKAGE = REPO / "compressctl"
ADAPTERS = PACKAGE / "core" / "internals"
LIBRARIES = frozenset(
    {
        "tensorflow",
        "tf_keras",
        "keras",
        "tensorflow_model_optimization",
        "ray",
        "optuna",
        "ai_edge_litert",
        "ai_edge_quantizer",
        "tflite_runtime",
    }
)
INTERNAL_PARTS = frozenset({"python", "src"})  # tensorflow.python, tf_keras.src, keras.src, ...
ATTRIBUTE_FUNCTIONS = frozenset({"getattr", "setattr", "hasattr", "delattr"})


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _internal_module(module: str) -> bool:
    parts = module.split(".")
    return parts[0] in LIBRARIES and any(_private(p) or p in INTERNAL_PARTS for p in parts[1:])


def _outside_adapters() -> list[Path]:
    return [p for p in sorted(PACKAGE.rglob("*.py")) if ADAPTERS not in p.parents]


def defined_names(sources: list[str]) -> set[str]:
    """Private names compressctl defines: functions, classes, variables, fields, ``self._x`` attributes."""
    names = set()
    for source in sources:
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
            elif isinstance(node, ast.arg):
                names.add(node.arg)
            elif (
                isinstance(node, ast.Attribute)
                and isinstance(node.ctx, ast.Store)
                and isinstance(node.value, ast.Name)
                and node.value.id in ("self", "cls")
            ):
                names.add(node.attr)
    return {name for name in names if _private(name)}


def reaches_in(source: str, defined: set[str]) -> list[str]:
    """``line: what`` for each use of a library's internals in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {a.name}" for a in node.names if _internal_module(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if _internal_module(node.module):
                found.append(f"{node.lineno}: from {node.module} import ...")
            elif node.module.split(".")[0] in LIBRARIES:
                found += [f"{node.lineno}: from {node.module} import {a.name}" for a in node.names if _private(a.name)]
        elif isinstance(node, ast.Attribute) and _private(node.attr) and node.attr not in defined:
            base = node.value
            if isinstance(base, ast.Name) and (base.id in ("self", "cls") or base.id in sys.stdlib_module_names):
                continue
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and _private(node.args[1].value)
            and node.args[1].value not in defined
        ):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _internal_module(node.value):
            found.append(f"{node.lineno}: {node.value!r}")
    return found


def _adapters():
    for info in pkgutil.iter_modules(internals.__path__):
        if info.name != "base":
            yield importlib.import_module(f"compressctl.core.internals.{info.name}")


def test_no_module_outside_the_adapters_reaches_into_a_library():
    paths = _outside_adapters()
    defined = defined_names([p.read_text() for p in paths])
    found = [f"{p.relative_to(REPO)}:{where}" for p in paths for where in reaches_in(p.read_text(), defined)]
    assert found == [], "use (or add) a function of compressctl/core/internals/<library>.py:\n" + "\n".join(found)


def test_the_private_names_adapters_declare_appear_in_no_other_module():
    declared = {internal.name for adapter in _adapters() for internal in adapter.INTERNALS if _private(internal.name)}
    assert declared
    found = []
    for path in _outside_adapters():
        for node in ast.walk(ast.parse(path.read_text())):
            names = {getattr(node, "attr", None), getattr(node, "id", None), getattr(node, "name", None)}
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                names.add(node.value)
            found += [f"{path.relative_to(REPO)}:{node.lineno} {name}" for name in names & declared]
    assert found == []


def test_adapters_import_their_library_lazily_and_nothing_above_core():
    found = []
    for path in sorted(ADAPTERS.glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                found += [
                    f"{path.name}:{node.lineno} {m}"
                    for m in modules
                    if not (
                        m == "__future__"
                        or m.split(".")[0] in sys.stdlib_module_names
                        or m.startswith("compressctl.core")
                    )
                ]
    assert found == []


@pytest.mark.parametrize(
    "source",
    [
        "ops = interpreter._get_ops_details()",
        "converter._experimental_calibrate_only = True",
        "model.outputs[0]._keras_history.layer",
        "getattr(model, '_is_graph_network', False)",
        "from tensorflow.python.keras import layers",
        "import tensorflow_model_optimization.python.core.sparsity.keras.prune_registry",
        "from tf_keras.src.layers.core.tf_op_layer import get_symbol_from_name",
        "from ray._private import utils",
        "from optuna import _experimental",
        "importlib.import_module('keras.src.ops')",
    ],
)
def test_the_rule_catches_a_reach_into_a_library(source):
    assert reaches_in(source, defined=set())


@pytest.mark.parametrize(
    "source",
    [
        "self._cache = {}",
        "os._exit(1)",
        "handle._loaded",  # compressctl's own field
        "from tensorflow_model_optimization import sparsity",
        "type(layer).__name__",
    ],
)
def test_the_rule_leaves_compressctl_s_own_private_names_alone(source):
    assert reaches_in(source, defined={"_loaded"}) == []
