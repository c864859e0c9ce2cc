"""src/msf/_core.pyi and _kernels.pyi against the built extensions: the same public names (module, Model), and for
every function the same parameters as pybind11 reports them (names, positional-only for its unnamed arg0, arg1,
..., defaults)."""
import ast
import re
from pathlib import Path

import pytest

import msf
from helpers import requires_kernels

STUBS = Path(msf.__file__).resolve().parent


def public(names) -> set[str]:
    return {n for n in names if not n.startswith("_")}


def stub_tree(module: str = "_core") -> ast.Module:
    path = STUBS / f"{module}.pyi"
    return ast.parse(path.read_text(), filename=str(path))


def stub_names(body: list[ast.stmt]) -> dict[str, ast.stmt]:
    """The names a module or class body of the stub defines (imports are not re-exported by a stub)."""
    names = {}
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names[node.target.id] = node
    return names


def stub_class(name: str) -> dict[str, ast.stmt]:
    node = stub_names(stub_tree().body)[name]
    assert isinstance(node, ast.ClassDef), f"{name} is not a class in the stub"
    return stub_names(node.body)


def _split_top_level(text: str) -> list[str]:
    parts, depth, quote, start = [], 0, None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def runtime_params(function, name: str) -> list[tuple[str, str | None]]:
    """(name, default as pybind11 prints it, or None) of each parameter, from the signature line pybind11
    writes at the top of the docstring: `name(arg0: T, x: T = default) -> R`."""
    line = function.__doc__.splitlines()[0]
    assert line.startswith(name + "("), line
    depth = 0
    for end, ch in enumerate(line):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == ")" and depth == 0:
            break
    params = []
    for p in _split_top_level(line[len(name) + 1:end]):
        head, _, default = p.partition(" = ")
        params.append((head.split(":")[0].strip(), default or None))
    return params


def stub_params(node: ast.FunctionDef) -> list[tuple[str, str | None, bool]]:
    """(name, repr of the default or None, positional-only) of each parameter of a stub function."""
    a = node.args
    assert not (a.vararg or a.kwarg or a.kwonlyargs), f"{node.name}: only plain parameters are bound"
    positional = [(arg, True) for arg in a.posonlyargs] + [(arg, False) for arg in a.args]
    defaults = [None] * (len(positional) - len(a.defaults)) + [repr(ast.literal_eval(d)) for d in a.defaults]
    return [(arg.arg, default, posonly) for (arg, posonly), default in zip(positional, defaults)]


def assert_same_params(function, node: ast.FunctionDef, name: str, method: bool) -> None:
    got = runtime_params(function, name)
    want = stub_params(node)
    if method:  # pybind11 names the instance `self`; the stub's self is plain
        assert got[0][0] == "self" and want[0][0] == "self", (got, want)
        got, want = got[1:], want[1:]
    assert len(got) == len(want), f"{name}: the extension takes {got}, the stub {want}"
    for (r_name, r_default), (s_name, s_default, posonly) in zip(got, want):
        if re.fullmatch(r"arg\d+", r_name):  # bound without py::arg: cannot be passed by keyword
            assert posonly, f"{name}: {s_name} must be positional-only (the extension calls it {r_name})"
        else:
            assert (s_name, posonly) == (r_name, False), f"{name}: the extension's parameter is {r_name!r}"
        assert s_default == r_default, f"{name}({r_name}): default {r_default} in the extension, {s_default} here"


def assert_module_matches(module, stub: str) -> None:
    """Every public name of the module is in the stub and nothing else is; functions take the same parameters,
    constants are ints."""
    names = stub_names(stub_tree(stub).body)
    assert public(vars(module)) == public(names)
    for name, node in names.items():
        if isinstance(node, ast.FunctionDef):
            assert not node.decorator_list, f"{stub}.{name}"
            assert_same_params(getattr(module, name), node, name, method=False)
        elif isinstance(node, ast.AnnAssign):
            assert ast.unparse(node.annotation) == "int" and isinstance(getattr(module, name), int), name


def test_stubs_ship_beside_the_package():
    """The stubs and py.typed sit in the installed msf package (wheel.packages = ["src/msf"] takes every file)."""
    for stub in ("_core", "_kernels"):
        assert (STUBS / f"{stub}.pyi").is_file()
    assert (STUBS / "py.typed").is_file()


@pytest.fixture(scope="module")
def core():
    return pytest.importorskip("msf._core", reason="msf._core (C++ extension) is not built")


def test_module_names(core):
    assert_module_matches(core, "_core")


def test_model(core):
    members = stub_class("Model")
    assert public(vars(core.Model)) == public(members)
    for name, node in members.items():
        runtime = vars(core.Model)[name]
        decorators = {d.id for d in node.decorator_list if isinstance(d, ast.Name)}
        if isinstance(runtime, property):
            assert decorators == {"property"}, f"Model.{name} is a read-only property"
        elif isinstance(runtime, staticmethod):
            assert decorators == {"staticmethod"}, f"Model.{name} is a static method"
            assert_same_params(getattr(core.Model, name), node, name, method=False)
        else:
            assert not decorators, f"Model.{name}"
            assert_same_params(runtime, node, name, method=True)
    assert_same_params(core.Model.__init__, members["__init__"], "__init__", method=True)


def test_isa_return_types(core):
    """The two functions whose results are not arrays, as the stub declares them."""
    assert isinstance(core.isa(), str)
    isas = core.isas()
    assert isinstance(isas, list) and isas
    assert all(isinstance(n, str) and isinstance(ok, bool) for n, ok in isas)
    assert core.isa() in [n for n, ok in isas if ok]


@requires_kernels
def test_kernels_module_names():
    from msf import _kernels

    assert_module_matches(_kernels, "_kernels")
