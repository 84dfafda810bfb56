"""Names and regions: every bucket name of every module stays within S3's 63 characters
(with the longest prefix the variables accept and the longest region names), and the
Bedrock model the analyzer calls fits the region (a cross-region inference profile of the
region's geography by default; IAM for the profile and the foundation model in the profile's
regions)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from iam_policy import Deployment, bedrock_model_id, bedrock_resources, function_policies
from infra_terraform import CICD, TERRAFORM, Module, attr, load_module, squash

S3_MAX = 63
LONGEST_PREFIX = "a" * 24  # name_prefix validation: 3-24 characters
LONG_REGIONS = ("ap-southeast-4", "ap-northeast-3", "us-gov-west-1", "eu-central-2")
ACCOUNT = "123456789012"
TRUNCATE = re.compile(
    r'^\$\{length\((?P<n>[\w.]+)\)<=63\?(?P=n):"\$\{substr\((?P=n),0,54\)\}-'
    r'\$\{substr\(sha1\((?P=n)\),0,8\)\}"\}$'
)
MAP_TRUNCATE = (
    '${{fork,ninlocal.bucket_names_full:k=>length(n)<=63?n:"${substr(n,0,54)}-'
    '${substr(sha1(n),0,8)}"}}'
)


def truncated(name: str) -> str:
    """What the Terraform expressions compute (checked against their text below)."""
    if len(name) <= S3_MAX:
        return name
    return f"{name[:54]}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def evaluate(module: Module, expression: Any, values: dict[str, str]) -> str:
    """A bucket name expression: a template of known references, a `local.` reference, or
    the truncation expressions; anything else fails the test."""
    text = str(expression)
    squashed = squash(text)
    whole = re.fullmatch(r"\$\{local\.([\w]+)(?:\.(\w+))?\}", text)
    if whole:
        value = module.local(whole.group(1))
        if whole.group(2):
            if whole.group(1) == "bucket_names":
                assert squash(value) == MAP_TRUNCATE
                full = module.local("bucket_names_full")[whole.group(2)]
                return truncated(evaluate(module, full, values))
            value = value[whole.group(2)]
        return evaluate(module, value, values)
    match = TRUNCATE.match(squashed)
    if match:
        reference = match.group("n")
        assert reference.startswith("local."), reference
        return truncated(evaluate(module, "${" + reference + "}", values))

    def one(ref: re.Match[str]) -> str:
        name = ref.group(1)
        assert name in values, f"unknown reference in a bucket name: {name} ({text})"
        return values[name]

    return re.sub(r"\$\{([^${}]+)\}", one, text)


def bucket_names(directory: Any, region: str) -> dict[str, str]:
    module = load_module(directory)
    values = {
        "var.name_prefix": LONGEST_PREFIX,
        "local.account_id": ACCOUNT,
        "local.region": region,
        "var.region": region,
    }
    return {
        name: evaluate(module, attr(bucket, "bucket"), values)
        for name, bucket in module.resources["aws_s3_bucket"].items()
    }


MODULES = {"module": TERRAFORM, "cicd": CICD, "bootstrap": CICD / "bootstrap"}


@pytest.mark.parametrize("where", sorted(MODULES))
@pytest.mark.parametrize("region", LONG_REGIONS)
def test_every_bucket_name_fits_s3_s_63_characters(where: str, region: str) -> None:
    names = bucket_names(MODULES[where], region)
    assert names
    for resource, name in names.items():
        assert len(name) <= S3_MAX, (where, resource, name, len(name))
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*[a-z0-9]", name), name
        assert name.startswith(LONGEST_PREFIX + "-")  # the deploy role's <prefix>-* scope
    assert len(set(names.values())) == len(names)  # truncation keeps them apart


def test_short_names_are_kept_as_they_are() -> None:
    module = load_module()
    values = {"var.name_prefix": "hp", "local.account_id": ACCOUNT, "local.region": "us-east-1"}
    name = evaluate(module, attr(module.resource("aws_s3_bucket", "data"), "bucket"), values)
    assert name == f"hp-data-{ACCOUNT}-us-east-1"


# --- Bedrock model and region ---------------------------------------------------------------
@pytest.fixture(scope="module")
def module() -> Module:
    return load_module()


def test_the_bedrock_locals_are_the_ones_the_resolver_mirrors(module: Module) -> None:
    assert squash(module.local("bedrock_model_id")) == squash(
        '${var.bedrock_model_id != "" ? var.bedrock_model_id : '
        '"${local.bedrock_geo}.amazon.nova-lite-v1:0"}'
    )
    geo = squash(module.local("bedrock_geo"))
    for start, name in (("us-gov-", "us-gov"), ("us-", "us"), ("eu-", "eu"), ("ap-", "apac")):
        assert f'startswith(local.bedrock_region,"{start}")?"{name}"' in geo
    resources = squash(module.local("bedrock_resources"))
    assert "inference-profile/${local.bedrock_model_id}" in resources
    assert (
        "[forglobinlocal.bedrock_profile_regions[local.bedrock_geo_prefix]:"
        '"arn:${local.partition}:bedrock:${glob}::foundation-model/${local.bedrock_model}"]'
        in resources
    )
    assert module.local("setting_values")["bedrock_model_id"] == "${local.bedrock_model_id}"


@pytest.mark.parametrize(
    ("region", "profile"),
    [
        ("us-east-1", "us.amazon.nova-lite-v1:0"),
        ("us-west-2", "us.amazon.nova-lite-v1:0"),
        ("eu-west-1", "eu.amazon.nova-lite-v1:0"),
        ("ap-northeast-1", "apac.amazon.nova-lite-v1:0"),
        ("us-gov-west-1", "us-gov.amazon.nova-lite-v1:0"),
    ],
)
def test_the_default_model_is_the_inference_profile_of_the_region_s_geography(
    region: str, profile: str, module: Module
) -> None:
    deployment = Deployment(region=region)
    assert bedrock_model_id(module, deployment) == profile
    resources = bedrock_resources(module, deployment)
    geo = profile.split(".")[0]
    assert resources[0] == f"arn:aws:bedrock:{region}:{ACCOUNT}:inference-profile/{profile}"
    assert resources[1:] == [
        f"arn:aws:bedrock:{glob}::foundation-model/amazon.nova-lite-v1:0"
        for glob in module.local("bedrock_profile_regions")[geo]
    ]


@pytest.mark.parametrize("prefix", ["jp", "au", "apac", "eu", "us", "global", "ca", "us-gov"])
def test_every_profile_prefix_the_variable_accepts_gets_profile_and_model_grants(
    prefix: str, module: Module
) -> None:
    model = "anthropic.claude-sonnet-4-20250514-v1:0"
    deployment = Deployment(region="ap-northeast-1", bedrock_model_id=f"{prefix}.{model}")
    [invoke] = [
        s
        for s in function_policies(module, deployment)["analyzer"]
        if s["Sid"] == "InvokeAnalystModel"
    ]
    assert invoke["Resource"][0].endswith(f":inference-profile/{prefix}.{model}")
    assert invoke["Resource"][1:] and all(
        r.endswith(f"::foundation-model/{model}") for r in invoke["Resource"][1:]
    )
    validation = str(attr(attr(module.variables["bedrock_model_id"], "validation"), "condition"))
    assert re.search(rf"[(|]{re.escape(prefix)}[|)]", validation), validation


def test_a_profile_of_another_geography_or_a_bare_profile_only_model_is_refused_at_plan(
    module: Module,
) -> None:
    function = module.resource("aws_lambda_function", "this")
    conditions = [squash(attr(p, "condition")) for p in attr(function, "lifecycle")["precondition"]]
    assert any("local.bedrock_profile_fits_region" in c for c in conditions)
    assert any("local.bedrock_model_fits_region" in c for c in conditions)
    fits = squash(module.local("bedrock_model_fits_region"))
    assert "local.bedrock_on_demand_regions" in fits and "local.bedrock_region" in fits
    on_demand = module.local("bedrock_on_demand_regions")
    assert on_demand["amazon.nova-lite-v1:0"] == ["us-east-1"]
    profile_fits = squash(module.local("bedrock_profile_fits_region"))
    assert "local.bedrock_geo_prefix==local.bedrock_geo" in profile_fits
