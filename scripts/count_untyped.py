"""Counts `dict[str, Any]` / `Mapping[str, Any]` in the signatures of stages, ports and report
builders, and fails on any not in the allow-list below (issue 16: documents between stages are
typed models from `healthpipe.domain.documents`, not dicts).

    python scripts/count_untyped.py           # list every occurrence, exit 1 on a new one
    python scripts/count_untyped.py --check   # only the verdict (make lint)

A signature is a function's parameters and return annotation. The allow-list names each
function that may keep one, with the reason; an entry no longer needed is reported too, so the
list only shrinks (an entry allowing more than is left is reported, not failed).
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "healthpipe"
SCOPE = ("stages", "ports.py", "report")
UNTYPED = ("dict[str, Any]", "Mapping[str, Any]")

# "module::qualname" (one function or class) or "module" (the whole module, at most `limit`
# occurrences): why it may still have a dict signature. Shrink it; never grow it: the limits
# together may not exceed ALLOWED_TOTAL (a test holds it).
ALLOWED_TOTAL = 23
ALLOWED: dict[str, tuple[int, str]] = {
    # Ledger results are the stages' own small JSON records (what a replay needs), not
    # documents passed between stages.
    "ports.py::LedgerRecord": (1, "ledger result record (claim lifecycle)"),
    "ports.py::Ledger.complete": (1, "ledger result record (claim lifecycle)"),
    "ports.py::Ledger._complete": (1, "ledger result record (claim lifecycle)"),
    "stages/base.py": (7, "claim lifecycle helper: ledger results and stage info records"),
    "stages/ingest.py::_replay": (1, "ledger result record (replay)"),
    "stages/analyze_phases.py::_replay": (1, "ledger result record (replay)"),
    "stages/digest.py::_send_digest": (1, "stage info record (ledger result)"),
    "stages/notify.py::_notify": (1, "stage info record (ledger result)"),
    # Jinja contexts are dicts by nature.
    "report/render.py::render_template": (1, "Jinja context"),
    "report/digest.py::DigestModel.as_context": (1, "Jinja context"),
    "report/model.py::ReportModel.as_context": (1, "Jinja context"),
    "report/alert.py::AlertModel.as_context": (1, "Jinja context"),
    "report/browse.py::_card": (1, "report card JSON (stages/archive.py)"),
    # The LLM port carries the provider's raw JSON: what the model is sent and answers,
    # before the analyst validates it (the Analyst port itself takes the typed Brief).
    "ports.py::OutputTool": (1, "LLM port: a JSON schema is a dict"),
    "ports.py::Prompt": (1, "LLM port: the brief's JSON exactly as sent to the model"),
    "ports.py::Completion": (1, "LLM port: the model's JSON output, before validation"),
    "ports.py::AnalystError.__init__": (1, "LLM port: the grounding record of a bad output"),
}


@dataclass(frozen=True)
class Occurrence:
    where: str  # "module::qualname"
    line: int
    text: str


def _signature_texts(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    args = node.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    every += [a for a in (args.vararg, args.kwarg) if a is not None]
    texts = [ast.unparse(a.annotation) for a in every if a.annotation is not None]
    if node.returns is not None:
        texts.append(ast.unparse(node.returns))
    return texts


def _visit(tree: ast.AST, module: str, prefix: str = "") -> list[Occurrence]:
    found: list[Occurrence] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.ClassDef):
            name = f"{prefix}{node.name}"
            for item in node.body:  # dataclass fields are the class's signature
                if isinstance(item, ast.AnnAssign):
                    text = ast.unparse(item.annotation)
                    if any(u in text for u in UNTYPED):
                        found.append(Occurrence(f"{module}::{name}", item.lineno, text))
            found += _visit(node, module, f"{name}.")
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            name = f"{prefix}{node.name}"
            for text in _signature_texts(node):
                if any(u in text for u in UNTYPED):
                    found.append(Occurrence(f"{module}::{name}", node.lineno, text))
    return found


def occurrences(src: Path = SRC) -> list[Occurrence]:
    found: list[Occurrence] = []
    for part in SCOPE:
        root = src / part
        files = sorted(root.rglob("*.py")) if root.is_dir() else [root] * root.is_file()
        for path in files:
            module = path.relative_to(src).as_posix()
            found += _visit(ast.parse(path.read_text(encoding="utf-8")), module)
    return found


def _entry(where: str) -> str | None:
    if where in ALLOWED:
        return where
    module = where.split("::", 1)[0]
    return module if module in ALLOWED else None


def verdict(found: list[Occurrence]) -> tuple[list[Occurrence], list[str]]:
    """(occurrences over the allow-list, allow-list entries that allow more than is found)."""
    used: dict[str, int] = {}
    new = []
    for o in found:
        entry = _entry(o.where)
        if entry is None:
            new.append(o)
            continue
        used[entry] = used.get(entry, 0) + 1
        if used[entry] > ALLOWED[entry][0]:
            new.append(o)
    stale = [
        f"{name} ({used.get(name, 0)} of {limit})"
        for name, (limit, _) in ALLOWED.items()
        if used.get(name, 0) < limit
    ]
    return new, stale


def main(argv: list[str]) -> int:
    found = occurrences()
    new, stale = verdict(found)
    if "--check" not in argv:
        for o in found:
            mark = "allowed" if _entry(o.where) else "NEW"
            print(f"{o.where}:{o.line}: {o.text} [{mark}]")
    for o in new:
        print(f"untyped signature: {o.where} (line {o.line}): {o.text}", file=sys.stderr)
    for name in stale:
        print(f"allow-list entry allows more than is left, lower it: {name}", file=sys.stderr)
    print(f"{len(found)} dict signatures, {len(found) - len(new)} allowed, {len(new)} new")
    return 1 if new else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
