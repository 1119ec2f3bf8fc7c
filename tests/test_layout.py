"""The package layout: a short root, every module in an import layer, no import cycle, no private imports,
and small pieces (modules, functions and parameter lists under a size).

The layers themselves are checked by import-linter (``make lint``); these tests check that its
contracts cover every module, so a new module cannot slip outside them.
"""

from __future__ import annotations

import ast
import pkgutil

import grimp
import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli, a dependency of import-linter there
    import tomli as tomllib

import compressctl
from tests.conftest import REPO

pytestmark = pytest.mark.unit

ROOT_MODULES_AT_MOST = 4  # __init__, __main__, api and at most one more
MODULE_LINES_AT_MOST = 450
FUNCTION_LINES_AT_MOST = 90  # from its `def` line to its last line, docstring included
POSITIONAL_PARAMETERS_AT_MOST = 8  # self included; keyword-only ones (after `*`) are free
# Pure data tables may run longer than a module should: the documented Edge TPU op rules and the
# table of TFLite op versions. Nothing else: a module over the limit is split by concern.
DATA_TABLES = ("compressctl/targets/edgetpu_ops.py", "compressctl/litert/op_versions.py")


def _contracts() -> list[dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def _layered() -> list[str]:
    """Every package or module named by a layer of a layers contract."""
    names = []
    for contract in _contracts():
        if contract["type"] == "layers":
            for layer in contract["layers"]:
                names += [part.strip() for part in layer.replace(":", "|").split("|")]
    return names


@pytest.fixture(scope="module")
def graph():
    return grimp.build_graph("compressctl", include_external_packages=False)


def test_the_package_root_holds_at_most_four_modules():
    modules = [info.name for info in pkgutil.iter_modules(compressctl.__path__) if not info.ispkg]
    assert len(modules) + 1 <= ROOT_MODULES_AT_MOST, f"package root: __init__ and {sorted(modules)}"


def test_every_module_sits_in_a_layer(graph):
    layered = _layered()
    outside = sorted(
        module
        for module in graph.modules
        if module != "compressctl" and not any(module == name or module.startswith(name + ".") for name in layered)
    )
    assert not outside, f"modules in no layer of [tool.importlinter]: {outside}"


def test_every_layer_names_a_module(graph):
    assert not [name for name in _layered() if name not in graph.modules]


def _cycles(graph) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan), lazy imports included."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_no_two_modules_import_each_other(graph):
    assert _cycles(graph) == []


def test_no_module_imports_a_private_name_of_another():
    found = []
    for path in sorted((REPO / "compressctl").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("compressctl"):
                found += [
                    f"{path.relative_to(REPO)}:{node.lineno} {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert found == []


def _module_aliases(tree: ast.AST) -> set[str]:
    """Names a file binds to compressctl modules: ``import compressctl.x as m``, ``from compressctl.y import z``."""
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases |= {a.asname for a in node.names if a.name.startswith("compressctl") and a.asname}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("compressctl"):
            aliases |= {a.asname or a.name for a in node.names}
    return aliases


def test_no_module_reads_a_private_name_of_another():
    # ``from compressctl.litert import interpreter as runtime`` then ``runtime._helper()`` is the same
    # reach-in as importing ``_helper``: what another module may use is public.
    found = []
    for path in sorted((REPO / "compressctl").rglob("*.py")):
        tree = ast.parse(path.read_text())
        aliases = _module_aliases(tree)
        found += [
            f"{path.relative_to(REPO)}:{node.lineno} {node.value.id}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in aliases
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ]
    assert found == []


def _imported(folder: str, pattern: str = "*.py"):
    """(path:line, module name) for every import statement of the files under ``folder``."""
    for path in sorted((REPO / folder).rglob(pattern)):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            yield from ((f"{path.relative_to(REPO)}:{node.lineno}", name) for name in names)


def test_no_test_module_imports_another():
    # What tests share lives in tests/conftest.py and tests/helpers/; a test module is never a library.
    found = [
        f"{where} {name}"
        for where, name in _imported("tests", "test_*.py")
        if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_")
    ]
    assert found == []


def test_benchmarks_import_no_tests():
    found = [f"{where} {name}" for where, name in _imported("benchmarks") if name.split(".")[0] == "tests"]
    assert found == []


def _sources():
    """(path relative to the repository, source text) for every module of compressctl."""
    for path in sorted((REPO / "compressctl").rglob("*.py")):
        yield path.relative_to(REPO).as_posix(), path.read_text()


def _functions():
    """(where, function node) for every function and method of compressctl, nested ones included."""
    for name, text in _sources():
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield f"{name}:{node.lineno} {node.name}", node


def test_the_data_tables_allowed_to_run_long_exist():
    assert [name for name in DATA_TABLES if not (REPO / name).is_file()] == []


def test_no_module_is_over_450_lines():
    found = [
        f"{name}: {len(text.splitlines())} lines"
        for name, text in _sources()
        if len(text.splitlines()) > MODULE_LINES_AT_MOST and name not in DATA_TABLES
    ]
    assert found == [], f"split these by concern (at most {MODULE_LINES_AT_MOST} lines a module)"


def test_no_function_is_over_90_lines():
    found = [
        f"{where}: {node.end_lineno - node.lineno + 1} lines"
        for where, node in _functions()
        if node.end_lineno - node.lineno + 1 > FUNCTION_LINES_AT_MOST
    ]
    assert found == [], f"at most {FUNCTION_LINES_AT_MOST} lines a function"


def test_no_function_takes_more_than_8_positional_parameters():
    found = [
        f"{where}: {count} positional parameters"
        for where, node in _functions()
        if (count := len(node.args.posonlyargs) + len(node.args.args)) > POSITIONAL_PARAMETERS_AT_MOST
    ]
    assert found == [], "make the rest keyword-only (after `*`) or group them in a dataclass"
