"""ARCHITECTURE's import table ("The house"), enforced: every module's imports, read with ``ast``.

Every import counts, wherever it is written: at module level, inside a function, under
``if TYPE_CHECKING:``, relative (resolved against the importing module) or
``importlib.import_module("...")`` / ``__import__("...")`` with a literal name. A name built at run
time (e.g. ``lambdas.openapi``'s table of handler modules) is beyond a static check.

The table is stated below as data: the first rule whose pattern matches a module decides what it
may import of ours; a module always may import its own unit (the rule's ``*`` matches one name,
e.g. ``lambdas.*`` is one service, which may import itself). ``tests/`` may import anything and is
not checked.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANYTHING_BUT_TESTS = ("ipoc", "runtime", "lambdas", "client", "local", "infra", "bench", "functions", "scripts")
# What infra/ may read from lambdas/shared: names and shapes, no handler, no store, no AWS client.
SHARED_DECLARATIONS = (
    "lambdas.shared.tables",  # the tables' keys and indexes (TableSpec)
    "lambdas.shared.config",  # the settings and their environment names
    "lambdas.shared.openapi",  # the admin extension's name and the gateway document built from infra/openapi/
)


@dataclass(frozen=True)
class Rule:
    pattern: str  # dotted module prefix; "*" matches one name (the unit that may import itself)
    may_import: tuple[str, ...]  # dotted prefixes, besides the module's own unit
    table: str  # the table's words, printed with a violation


TABLE = (
    Rule("ipoc", (), "ipoc/ imports nothing of ours"),
    Rule("runtime", ("ipoc",), "runtime/ imports ipoc"),
    Rule("lambdas.shared", ("ipoc",), "lambdas/shared/ imports ipoc"),
    Rule(
        "lambdas.*", ("ipoc", "lambdas.shared"), "a lambdas/ service imports ipoc, lambdas/shared/ and its own package"
    ),
    Rule("lambdas", ("ipoc", "lambdas.shared"), "lambdas/ imports ipoc and lambdas/shared/"),
    Rule("client.cli.local", ("ipoc", "client", "local"), "client/ imports ipoc; local only for `ipoc local ...`"),
    Rule(
        "client.cli.runtime",
        ("ipoc", "client", "runtime"),
        "client/ imports ipoc; runtime only for `ipoc runtime ...` (the runtime's own command line)",
    ),
    Rule(
        "client.cli.attestation.serve",
        ("ipoc", "client", "runtime"),
        "client/ imports ipoc; runtime only for `ipoc attestation serve` (the proxy's own command line)",
    ),
    Rule(
        "client",
        ("ipoc",),
        "client/ imports ipoc (local only in client/cli/local, runtime only in `ipoc runtime|attestation serve`)",
    ),
    Rule("local", ("ipoc", "lambdas", "runtime"), "local/ imports ipoc, lambdas, runtime"),
    Rule(
        "infra",
        ("ipoc", *SHARED_DECLARATIONS),
        f"infra/ imports ipoc and lambdas/shared declarations only ({', '.join(SHARED_DECLARATIONS)}): "
        "no handler, no client",
    ),
    Rule("bench", ANYTHING_BUT_TESTS, "bench/ imports anything but tests"),
    Rule("functions", (), "functions/ (workloads and their tools) imports nothing of ours"),
)
UNCHECKED = {
    "tests": "tests/ may import anything",
    "scripts": "scripts/ (developer tools make runs: the CLI reference, the demo) is not in ARCHITECTURE's table",
}
OURS = frozenset(ANYTHING_BUT_TESTS) | {"tests"}

# Known violations being removed on a branch (empty: issue 15 item 4 removed the last). An entry that no
# longer occurs fails this test, so none outlives its fix.
PENDING: set[tuple[str, str]] = set()


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, dotted name) of every import in the file, relative ones resolved, in line order.

    ``from package import name`` counts as ``package.name`` when that is a module of ours, else as ``package``.
    """
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def submodule(parent: str, name: str) -> str:
        folder = root.joinpath(*parent.split("."), name)
        return f"{parent}.{name}" if folder.with_suffix(".py").is_file() or folder.is_dir() else parent

    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            parent = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                parent = ".".join(base + ([node.module] if node.module else []))
            found += sorted({(node.lineno, submodule(parent, alias.name)) for alias in node.names})
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return sorted(found)


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def rule_for(module: str) -> tuple[Rule, str]:
    """The first rule matching the module, and the module's own unit (which it may always import)."""
    parts = module.split(".")
    for rule in TABLE:
        pattern = rule.pattern.split(".")
        if len(parts) >= len(pattern) and all(p in ("*", m) for p, m in zip(pattern, parts, strict=False)):
            return rule, ".".join(parts[: len(pattern)])
    raise AssertionError(f"{module} matches no rule of the import table")


def our_modules() -> list[Path]:
    files = []
    for top in sorted(OURS - set(UNCHECKED)):
        files += sorted(p for p in (ROOT / top).rglob("*.py") if "__pycache__" not in p.parts)
    return files


@functools.cache
def violations() -> tuple[tuple[str, str, str], ...]:
    """(importing module, imported name, message) for every import the table does not allow."""
    found = []
    for path in our_modules():
        module = module_name(path)
        rule, unit = rule_for(module)
        for line, name in imported_names(path):
            if name.split(".")[0] not in OURS or any(_within(name, p) for p in (unit, *rule.may_import)):
                continue
            where = f"{path.relative_to(ROOT)}:{line}"
            found.append((module, name, f"{module} imports {name} ({where}; table: {rule.table})"))
    return tuple(found)


def test_every_import_follows_the_table() -> None:
    unexpected = [message for module, name, message in violations() if (module, name) not in PENDING]
    assert not unexpected, "imports the table forbids:\n" + "\n".join(unexpected)


def test_every_pending_violation_still_exists() -> None:
    """A fixed violation leaves PENDING, so the allow-list never hides a new one."""
    seen = {(module, name) for module, name, _ in violations()}
    stale = sorted(PENDING - seen)
    assert not stale, f"fixed: delete from PENDING {stale}"


def test_every_top_level_package_is_in_the_table() -> None:
    """A new top-level folder with Python in it gets a row (or a reason to be unchecked) before it is trusted."""
    folders = {
        d.name
        for d in ROOT.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")
        and d.name not in ("build", "node_modules")
        and next(d.rglob("*.py"), None)
    }
    assert folders <= OURS, f"not in the import table: {sorted(folders - OURS)}"


@pytest.mark.parametrize(
    ("module", "name", "allowed"),
    [
        ("ipoc.policy", "lambdas.shared.config", False),
        ("ipoc.policy", "ipoc.rights", True),
        ("runtime.server", "ipoc.wire", True),
        ("runtime.server", "client.api", False),
        ("lambdas.ccfaas.tasks", "lambdas.ccfaas.lifecycle", True),
        ("lambdas.ccfaas.tasks", "lambdas.vaas.service", False),
        ("lambdas.vaas.service", "local.runtimes", False),
        ("lambdas.shared.stores", "lambdas.ccfaas.registry", False),
        ("client.cli.local.down", "local.runtimes", True),
        ("client.cli.instance.list", "local.stack", False),
        ("client.cli.runtime.serve", "runtime.server", True),
        ("client.cli.attestation.verify", "runtime.attestation", False),
        ("local.stack", "lambdas.vaas.handler", True),
        ("local.stack", "client.api", False),
        ("infra.constructs.data", "lambdas.shared.tables", True),
        ("infra.constructs.api", "lambdas.ccfaas.handler", False),
        ("infra.stacks.platform", "client.profiles", False),
        ("bench.vod", "client.camera.y4m", True),
        ("bench.control_plane", "tests.support.policies", False),
    ],
)
def test_the_table_reads_as_architecture_says(module: str, name: str, allowed: bool) -> None:
    rule, unit = rule_for(module)
    assert any(_within(name, p) for p in (unit, *rule.may_import)) is allowed


def test_imports_inside_functions_and_relative_ones_are_seen(tmp_path: Path) -> None:
    routes = tmp_path / "lambdas" / "vaas" / "routes"
    routes.mkdir(parents=True)
    (tmp_path / "lambdas" / "shared").mkdir()
    (routes / "veracruz.py").write_text("")
    source = routes / "x.py"
    source.write_text(
        "from . import veracruz\n"
        "from lambdas import shared\n"
        "def f():\n    from ..service import VaaS\n    import local.runtimes\n"
        "    importlib.import_module('client.api')\n"
    )
    assert [name for _, name in imported_names(source, tmp_path)] == [
        "lambdas.vaas.routes.veracruz",
        "lambdas.shared",
        "lambdas.vaas.service",
        "local.runtimes",
        "client.api",
    ]
