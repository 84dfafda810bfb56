"""Every .tf file parses (python-hcl2) and follows the `terraform fmt` conventions that
`infra_terraform.fmt_problems` checks (there is no terraform binary on these machines; see its
docstring for exactly what is and is not checked). Variables and outputs are documented."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest
from infra_terraform import CICD, TERRAFORM, attr, fmt_problems, load_module, tf_files

FILES = tf_files()
MODULE_DIRS = sorted({p.parent for p in FILES})


def test_the_module_the_example_and_the_pipeline_are_all_there() -> None:
    names = {p.relative_to(TERRAFORM).as_posix() for p in FILES}
    for required in (
        "main.tf",
        "variables.tf",
        "outputs.tf",
        "versions.tf",
        "examples/minimal/main.tf",
        "cicd/main.tf",
    ):
        assert required in names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(TERRAFORM).as_posix())
def test_parses_with_python_hcl2(path: Path) -> None:
    with path.open() as handle:
        parsed = hcl2.load(handle)
    assert parsed, f"{path} is empty"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(TERRAFORM).as_posix())
def test_follows_terraform_fmt_conventions(path: Path) -> None:
    assert fmt_problems(path) == []


def test_the_fmt_checker_catches_what_it_claims_to(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tf"
    bad.write_text(
        'resource "a" "b" {\n'
        '   name = "x"\n'  # 3-space indent
        '  long_name = "y"  \n'  # trailing whitespace, misaligned '='
        "\tc = 1\n"
        "}"  # no final newline
    )
    problems = "\n".join(fmt_problems(bad))
    assert "line 2: indented 3, fmt indents 2" in problems
    assert "line 3: trailing whitespace" in problems
    assert "line 2: '=' at column 8, fmt aligns it at 12" in problems
    assert "tab characters" in problems
    assert "no newline at end of file" in problems

    good = tmp_path / "good.tf"
    good.write_text(
        'resource "a" "b" {\n'
        '  name      = "x"\n'
        '  long_name = "${var.p}-{y}"\n'
        "  tags = merge(var.tags, {\n"
        '    "k" = "v"\n'
        "  })\n"
        "}\n"
    )
    assert fmt_problems(good) == []


@pytest.mark.parametrize(
    "directory", MODULE_DIRS, ids=lambda p: p.relative_to(TERRAFORM).as_posix() or "."
)
def test_every_variable_is_typed_and_described_and_every_output_described(directory: Path) -> None:
    module = load_module(directory)
    for name, variable in module.variables.items():
        assert attr(variable, "type"), f"variable {name} has no type"
        assert len(str(attr(variable, "description", ""))) > 10, (
            f"variable {name} has no description"
        )
        assert "any" not in str(attr(variable, "type")), f"variable {name} is typed `any`"
    for name, output in module.outputs.items():
        assert len(str(attr(output, "description", ""))) > 5, f"output {name} has no description"


def test_free_form_inputs_of_the_module_are_validated() -> None:
    variables = load_module(TERRAFORM).variables
    for name in (
        "name_prefix",
        "region",
        "sender_email",
        "recipient_emails",
        "alarm_email",
        "bedrock_model_id",
        "analyst",
        "rules_profile",
        "log_retention_days",
        "architecture",
        "lambda_memory_mb",
        "lambda_timeout_seconds",
        "lambda_ephemeral_storage_mb",
        "lambda_reserved_concurrency",
        "analyzer_max_concurrency",
        "lambda_package_dir",
    ):
        assert "validation" in variables[name], f"variable {name} is not validated"
    # empty: the Nova Lite inference profile of the region's geography (iam.tf)
    assert attr(variables["bedrock_model_id"], "default") == ""


def test_the_pipeline_keeps_its_state_remotely_with_locking() -> None:
    text = (CICD / "versions.tf").read_text()
    assert 'backend "s3"' in text
    assert "use_lockfile = true" in text
