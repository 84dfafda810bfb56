"""Guard: every file named to one of DuckDB's read functions in `src/healthpipe` goes through
`engine.source_literal` / `engine.source_list`, which glob-escape it. DuckDB globs every
path its read functions are given, so a `quote_literal(str(path))` under a folder such as
`study[2025]` reads another study's file of the same name (tests/e2e/test_analyze_glob_paths.py).

The SQL is built in f-strings and `+` concatenations: after a literal ending in
`read_parquet(` (or `read_csv(`, `read_json(`, … and `[`), the next expression must be a
`source_literal(…)` / `source_list(…)` call, a name assigned only from such calls in the same
function, or a call of a function of the same module that returns only such calls. A read
through DuckDB's Python API (`con.read_parquet(x)`) is held to the same rule, and a
`FROM '<file>'` scan may not be built with `quote_literal`."""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import healthpipe

SRC = Path(healthpipe.__file__).parent
SAFE_CALLS = {"source_literal", "source_list"}
READ_CALL = re.compile(
    r"\b(read_(parquet|csv|csv_auto|json|json_auto|ndjson|text|blob)|parquet_scan)\(\s*\[?\s*$",
    re.I,
)
TABLE_SCAN = re.compile(r"(?<!DISTINCT )\b(FROM|JOIN)\s+$", re.I)  # not IS DISTINCT FROM
API_READS = {"read_parquet", "read_csv", "read_json", "from_parquet", "from_csv_auto"}

# (module relative to src/healthpipe, the expression's source text): a read given a pattern on
# purpose, each with its reason.
ALLOWED = {
    # the lake's views read every file of the lake: the folder glob-escaped, then a pattern
    ("dataops/lake.py", "pattern"): "glob_escape(folder) + '/' + pattern, on purpose",
}


@dataclass(frozen=True)
class Read:
    module: str
    line: int
    expression: str


def _parts(node: ast.AST) -> list[ast.expr] | None:
    """The pieces of an f-string or of a `+` chain of strings, in order."""
    if isinstance(node, ast.JoinedStr):
        return [v.value if isinstance(v, ast.FormattedValue) else v for v in node.values]
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _parts(node.left), _parts(node.right)
        return (left or [node.left]) + (right or [node.right])
    return None


def _text(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


class Checker:
    """The read sources of one module, and which of them are not escaped."""

    def __init__(self, source: str, module: str, escapers: frozenset[str] = frozenset()) -> None:
        self.tree = ast.parse(source)
        self.module = module
        self.safe_calls = SAFE_CALLS | escapers  # and functions of other modules that escape
        self.functions = {n.name: n for n in ast.walk(self.tree) if isinstance(n, ast.FunctionDef)}
        self.allowed: set[tuple[str, str]] = set()  # the ALLOWED entries met
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent

    def reads(self) -> Iterator[tuple[ast.expr, ast.AST]]:
        """(the path expression, where it is) of every read."""
        for node in ast.walk(self.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in API_READS
                and node.args
            ):
                yield node.args[0], node
            parts = _parts(node)
            if parts is None or isinstance(self.parents.get(node), ast.BinOp):
                continue  # an inner `+` is looked at from the outermost one
            for before, after in itertools.pairwise(parts):
                if _is_read(_text(before) or "", after):
                    yield after, node

    def unescaped(self) -> list[Read]:
        found = []
        for expr, where in self.reads():
            if not self._safe(expr, where):
                text = ast.unparse(expr)
                if (self.module, text) in ALLOWED:
                    self.allowed.add((self.module, text))
                else:
                    found.append(Read(self.module, expr.lineno, text))
        return found

    def _safe(self, expr: ast.expr, where: ast.AST, depth: int = 0) -> bool:
        if depth > 3:
            return False
        if _is_call(expr, self.safe_calls):
            return True
        if isinstance(expr, ast.Name):
            values = self._assignments(expr.id, where)
            return bool(values) and all(self._safe(v, v, depth + 1) for v in values)
        if isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name):
            function = self.functions.get(expr.func.id)
            if function is None:
                return False
            return self.escapes(function, depth + 1)
        return False

    def escapes(self, function: ast.FunctionDef, depth: int = 0) -> bool:
        """Does `function` return only escaped sources?"""
        returns = [r.value for r in ast.walk(function) if isinstance(r, ast.Return) and r.value]
        return bool(returns) and all(self._safe(r, r, depth) for r in returns)

    def _assignments(self, name: str, where: ast.AST) -> list[ast.expr]:
        scope: ast.AST | None = where
        while scope is not None and not isinstance(scope, ast.FunctionDef | ast.Module):
            scope = self.parents.get(scope)
        values: list[ast.expr] = []
        for node in ast.walk(scope or self.tree):
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign | ast.NamedExpr) and node.value is not None:
                targets = [node.target]
            else:
                continue
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                values.append(node.value)
        return values


def _is_read(text: str, after: ast.expr) -> bool:
    """Is `after` a file read, given the SQL `text` before it?"""
    if READ_CALL.search(text):
        return True
    scanned = _is_call(after, {"quote_literal"}) or (_text(after) or "").startswith("'")
    return bool(TABLE_SCAN.search(text)) and scanned


def _is_call(expr: ast.expr, names: set[str]) -> bool:
    return isinstance(expr, ast.Call) and isinstance(expr.func, ast.Name) and expr.func.id in names


def check(source: str, module: str = "m.py") -> list[Read]:
    return Checker(source, module).unescaped()


def escapers(sources: dict[str, str]) -> frozenset[str]:
    """The functions (by name, every function of that name) of `sources` that return only
    escaped sources, such as `analysis/common.py::parquet_source`: a read may call them from
    another module."""
    found: frozenset[str] = frozenset()
    while True:
        verdicts: dict[str, bool] = {}
        for module, source in sources.items():
            checker = Checker(source, module, found)
            for name, function in checker.functions.items():
                verdicts[name] = verdicts.get(name, True) and checker.escapes(function)
        more = frozenset(name for name, ok in verdicts.items() if ok)
        if more == found:
            return found
        found = more


def test_every_read_in_src_is_glob_escaped() -> None:
    unescaped: list[Read] = []
    allowed: set[tuple[str, str]] = set()
    reads = 0
    sources = {
        path.relative_to(SRC).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(SRC.rglob("*.py"))
    }
    known = escapers(sources)
    assert "parquet_source" in known
    for module, source in sources.items():
        checker = Checker(source, module, known)
        reads += sum(1 for _ in checker.reads())
        unescaped += checker.unescaped()
        allowed |= checker.allowed
    assert allowed == set(ALLOWED)  # no stale entry
    assert reads >= 20  # the scan finds the reads (today about 30)
    assert unescaped == [], "\n".join(f"{r.module}:{r.line} {r.expression}" for r in unescaped)


def test_the_guard_tells_escaped_from_unescaped_reads() -> None:
    bad = check(
        "def f(p, con):\n"
        '    a = con.execute(f"SELECT * FROM read_parquet({quote_literal(str(p))})")\n'
        "    b = 'read_parquet([' + ', '.join(quote_literal(str(x)) for x in p) + '])'\n"
        "    src = quote_literal(str(p))\n"
        '    c = f"read_csv({src}, header = true)"\n'
        '    d = f"SELECT * FROM {quote_literal(str(p))}"\n'
        "    e = con.read_parquet(str(p))\n"
        '    g = f"FROM read_parquet({helper(p)})"\n'
        "def helper(p):\n"
        "    return quote_literal(str(p))\n"
    )
    assert sorted(r.line for r in bad) == [2, 3, 5, 6, 7, 8]
    good = check(
        "def f(p, con):\n"
        '    a = f"SELECT * FROM read_parquet({source_literal(p)}, hive_partitioning = false)"\n'
        "    files = source_list(p)\n"
        '    b = f"read_parquet({files})"\n'
        '    c = f"SELECT 1 FROM read_parquet({listed(p)})"\n'
        '    d = f"COPY (SELECT 1) TO {quote_literal(str(p))} (FORMAT parquet)"\n'
        '    e = f"SELECT * FROM {a}"\n'
        '    f = f"SELECT * FROM {a} WHERE u IS DISTINCT FROM {quote_literal(p)}"\n'
        "def listed(p):\n"
        "    return source_list(p)\n"
    )
    assert good == []
    listed = "def ok(p):\n    return source_list(p)\ndef via(p):\n    return ok(p)\n"
    mixed = (
        "def mixed(p):\n    if p:\n        return source_literal(p)\n    return quote_literal(p)\n"
    )
    assert escapers({"a.py": listed, "b.py": mixed}) == {"ok", "via"}
