"""Mutation testing of lastro's core modules, each against its own tests.

mutmut 3 mutates the body of every plain function and method and runs, among the tests it is given, those
that call it. It leaves out decorated functions (validators, properties, context managers) and values set
at module or class level (constants, pydantic `Field` bounds and defaults): a small pass over the syntax
tree mutates those too and runs the module's tests against each mutant.

Each module runs in a copy of the tree of its own under `mutants/<module>/`, so that mutmut mutates that
module only and runs that module's tests only. A line marked `# pragma: no mutate` is left alone by both.

    python scripts/mutation.py [--max-children 2] [--fail-under 85] [lastro/db/retry.py ...]
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "mutants"
SCOPE = ["lastro/db", "lastro/http", "lastro/settings.py", "lastro/health.py"]

# A module's own tests are tests/<its package>/test_<its name>.py; these have others, or more than one.
OWN_TESTS: dict[str, list[str]] = {
    "lastro/db/attempts.py": [
        "tests/db/test_attempts.py",
        "tests/db/test_commit_outcome.py",
        "tests/db/test_transactions.py",
    ],
    "lastro/db/engine.py": ["tests/db/test_engine.py", "tests/db/test_read_connections.py"],
    # `revision()` is driven through `lastro db revision`.
    "lastro/db/migrations.py": [
        "tests/db/test_migrations.py",
        "tests/db/test_migrations_revision.py",
        "tests/test_cli_db.py",
    ],
    "lastro/db/outcome.py": ["tests/db/test_commit_outcome.py"],
    "lastro/db/postgres_units.py": ["tests/db/test_commit_outcome.py", "tests/db/test_transactions.py"],
    # A COMMIT refused by SQLite, inline and batched.
    "lastro/db/writer.py": ["tests/db/test_writer.py", "tests/db/test_commit_outcome.py"],
    "lastro/db/transactions.py": [
        "tests/db/test_transactions.py",
        "tests/db/test_commit_outcome.py",
        "tests/db/test_read_connections.py",
        "tests/db/test_storage_full.py",
    ],
}

# Statements that write a log event are not mutated: tests pin what a caller sees, never the words or fields
# of a log line, so every mutant of one would survive whatever the tests.
LOG_CALLS = [
    r"\blogger\.(debug|info|warning|error|exception|critical)\(",
    r"\bself\._log\(",
    r"= get_logger\(",
]

# How mutmut reports each outcome; a mutant a test detects is killed, or timed out.
CAUGHT = {"killed", "timeout"}


class RunFailed(Exception):
    """mutmut could not run (its clean run of the tests failed, or it crashed)."""


@dataclass
class Score:
    module: str
    tests: list[str]
    statuses: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return len(self.statuses)

    @property
    def caught(self) -> int:
        return sum(status in CAUGHT for status in self.statuses.values())

    @property
    def percent(self) -> float:
        return 100.0 * self.caught / self.total if self.total else 100.0

    @property
    def survivors(self) -> list[str]:
        return sorted(name for name, status in self.statuses.items() if status not in CAUGHT)


def modules_in_scope() -> list[str]:
    found: list[str] = []
    for entry in SCOPE:
        path = ROOT / entry
        paths = sorted(path.rglob("*.py")) if path.is_dir() else [path]
        found += [str(p.relative_to(ROOT)) for p in paths if p.name != "__init__.py"]
    return found


def tests_of(module: str) -> list[str]:
    if module in OWN_TESTS:
        return OWN_TESTS[module]
    path = Path(module)
    package_tests = Path("tests", *path.parent.parts[1:])
    own = package_tests / f"test_{path.stem}.py"
    # A module without a test file of its own is measured against the tests of its package.
    return [str(own)] if (ROOT / own).exists() else [str(package_tests)]


def copy_tree(target: Path) -> None:
    shutil.rmtree(target, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("lastro", "tests", "examples"):  # the migration tests read examples/orders/migrations
        shutil.copytree(ROOT / name, target / name, ignore=ignore)


def pyproject_with(settings: dict[str, object]) -> str:
    """The project's pyproject.toml with its [tool.mutmut] table replaced by `settings`."""
    text = (ROOT / "pyproject.toml").read_text()
    text = re.sub(r"(?ms)^\[tool\.mutmut\]\n.*?(?=^\[|\Z)", "", text)
    # A JSON string, boolean, number or list of strings is written the same way in TOML.
    lines = [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return text.rstrip() + "\n\n[tool.mutmut]\n" + "\n".join(lines) + "\n"


def run_mutmut(module: str, tests: list[str], max_children: int) -> dict[str, str]:
    """mutmut on `module` alone against `tests`: each mutant's name and status."""
    work = WORK / module.removesuffix(".py").replace("/", ".")
    copy_tree(work)
    config = {
        "source_paths": ["lastro"],
        "only_mutate": [module],
        "pytest_add_cli_args_test_selection": tests,
        "also_copy": ["examples"],
        "do_not_mutate_patterns": LOG_CALLS,
        # The copy is not a checkout: change detection would read the repository around it.
        "use_git_change_detection": False,
    }
    (work / "pyproject.toml").write_text(pyproject_with(config))
    mutmut = [sys.executable, "-m", "mutmut"]
    run = subprocess.run(
        [*mutmut, "run", "--max-children", str(max_children)], cwd=work, capture_output=True, text=True
    )
    (work / "mutmut-run.log").write_text(run.stdout + run.stderr)
    if run.returncode != 0:
        raise RunFailed(f"mutmut failed on {module}; see {work / 'mutmut-run.log'}")
    subprocess.run([*mutmut, "export-cicd-stats"], cwd=work, capture_output=True, check=True)
    listed = subprocess.run(
        [*mutmut, "results", "--all", "true"], cwd=work, capture_output=True, text=True, check=True
    )
    statuses = {}
    for line in listed.stdout.splitlines():
        name, sep, status = line.strip().rpartition(": ")
        if sep:
            statuses[name] = status
    return statuses


# The pass over the syntax tree -------------------------------------------------------------------------

SWAPPED_OPERATORS: dict[type[ast.AST], type[ast.AST]] = {
    ast.Lt: ast.LtE,
    ast.LtE: ast.Lt,
    ast.Gt: ast.GtE,
    ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq,
    ast.NotEq: ast.Eq,
    ast.In: ast.NotIn,
    ast.NotIn: ast.In,
    ast.Is: ast.IsNot,
    ast.IsNot: ast.Is,
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.And: ast.Or,
    ast.Or: ast.And,
}
SWAPPED_BOUNDS = {"ge": "gt", "gt": "ge", "le": "lt", "lt": "le"}
# Keyword arguments that document rather than behave, like docstrings.
DOCUMENTING_KEYWORDS = {"description", "title", "help"}


@dataclass(frozen=True)
class Mutant:
    line: int
    start: int
    end: int
    replacement: str
    label: str

    def apply(self, source: bytes) -> bytes:
        return source[: self.start] + self.replacement.encode() + source[self.end :]


class MutantFinder:
    """Mutants of what mutmut leaves out: decorated functions, module and class-level values."""

    def __init__(self, source: bytes) -> None:
        self.source = source
        self.lines = source.decode().splitlines()
        self.line_starts = [0]
        for line in source.splitlines(keepends=True):
            self.line_starts.append(self.line_starts[-1] + len(line))
        self.mutants: list[Mutant] = []

    def offset(self, line: int, column: int) -> int:
        return self.line_starts[line - 1] + column

    def span(self, node: ast.AST) -> tuple[int, int]:
        start = self.offset(node.lineno, node.col_offset)  # type: ignore[attr-defined]
        end = self.offset(node.end_lineno, node.end_col_offset)  # type: ignore[attr-defined]
        return start, end

    def add(self, node: ast.AST, replacement: str, label: str) -> None:
        line = node.lineno  # type: ignore[attr-defined]
        if "pragma: no mutate" in self.lines[line - 1]:
            return
        if any(re.search(pattern, self.lines[line - 1]) for pattern in LOG_CALLS):
            return
        start, end = self.span(node)
        self.mutants.append(Mutant(line, start, end, replacement, label))

    def find(self, tree: ast.Module) -> list[Mutant]:
        self.statements(tree.body)
        return self.mutants

    def statements(self, body: list[ast.stmt]) -> None:
        for index, statement in enumerate(body):
            if index == 0 and is_docstring(statement):
                continue
            if isinstance(statement, ast.ClassDef):
                self.statements(statement.body)
            elif isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.function(statement, nested=False)
            elif isinstance(statement, (ast.Assign, ast.AnnAssign)) and is_value(statement):
                self.expression_tree(statement.value)

    def function(self, function: ast.FunctionDef | ast.AsyncFunctionDef, *, nested: bool) -> None:
        if not mutmut_mutates(function, nested=nested):
            for inner in function.body:
                self.expression_tree(inner)
            return
        # mutmut skips a decorated function defined inside one it mutates, too.
        stack: list[ast.AST] = list(function.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.decorator_list:
                self.function(node, nested=True)
            else:
                stack.extend(ast.iter_child_nodes(node))

    def expression_tree(self, root: ast.AST) -> None:
        for node in walk_skipping(root):
            self.mutate(node)

    def mutate(self, node: ast.AST) -> None:
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, bool):
                self.add(node, repr(not value), f"{value} -> {not value}")
            elif isinstance(value, (int, float)):
                self.add(node, repr(value + 1), f"{value!r} -> {value + 1!r}")
            elif isinstance(value, str) and value:
                self.add(node, repr(f"XX{value}XX"), f"{value!r} -> 'XX...XX'")
        elif isinstance(node, ast.Compare) and len(node.ops) == 1:
            self.swap(node, node.ops, 0)
        elif isinstance(node, (ast.BinOp, ast.BoolOp)):
            self.swap(node, [node.op], None)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            self.add(node, f"({ast.unparse(node.operand)})", "not x -> x")
        elif isinstance(node, ast.keyword) and node.arg in SWAPPED_BOUNDS:
            bound = SWAPPED_BOUNDS[node.arg]
            self.add(node, f"{bound}={ast.unparse(node.value)}", f"{node.arg}= -> {bound}=")
        elif isinstance(node, ast.Return) and node.value is not None and not is_none(node.value):
            self.add(node, "return None", "return x -> return None")

    def swap(self, node: ast.AST, ops: list[ast.AST], index: int | None) -> None:
        op = ops[0]
        swapped = SWAPPED_OPERATORS.get(type(op))
        if swapped is None:
            return
        mutated = ast.parse(ast.unparse(node), mode="eval").body
        if isinstance(mutated, ast.Compare):
            mutated.ops[0] = swapped()  # type: ignore[call-arg]
        else:
            mutated.op = swapped()  # type: ignore[attr-defined]
        self.add(node, f"({ast.unparse(mutated)})", f"{type(op).__name__} -> {swapped.__name__}")


def is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)


def is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def is_value(statement: ast.Assign | ast.AnnAssign) -> bool:
    """A value set, but not `__all__` and the like (names for tools, not behaviour)."""
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    dunder = any(isinstance(t, ast.Name) and t.id.startswith("__") for t in targets)
    return statement.value is not None and not dunder and not is_type_variable(statement.value)


def is_type_variable(value: ast.expr) -> bool:
    """`T = TypeVar("T")`: a name for the type checker, which runs nothing."""
    return (
        isinstance(value, ast.Call)
        and isinstance(value.func, ast.Name)
        and value.func.id in ("TypeVar", "ParamSpec", "NewType")
    )


def mutmut_mutates(function: ast.FunctionDef | ast.AsyncFunctionDef, *, nested: bool) -> bool:
    """Whether mutmut mutates this function: undecorated, or at top level a staticmethod/classmethod."""
    if not function.decorator_list:
        return True
    names = [d.id for d in function.decorator_list if isinstance(d, ast.Name)]
    return not nested and names in (["staticmethod"], ["classmethod"]) and len(function.decorator_list) == 1


def walk_skipping(root: ast.AST) -> list[ast.AST]:
    """Every node under `root` but annotations, docstrings, f-strings and documenting keywords."""
    found: list[ast.AST] = []
    stack = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.JoinedStr):
            continue
        if isinstance(node, ast.keyword) and node.arg in DOCUMENTING_KEYWORDS:
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        found.append(node)
        for name, child in ast.iter_fields(node):
            if name in ("annotation", "returns", "type_comment", "decorator_list"):
                continue
            children = child if isinstance(child, list) else [child]
            stack.extend(c for c in children if isinstance(c, ast.AST))
    return found


def run_syntax_tree_pass(module: str, tests: list[str], max_children: int) -> dict[str, str]:
    """The module's tests against each mutant of what mutmut leaves out: a label and status for each."""
    source = (ROOT / module).read_bytes()
    mutants = MutantFinder(source).find(ast.parse(source))
    if not mutants:
        return {}
    base = WORK / module.removesuffix(".py").replace("/", ".") / "syntax-tree"
    copies = [base / str(n) for n in range(max_children)]
    for copy in copies:
        copy_tree(copy)
        shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]

    started = time.monotonic()
    subprocess.run(command, cwd=copies[0], capture_output=True, check=True)
    limit = 10 * (time.monotonic() - started) + 30

    def outcome(copy: Path, mutant: Mutant) -> str:
        target = copy / module
        target.write_bytes(mutant.apply(source))
        try:
            run = subprocess.run(command, cwd=copy, capture_output=True, timeout=limit)
        except subprocess.TimeoutExpired:
            return "timeout"
        finally:
            target.write_bytes(source)
        return "survived" if run.returncode == 0 else "killed"

    statuses: dict[str, str] = {}
    free = list(copies)
    with concurrent.futures.ThreadPoolExecutor(max_children) as pool:
        pending: dict[concurrent.futures.Future[str], tuple[Path, Mutant]] = {}
        queue = list(mutants)
        while queue or pending:
            while queue and free:
                copy, mutant = free.pop(), queue.pop(0)
                pending[pool.submit(outcome, copy, mutant)] = (copy, mutant)
            done, _ = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for future in done:
                copy, mutant = pending.pop(future)
                free.append(copy)
                statuses[f"{module}:{mutant.line}: {mutant.label}"] = future.result()
    return statuses


def measure(module: str, max_children: int) -> Score:
    tests = tests_of(module)
    score = Score(module, tests)
    score.statuses |= run_mutmut(module, tests, max_children)
    score.statuses |= run_syntax_tree_pass(module, tests, max_children)
    return score


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("modules", nargs="*", help="modules to measure (default: every module in scope)")
    parser.add_argument("--max-children", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--fail-under", type=float, default=0.0, help="exit 1 if a module scores lower")
    args = parser.parse_args()
    os.chdir(ROOT)
    modules = args.modules or modules_in_scope()
    import mutmut

    summary = []
    failed = []
    for module in modules:
        try:
            score = measure(module, args.max_children)
        except (RunFailed, subprocess.CalledProcessError) as error:
            print(f"{module}: not measured: {error}", flush=True)
            failed.append(module)
            continue
        print(f"{module}: {score.caught}/{score.total} caught, {score.percent:.0f}%", flush=True)
        for name in score.survivors:
            print(f"    {score.statuses[name]}: {name}", flush=True)
        summary.append(
            {
                "module": module,
                "tests": score.tests,
                "caught": score.caught,
                "total": score.total,
                "percent": round(score.percent, 1),
                "survivors": {name: score.statuses[name] for name in score.survivors},
            }
        )
    # Runs of a few modules add to the summary of earlier ones.
    path = WORK / "summary.json"
    rows = {row["module"]: row for row in json.loads(path.read_text())["modules"]} if path.exists() else {}
    rows |= {row["module"]: row for row in summary}
    today = datetime.date.today().isoformat()
    report = {"date": today, "mutmut": mutmut.__version__, "modules": [*rows.values()]}
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{'module':40} {'caught':>9} {'score':>6}")
    for row in summary:
        print(f"{row['module']:40} {row['caught']:>4}/{row['total']:<4} {row['percent']:>5.1f}%")
    low = failed + [row["module"] for row in summary if row["percent"] < args.fail_under]
    if low:
        print(f"below {args.fail_under:.0f}%: {', '.join(low)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
