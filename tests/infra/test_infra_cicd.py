"""The delivery pipeline: CodePipeline source (CodeStar connection) -> CI build -> manual
approval -> deploy build; the buildspecs run what the issue asks and agree with the code on
the package file name; state is remote with locking; the example deploys the package that
`healthpipe package` writes."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest
import yaml
from infra_terraform import CICD, TERRAFORM, Module, attr, load_module

from healthpipe.packaging import PackageSpec, zip_name


@pytest.fixture(scope="module")
def cicd() -> Module:
    return load_module(CICD)


def commands(path: Path) -> list[str]:
    spec = yaml.safe_load(path.read_text())
    assert spec["version"] == 0.2
    return [cmd for phase in spec["phases"].values() for cmd in phase.get("commands", [])]


def test_the_pipeline_runs_source_ci_approval_deploy_in_that_order(cicd: Module) -> None:
    pipeline = cicd.resource("aws_codepipeline", "this")
    stages = pipeline["stage"]
    assert [attr(s, "name") for s in stages] == ["Source", "CI", "Approve", "Deploy"]
    source = attr(stages[0], "action")
    assert attr(source, "provider") == "CodeStarSourceConnection"
    assert attr(source, "configuration")["ConnectionArn"] == "${local.connection_arn}"
    ci = attr(stages[1], "action")
    assert attr(ci, "provider") == "CodeBuild"
    assert attr(ci, "output_artifacts") == ["package"]
    assert attr(attr(stages[2], "action"), "provider") == "Manual"
    deploy = attr(stages[3], "action")
    assert attr(deploy, "input_artifacts") == ["source", "package"]
    assert attr(deploy, "configuration")["ProjectName"] == "${aws_codebuild_project.deploy.name}"
    store = attr(pipeline, "artifact_store")
    assert attr(attr(store, "encryption_key"), "type") == "KMS"


def test_the_ci_build_installs_tests_lints_scans_and_packages() -> None:
    ci = " ; ".join(commands(CICD / "buildspec-ci.yml"))
    assert "make setup" in ci
    assert "make lint typecheck" in ci  # ruff check + ruff format --check + mypy
    assert "pytest" in ci
    assert "checkov -d infra/terraform" in ci
    assert "healthpipe package" in ci
    makefile = (TERRAFORM.parents[1] / "Makefile").read_text()
    assert "ruff check" in makefile


def test_the_deploy_build_applies_the_example_with_the_package_and_locked_remote_state(
    cicd: Module,
) -> None:
    deploy = " ; ".join(commands(CICD / "buildspec-deploy.yml"))
    for step in ("terraform init", "terraform plan", "terraform apply", "use_lockfile=true"):
        assert step in deploy
    assert "sha256sum -c" in deploy  # the terraform binary is verified
    assert "TF_VAR_lambda_package" in deploy and "CODEBUILD_SRC_DIR_package" in deploy
    root = cicd.local("app_deploy_root")
    assert (TERRAFORM.parents[1] / root / "main.tf").is_file()


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_the_pipeline_looks_for_the_zip_healthpipe_package_writes(arch: str, cicd: Module) -> None:
    expected = zip_name(PackageSpec(arch=arch, python_version="3.12"))  # type: ignore[arg-type]
    pattern = cicd.local("package_file")
    assert pattern.replace("${var.lambda_architecture}", arch) == f"dist/{expected}"
    ci = " ; ".join(commands(CICD / "buildspec-ci.yml"))
    assert "--python-version 3.12" in ci and "--out dist/" in ci


def test_the_example_defaults_to_the_default_package() -> None:
    example = load_module(TERRAFORM / "examples" / "minimal")
    default = attr(example.variables["lambda_package"], "default")
    assert Path(default).name == zip_name(PackageSpec())
    # relative to the example directory, the path lands in the repository's dist/
    resolved = (TERRAFORM / "examples" / "minimal" / default).resolve()
    assert resolved.parent == (TERRAFORM.parents[1] / "dist").resolve()


def test_the_ci_build_role_can_touch_nothing_but_its_logs_and_artifacts(cicd: Module) -> None:
    document = cicd.data["aws_iam_policy_document"]["ci"]
    actions = {a for s in document["statement"] for a in attr(s, "actions")}
    assert actions == {
        "logs:CreateLogStream",
        "logs:PutLogEvents",
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "kms:Encrypt",
        "kms:DescribeKey",
    }


def test_the_deploy_role_is_limited_to_prefixed_resources(cicd: Module) -> None:
    document = cicd.data["aws_iam_policy_document"]["deploy"]
    for statement in document["statement"]:
        sid = attr(statement, "sid")
        resources = attr(statement, "resources")
        for resource in [resources] if isinstance(resources, str) else resources:
            if resource == "*":
                assert sid == "UnscopedReads"
                continue
            assert (
                "${local.p}" in resource
                or "var.state" in resource
                or resource == "${local.state_objects}"
                or "build" in resource
                or "artifact" in resource
                or resource.endswith((":key/*", ":identity/*", "event-bus/default"))
            ), (sid, resource)
    passrole = next(s for s in document["statement"] if attr(s, "sid") == "PassAppRoles")
    condition = attr(passrole, "condition")
    assert attr(condition, "variable") == "iam:PassedToService"


def test_state_uses_s3_native_locking_and_a_bootstrap_creates_the_bucket() -> None:
    versions = (CICD / "versions.tf").read_text()
    assert "use_lockfile = true" in versions and "encrypt      = true" in versions
    bootstrap = load_module(CICD / "bootstrap")
    assert "state" in bootstrap.resources["aws_s3_bucket"]
    versioning = bootstrap.resource("aws_s3_bucket_versioning", "state")
    assert attr(attr(versioning, "versioning_configuration"), "status") == "Enabled"


def test_the_example_passes_only_inputs_the_module_has_and_all_it_requires() -> None:
    example = load_module(TERRAFORM / "examples" / "minimal")
    root = load_module(TERRAFORM)
    with (TERRAFORM / "examples" / "minimal" / "main.tf").open() as handle:
        call = hcl2.load(handle)["module"][0]["healthpipe"]
    inputs = {k for k in call if not k.startswith("__") and k != "source"}
    assert attr(call, "source") == "../../"
    assert inputs <= set(root.variables)
    required = {name for name, v in root.variables.items() if "default" not in v}
    assert required <= inputs
    for name in inputs:
        assert attr(call, name) == f"${{var.{name}}}"
        assert name in example.variables


def test_the_deploy_build_sets_only_variables_the_example_declares(cicd: Module) -> None:
    example = load_module(TERRAFORM / "examples" / "minimal")
    project = cicd.resource("aws_codebuild_project", "deploy")
    names = [attr(v, "name") for v in attr(project, "environment")["environment_variable"]]
    tf_vars = {n.removeprefix("TF_VAR_") for n in names if n.startswith("TF_VAR_")}
    tf_vars.add("lambda_package")  # exported by buildspec-deploy.yml from the CI artifact
    assert tf_vars <= set(example.variables)
    required = {n for n, v in example.variables.items() if "default" not in v}
    assert required <= tf_vars
