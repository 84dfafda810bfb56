"""Helpers of the infrastructure tests: load the Terraform with python-hcl2, check formatting.

python-hcl2 (8.x) returns every block attribute wrapped in a one-element list and keeps
expressions that are not literals as `"${...}"` strings; `attr()` unwraps the former.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "infra" / "terraform"
MODULE = TERRAFORM  # the healthpipe module is the root of infra/terraform
CICD = TERRAFORM / "cicd"


def tf_files(directory: Path = TERRAFORM) -> list[Path]:
    return sorted(p for p in directory.rglob("*.tf") if ".terraform" not in p.parts)


def attr(block: dict[str, Any], name: str, default: Any = None) -> Any:
    """A block attribute's value (python-hcl2 wraps attribute values in a one-item list)."""
    if name not in block:
        return default
    value = block[name]
    if isinstance(value, list) and len(value) == 1:
        return value[0]
    return value


def each_value(expression: Any, entry: dict[str, Any]) -> Any:
    """`expression` of a `for_each` resource with every whole `${each.value.<field>}` (alone,
    or an item of a list) replaced by that field of the map entry `entry`."""
    if isinstance(expression, list):
        return [each_value(item, entry) for item in expression]
    if isinstance(expression, str):
        whole = re.fullmatch(r"\$\{each\.value\.(\w+)\}", expression)
        if whole:
            return entry[whole.group(1)]
    return expression


def squash(expression: Any) -> str:
    """An expression as python-hcl2 re-serialised it, without whitespace (for comparisons)."""
    return re.sub(r"\s+", "", str(expression))


@dataclass
class Module:
    """The top-level blocks of one Terraform module (one directory), merged over its files."""

    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    moved: list[tuple[str, str]] = field(default_factory=list)  # (from, to) addresses

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        return self.resources[kind][name]

    def local(self, name: str) -> Any:
        return self.locals[name]


def load_module(directory: Path = MODULE) -> Module:
    module = Module()
    for path in sorted(directory.glob("*.tf")):
        with path.open() as handle:
            parsed = hcl2.load(handle)
        for block in parsed.get("locals", []):
            for key, value in block.items():
                if key.startswith("__"):
                    continue
                assert key not in module.locals, f"local.{key} defined twice"
                module.locals[key] = (
                    value[0] if isinstance(value, list) and len(value) == 1 else value
                )
        for block in parsed.get("variable", []):
            module.variables.update(block)
        for block in parsed.get("output", []):
            module.outputs.update(block)
        for block in parsed.get("moved", []):
            module.moved.append((attr(block, "from"), attr(block, "to")))
        for kind, target in (("resource", module.resources), ("data", module.data)):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    target.setdefault(rtype, {}).update(named)
    return module


# --- terraform fmt conventions ------------------------------------------------------------
OPEN, CLOSE = "{[(", "}])"


def _code_tokens(line: str) -> tuple[str, int]:
    """`line` with string contents and comments blanked (same length), and its net brackets.

    Brackets inside strings (including `${...}` interpolations, which always close on the
    same line here) are not counted; `#` and `//` start a comment outside strings.
    """
    out: list[str] = []
    net = 0
    i = 0
    stack: list[str] = []  # "str" or "interp:<depth>"
    while i < len(line):
        ch = line[i]
        if not stack:
            if ch == "#" or line.startswith("//", i):
                out.append(" " * (len(line) - i))
                break
            if ch == '"':
                stack.append("str")
            elif ch in OPEN:
                net += 1
            elif ch in CLOSE:
                net -= 1
            out.append(ch)
            i += 1
            continue
        top = stack[-1]
        step = 1
        if top == "str":
            if ch == "\\":
                step = 2
            elif line.startswith("${", i) or line.startswith("%{", i):
                stack.append("interp:0")
                step = 2
            elif ch == '"':
                stack.pop()
        else:
            depth = int(top.split(":")[1])
            if ch == '"':
                stack.append("str")
            elif ch == "{":
                stack[-1] = f"interp:{depth + 1}"
            elif ch == "}":
                if depth == 0:
                    stack.pop()
                else:
                    stack[-1] = f"interp:{depth - 1}"
        out.append('"' if (ch == '"' and step == 1 and stack[-1:] != ["str"]) else "x" * step)
        i += step
    code = "".join(out)[: len(line)]
    return code, net


def _bracket_change(code: str) -> int:
    return sum(1 for ch in code if ch in OPEN) - sum(1 for ch in code if ch in CLOSE)


ASSIGN = re.compile(r"(?<![=!<>])=(?![=>])")


def fmt_problems(path: Path) -> list[str]:
    """Differences from what `terraform fmt` would write, for the conventions checked here.

    Checked: UTF-8 text with LF line ends and a final newline, no tabs, no trailing
    whitespace, no two blank lines in a row at the end; indentation of every line = 2 x the
    open-bracket levels, computed the way hclwrite's formatter does (a line with a net
    opening of brackets opens one level, whatever the count); `=` of consecutive one-line
    attributes aligned one column after the longest name (hclwrite's assignment chains,
    broken by any line that is not a complete one-line attribute); one space after `=`.
    Not checked: spacing inside expressions, heredocs (none are used), and anything else
    hclwrite normalises.
    """
    text = path.read_text(encoding="utf-8")
    problems: list[str] = []
    if "\r" in text:
        problems.append("CR line endings")
    if "\t" in text:
        problems.append("tab characters")
    if text and not text.endswith("\n"):
        problems.append("no newline at end of file")
    if text.endswith("\n\n"):
        problems.append("blank line(s) at end of file")
    lines = text.split("\n")[:-1] if text.endswith("\n") else text.split("\n")

    indents: list[int] = []
    chain: list[tuple[int, int, int]] = []  # (line number, '=' column, lead width)

    def close_chain() -> None:
        if chain:
            want = max(width for _, _, width in chain) + 1
            for number, column, _ in chain:
                if column != want:
                    problems.append(
                        f"line {number}: '=' at column {column}, fmt aligns it at {want}"
                    )
            chain.clear()

    for number, line in enumerate(lines, start=1):
        if line != line.rstrip():
            problems.append(f"line {number}: trailing whitespace")
        stripped = line.strip()
        if not stripped:
            close_chain()
            continue
        code, net = _code_tokens(line)
        if net > 0:
            expected = 2 * len(indents)
            indents.append(net)
        elif net < 0:
            closed = -net
            while closed > 0 and indents:
                if closed > indents[-1]:
                    closed -= indents.pop()
                elif closed < indents[-1]:
                    indents[-1] -= closed
                    closed = 0
                else:
                    indents.pop()
                    closed = 0
            expected = 2 * len(indents)
        else:
            expected = 2 * len(indents)
        actual = len(line) - len(line.lstrip(" "))
        if actual != expected:
            problems.append(f"line {number}: indented {actual}, fmt indents {expected}")

        # hclwrite: the first `=` that is not the line's first token makes the line an
        # attribute if the brackets from there to the end of the line balance.
        match = ASSIGN.search(code)
        if match and match.start() > actual and _bracket_change(code[match.start() :]) == 0:
            lead = line[: match.start()].rstrip()
            chain.append((number, match.start(), len(lead)))
            after = line[match.end() :]
            if not after.startswith(" ") or after.startswith("  "):
                problems.append(f"line {number}: fmt puts one space after '='")
        else:
            close_chain()
    close_chain()
    return problems
