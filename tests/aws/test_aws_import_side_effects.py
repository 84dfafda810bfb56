"""Importing a handler module creates no AWS client and reads no environment variable."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from healthpipe.lambdas import FUNCTIONS

PROBE = textwrap.dedent(
    """
    import json, os, sys, traceback

    reads, clients = [], []
    Environ = type(os.environ)
    real_getitem, real_iter = Environ.__getitem__, Environ.__iter__

    PLUMBING = ("/os.py", "/_collections_abc.py", "<string>")

    def first_healthpipe_frame():
        # the code that asked (past os.getenv / Mapping.get), if it is healthpipe's
        for frame in reversed(traceback.extract_stack()[:-2]):
            if not frame.filename.endswith(PLUMBING):
                where = f"{frame.filename}:{frame.lineno}"
                return where if "/healthpipe/" in frame.filename else None
        return None

    def spy_getitem(self, key):
        reads.append([key, first_healthpipe_frame()])
        return real_getitem(self, key)

    def spy_iter(self):
        reads.append(["*", first_healthpipe_frame()])
        return real_iter(self)

    Environ.__getitem__, Environ.__iter__ = spy_getitem, spy_iter

    import botocore.client
    real_create = botocore.client.ClientCreator.create_client

    def spy_create(self, service_name, *args, **kwargs):
        clients.append(service_name)
        return real_create(self, service_name, *args, **kwargs)

    botocore.client.ClientCreator.create_client = spy_create

    import healthpipe.lambdas
    import healthpipe.lambdas.ingestor, healthpipe.lambdas.analyzer, healthpipe.lambdas.notifier

    Environ.__getitem__, Environ.__iter__ = real_getitem, real_iter
    print(json.dumps({"reads": reads, "clients": clients}))
    """
)
OURS = ("HEALTHPIPE_", "AWS_", "POWERTOOLS_", "_HANDLER", "LAMBDA_")


def test_handler_import_reads_no_env_and_makes_no_client() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120, check=True
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["clients"] == []
    from_our_code = [read for read in probe["reads"] if read[1] is not None]
    assert from_our_code == []
    configuration = [key for key, _ in probe["reads"] if key.startswith(OURS) or key == "*"]
    assert configuration == []


def test_the_probe_sees_env_reads_and_clients() -> None:
    """The detector itself works: building the ports at first invocation is seen."""
    probe = PROBE.replace(
        "Environ.__getitem__, Environ.__iter__ = real_getitem, real_iter\n",
        "from healthpipe.adapters.aws.clients import make_client\n"
        "make_client('s3')\n"
        "os.environ.get('HEALTHPIPE_BUCKET')\n"
        "Environ.__getitem__, Environ.__iter__ = real_getitem, real_iter\n",
    )
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1"}
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["clients"] == ["s3"]
    assert any(key == "HEALTHPIPE_BUCKET" for key, _ in result["reads"])


HEAVY = (
    "pydantic",
    "pydantic_settings",
    "duckdb",
    "aws_lambda_powertools",
    "boto3",
    "botocore",
    "jinja2",
    "httpx",
    "numpy",
    "matplotlib",
)
IMPORTED = textwrap.dedent(
    """
    import importlib, json, sys
    importlib.import_module(sys.argv[1])
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
    """
)


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_handler_import_loads_no_third_party_module(function: str) -> None:
    """Lambda's init phase imports the handler: the cold-start target (issue 14) is for that
    import. The event models (pydantic), the stages (DuckDB, jinja2, matplotlib), settings,
    Powertools and boto3 load with the first invocation, which needs them."""
    # GIVEN a fresh interpreter WHEN it imports only the function's handler module
    module = FUNCTIONS[function].handler.rsplit(".", 1)[0]
    done = subprocess.run(
        [sys.executable, "-c", IMPORTED, module],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    loaded = set(json.loads(done.stdout.strip().splitlines()[-1]))
    # THEN none of the heavy distributions is loaded yet
    assert sorted(loaded & set(HEAVY)) == []
