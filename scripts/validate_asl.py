"""Validate the Step Functions definition with a real ASL validator (npm `asl-validator`).

The definition is a Terraform template (`infra/terraform/statemachine/*.asl.json.tftpl`,
rendered by `templatefile` in stepfunctions.tf; not `.json`, which checkov would parse as a
plan); this renders it with stand-in values of the same shape (Lambda ARNs, numbers) and
runs the validator installed from `tools/asl`'s lockfile:

    (cd tools/asl && npm ci)                 # once; `make asl` does both steps
    python scripts/validate_asl.py           # exit 0 valid / 1 invalid / 2 not installed
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STATEMACHINE = ROOT / "infra" / "terraform" / "statemachine"
VALIDATOR = ROOT / "tools" / "asl" / "node_modules" / ".bin" / "asl-validator"
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
ACCOUNT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:healthpipe-"
# template variable -> stand-in (stepfunctions.tf passes the real ones)
NUMBERS = {
    "chunk_bytes": "268435456",
    "buckets": "16",
    "max_concurrency": "10",
    "tolerated_failure_percentage": "0",
    "task_max_attempts": "3",
    "timeout_seconds": "14400",
    "group_rows": "2000000",
}


def stand_in(name: str) -> str:
    if name.endswith("_function_arn"):
        function = name.removesuffix("_function_arn")
        return ACCOUNT_ARN + (function if function.startswith("analyze_") else "chunk_" + function)
    if name == "event_bus_name":
        return "healthpipe-bus"
    return NUMBERS[name]


def placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def render(path: Path, values: dict[str, str] | None = None) -> dict[str, Any]:
    """The definition at `path` with its `${name}` placeholders replaced (stand-ins unless
    `values` names them), parsed."""
    template = path.read_text(encoding="utf-8")
    given = values or {}
    text = PLACEHOLDER.sub(lambda m: given.get(m.group(1)) or stand_in(m.group(1)), template)
    rendered: dict[str, Any] = json.loads(text)
    return rendered


def definitions() -> list[Path]:
    return sorted(STATEMACHINE.glob("*.asl.json.tftpl"))


def validate(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    """Run the validator on the rendered definitions (in a temporary folder)."""
    node = shutil.which("node")
    if node is None or not VALIDATOR.exists():
        raise FileNotFoundError("asl-validator is not installed: run `make asl`")
    with tempfile.TemporaryDirectory(prefix="asl-") as tmp:
        args: list[str] = []
        for path in paths:
            target = Path(tmp) / path.name.removesuffix(".tftpl")
            target.write_text(json.dumps(render(path), indent=1), encoding="utf-8")
            args += ["--json-path", str(target)]
        return subprocess.run(
            [node, str(VALIDATOR), *args], capture_output=True, text=True, timeout=120
        )


def main() -> int:
    try:
        result = validate(definitions())
    except FileNotFoundError as exc:
        print(f"validate_asl: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
