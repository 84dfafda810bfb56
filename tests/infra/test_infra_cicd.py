"""The delivery pipeline: CodePipeline source (CodeStar connection) -> CI build -> plan build
(the saved plan is an artifact) -> manual approval showing the plan summary -> apply of
exactly that plan; the buildspecs run what the issue asks and agree with the code on the
package file names; state is remote with locking; the example deploys the packages that
`healthpipe package` writes."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest
import yaml
from infra_terraform import CICD, TERRAFORM, Module, attr, load_module, squash

from healthpipe.lambdas import FUNCTIONS
from healthpipe.packaging import PackageSpec, zip_name


@pytest.fixture(scope="module")
def cicd() -> Module:
    return load_module(CICD)


def commands(path: Path) -> list[str]:
    spec = yaml.safe_load(path.read_text())
    assert spec["version"] == 0.2
    return [cmd for phase in spec["phases"].values() for cmd in phase.get("commands", [])]


def test_the_pipeline_runs_source_ci_plan_approval_apply_in_that_order(cicd: Module) -> None:
    pipeline = cicd.resource("aws_codepipeline", "this")
    stages = pipeline["stage"]
    assert [attr(s, "name") for s in stages] == ["Source", "CI", "Plan", "Approve", "Deploy"]
    source = attr(stages[0], "action")
    assert attr(source, "provider") == "CodeStarSourceConnection"
    assert attr(source, "configuration")["ConnectionArn"] == "${local.connection_arn}"
    ci = attr(stages[1], "action")
    assert attr(ci, "provider") == "CodeBuild"
    assert attr(ci, "output_artifacts") == ["package"]
    # the plan build saves the plan as an artifact and exports its summary and hash
    plan = attr(stages[2], "action")
    assert attr(plan, "configuration")["ProjectName"] == "${aws_codebuild_project.plan.name}"
    assert attr(plan, "input_artifacts") == ["source", "package"]
    assert attr(plan, "output_artifacts") == ["plan"]
    assert attr(plan, "namespace") == "Plan"
    # the approver is shown the plan's summary and hash
    approve = attr(stages[3], "action")
    assert attr(approve, "provider") == "Manual"
    custom = attr(approve, "configuration")["CustomData"]
    assert "#{Plan.PLAN_SUMMARY}" in custom and "#{Plan.PLAN_SHA256}" in custom
    # the apply build gets that saved plan and the hash the approver saw
    deploy = attr(stages[4], "action")
    assert attr(deploy, "input_artifacts") == ["source", "package", "plan"]
    assert attr(deploy, "configuration")["ProjectName"] == "${aws_codebuild_project.deploy.name}"
    env = attr(deploy, "configuration")["EnvironmentVariables"]
    assert "APPROVED_PLAN_SHA256" in env and "#{Plan.PLAN_SHA256}" in env
    store = attr(pipeline, "artifact_store")
    assert attr(attr(store, "encryption_key"), "type") == "KMS"


def test_the_plan_build_saves_the_plan_and_exports_its_summary_and_never_applies(
    cicd: Module,
) -> None:
    path = CICD / "buildspec-plan.yml"
    spec = yaml.safe_load(path.read_text())
    plan = " ; ".join(commands(path))
    assert "terraform plan -input=false -lock-timeout=5m -out=tfplan" in plan
    assert "terraform show -no-color tfplan > plan.txt" in plan
    assert "sha256sum tfplan" in plan
    assert "terraform apply" not in plan
    assert spec["env"]["exported-variables"] == ["PLAN_SUMMARY", "PLAN_SHA256"]
    assert set(spec["artifacts"]["files"]) == {"tfplan", "tfplan.sha256", "plan.txt"}
    assert spec["artifacts"]["base-directory"] == "$TF_ROOT"
    project = cicd.resource("aws_codebuild_project", "plan")
    assert attr(attr(project, "source"), "buildspec") == "infra/terraform/cicd/buildspec-plan.yml"


def test_the_apply_build_applies_exactly_the_approved_saved_plan(cicd: Module) -> None:
    apply = commands(CICD / "buildspec-apply.yml")
    joined = " ; ".join(apply)
    assert not any(cmd.startswith("terraform plan") for cmd in apply)
    assert "terraform apply -input=false -lock-timeout=5m tfplan" in apply
    check = 'echo "${APPROVED_PLAN_SHA256}  ${CODEBUILD_SRC_DIR_plan}/tfplan" | sha256sum -c -'
    assert check in apply
    # the hash is checked before the plan is copied in and applied
    assert apply.index(check) < apply.index('cp "${CODEBUILD_SRC_DIR_plan}/tfplan" tfplan')
    assert apply.index(check) < apply.index("terraform apply -input=false -lock-timeout=5m tfplan")
    assert 'test -n "$APPROVED_PLAN_SHA256"' in joined
    project = cicd.resource("aws_codebuild_project", "deploy")
    assert attr(attr(project, "source"), "buildspec") == "infra/terraform/cicd/buildspec-apply.yml"
    assert not (CICD / "buildspec-deploy.yml").exists()


def test_plan_and_apply_builds_see_the_same_inputs(cicd: Module) -> None:
    for name in ("plan", "deploy"):
        project = cicd.resource("aws_codebuild_project", name)
        dynamic = attr(attr(project, "environment"), "dynamic")["environment_variable"]
        assert attr(dynamic, "for_each") == "${local.terraform_environment}"
    env = cicd.local("terraform_environment")
    # the packages sit in the same fixed folder in both builds (the plan records the path)
    assert env["TF_VAR_lambda_package_dir"] == "${local.package_dir}"
    assert cicd.local("package_dir").startswith("/")
    for path in (CICD / "buildspec-plan.yml", CICD / "buildspec-apply.yml"):
        joined = " ; ".join(commands(path))
        assert 'cp "${CODEBUILD_SRC_DIR_package}"/dist/healthpipe-*.zip "$PACKAGE_DIR"/' in joined
        assert "test -f .terraform.lock.hcl" in joined
        assert "use_lockfile=true" in joined and "sha256sum -c" in joined


def test_the_ci_build_installs_tests_lints_scans_and_packages() -> None:
    ci = " ; ".join(commands(CICD / "buildspec-ci.yml"))
    assert "make setup" in ci
    assert "make lint typecheck" in ci  # ruff check + ruff format --check + mypy
    assert "make asl" in ci  # the state machine definition through asl-validator (npm)
    assert "pytest" in ci
    assert "checkov -d infra/terraform" in ci
    assert "healthpipe package" in ci
    makefile = (TERRAFORM.parents[1] / "Makefile").read_text()
    assert "ruff check" in makefile


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_the_pipeline_looks_for_the_zips_healthpipe_package_writes(arch: str, cicd: Module) -> None:
    spec = PackageSpec(arch=arch, python_version="3.12")  # type: ignore[arg-type]
    files = squash(cicd.local("package_files"))
    listed = ",".join(f"'{function}'" for function in FUNCTIONS)
    assert files == (
        f'${{[forfin[{listed}]:"dist/healthpipe-${{f}}-${{var.lambda_architecture}}-py3.12.zip"]}}'
    )
    for function in FUNCTIONS:
        assert f"dist/{zip_name(spec, function)}" == (
            f"dist/healthpipe-{function}-{arch}-py3.12.zip"
        )
    ci = " ; ".join(commands(CICD / "buildspec-ci.yml"))
    assert "--python-version 3.12" in ci and "--out dist/" in ci
    assert '--arch "${LAMBDA_ARCH:-arm64}"' in ci


def test_the_module_deploys_the_zips_healthpipe_package_writes() -> None:
    module = load_module(TERRAFORM)
    template = module.local("packages")
    assert squash(template) == squash(
        '${{for f in local.functions : f => "${var.lambda_package_dir}/healthpipe-${f}-'
        '${var.architecture}-py${local.python_version}.zip"}}'
    )
    spec = PackageSpec(arch="arm64", python_version=module.local("python_version"))
    for function in FUNCTIONS:
        rendered = f"healthpipe-{function}-arm64-py{module.local('python_version')}.zip"
        assert zip_name(spec, function) == rendered


def test_the_example_defaults_to_the_repository_s_dist_folder() -> None:
    example = load_module(TERRAFORM / "examples" / "minimal")
    default = attr(example.variables["lambda_package_dir"], "default")
    # relative to the example directory, the path is the repository's dist/
    resolved = (TERRAFORM / "examples" / "minimal" / default).resolve()
    assert resolved == (TERRAFORM.parents[1] / "dist").resolve()
    assert attr(example.variables["architecture"], "default") == "arm64"


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
                assert sid in {"UnscopedReads", "AppEventSourceMappings"}, sid
                if sid == "AppEventSourceMappings":  # limited to <prefix>-* functions
                    condition = attr(statement, "condition")
                    assert attr(condition, "variable") == "lambda:FunctionArn"
                    assert "function:${local.p}-*" in attr(condition, "values")[0]
                continue
            assert (
                "${local.p}" in resource
                or "var.state" in resource
                or resource == "${local.state_objects}"
                or "build" in resource
                or "artifact" in resource
                or "${local.glue_database}" in resource
                or resource.endswith((":key/*", ":identity/*", "event-bus/default", ":catalog"))
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


def test_the_deploy_builds_set_only_variables_the_example_declares(cicd: Module) -> None:
    example = load_module(TERRAFORM / "examples" / "minimal")
    names = list(cicd.local("terraform_environment"))
    tf_vars = {n.removeprefix("TF_VAR_") for n in names if n.startswith("TF_VAR_")}
    assert tf_vars <= set(example.variables)
    required = {n for n, v in example.variables.items() if "default" not in v}
    assert required <= tf_vars
