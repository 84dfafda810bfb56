"""Acceptance: `healthpipe run FILE --analyst bedrock` without AWS credentials.

The command runs in a subprocess whose environment offers no credentials anywhere (no env
keys, empty config and credentials files, instance metadata disabled and pointed at a
closed local port in case anything tried it). It must finish with exit 0, one report, and
an analysis that says the builtin analyst wrote it and why.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from healthpipe.synthetic import SyntheticSpec, generate_csv

AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
)


def closed_local_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def healthpipe_command() -> list[str]:
    script = Path(sys.executable).with_name("healthpipe")
    found = str(script) if script.exists() else shutil.which("healthpipe")
    assert found, "the healthpipe console script is not installed"
    return [found]


def credential_free_env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in AWS_VARIABLES and not k.startswith("HEALTHPIPE_")
    }
    empty_config, empty_credentials = tmp_path / "aws-config", tmp_path / "aws-credentials"
    empty_config.write_text("")
    empty_credentials.write_text("")
    env.update(
        {
            "AWS_CONFIG_FILE": str(empty_config),
            "AWS_SHARED_CREDENTIALS_FILE": str(empty_credentials),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": f"http://127.0.0.1:{closed_local_port()}/",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    return env


def test_bedrock_without_credentials_completes_with_the_builtin_fallback(tmp_path: Path) -> None:
    # GIVEN a vitals file and a machine with no AWS credentials at all
    source = tmp_path / "vitals.csv"
    generate_csv(SyntheticSpec(rows=3000, users=15, seed=3), source)
    workspace = tmp_path / "ws"
    # WHEN the pipeline runs with the Bedrock analyst
    completed = subprocess.run(
        [
            *healthpipe_command(),
            "run",
            str(source),
            "-w",
            str(workspace),
            "--analyst",
            "bedrock",
            "--json",
        ],
        env=credential_free_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    # THEN it succeeds with one report
    assert completed.returncode == 0, completed.stderr
    (outcome,) = json.loads(completed.stdout)["files"]
    assert outcome["status"] == "processed" and outcome["report"]
    report = Path(outcome["report"])
    assert report.is_file() and report.stem == outcome["dataset_id"]
    assert len(list((workspace / "outbox").glob("report-*.eml"))) == 1  # one report sent
    # AND the analysis says the builtin analyst wrote it, which model was tried, and why
    analysis = json.loads(
        (workspace / "bucket" / "analyzed" / f"{outcome['dataset_id']}.json").read_text()
    )
    analyst = analysis["analyst"]
    assert analyst["provider"] == "builtin"
    assert analyst["fallback_reason"] == "no_credentials"
    assert analyst["attempted"] == "bedrock:amazon.nova-lite-v1:0"
    assert analyst["attempts"] == 1
    assert analysis["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "estimated": False,
    }
    assert analysis["disclaimer"] and analysis["insights"]
    # AND the report shows who wrote the insights and the fallback
    html = report.read_text()
    assert "builtin" in html and "no_credentials" in html
    # AND stderr stays clean without -v (logs go there only with -v or --log-json)
    assert completed.stderr == ""


def test_builtin_run_records_no_fallback(tmp_path: Path) -> None:
    source = tmp_path / "vitals.csv"
    generate_csv(SyntheticSpec(rows=1000, users=8, seed=4), source)
    workspace = tmp_path / "ws"
    completed = subprocess.run(
        [*healthpipe_command(), "run", str(source), "-w", str(workspace), "--json"],
        env=credential_free_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    (outcome,) = json.loads(completed.stdout)["files"]
    analysis = json.loads(
        (workspace / "bucket" / "analyzed" / f"{outcome['dataset_id']}.json").read_text()
    )
    assert analysis["analyst"]["provider"] == "builtin"
    assert analysis["analyst"]["fallback_reason"] is None
    assert analysis["grounding"]["dropped"] == [] and analysis["grounding"]["checked"] > 0
