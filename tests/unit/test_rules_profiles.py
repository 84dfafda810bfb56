"""Rules as data: the builtin profiles hold the numbers of issue 2, a user's own TOML file
works, and a broken rules file is a ConfigError with a one-line message."""

from __future__ import annotations

from pathlib import Path

import pytest

from healthpipe.constants import REQUIRED_COLUMNS, VITAL_COLUMNS
from healthpipe.dataops.profiles import load_profile
from healthpipe.domain.rules import BUILTIN_PROFILES, bp_reason
from healthpipe.errors import ConfigError


def test_builtin_profiles_are_seed_and_plausible() -> None:
    assert set(BUILTIN_PROFILES) == {"seed", "plausible"}


def test_seed_profile_is_exactly_the_original_rules() -> None:
    seed = load_profile("seed")
    assert seed.name == "seed"
    assert tuple(seed.required) == REQUIRED_COLUMNS
    bounds = {f: (r.min, r.max) for f, r in seed.ranges.items()}
    assert bounds == {
        "heart_rate": (50, 180),
        "spo2": (90, 100),
        "steps": (0, 50000),
        "temp_c": (35.0, 40.0),
        "systolic_bp": (90, 180),
        "diastolic_bp": (60, 120),
    }
    assert not any(r.integer for r in seed.ranges.values())
    assert seed.bp_order == "le" and bp_reason(seed) == "dbp_gt_sbp"
    assert seed.timestamp == "nonempty"
    assert seed.reject_duplicates is True
    assert seed.max_future_hours is None and seed.max_user_id_length is None


def test_plausible_profile_holds_physiological_limits() -> None:
    plausible = load_profile("plausible")
    bounds = {f: (r.min, r.max) for f, r in plausible.ranges.items()}
    assert bounds == {
        "heart_rate": (20, 300),
        "spo2": (50, 100),
        "steps": (0, 100000),
        "temp_c": (30, 44),
        "systolic_bp": (50, 300),
        "diastolic_bp": (20, 200),
    }
    assert [f for f, r in plausible.ranges.items() if r.integer] == ["steps"]
    assert plausible.bp_order == "lt" and bp_reason(plausible) == "dbp_ge_sbp"
    assert plausible.timestamp == "iso8601"
    assert plausible.reject_duplicates is True


def test_plausible_is_the_default_rules_setting() -> None:
    from healthpipe.config import load_settings

    assert load_settings().rules == "plausible"


USER_RULES = """
name = "ward7"
bp_order = "lt"
timestamp = "iso8601"

[ranges]
heart_rate = { min = 30, max = 200 }
spo2 = { min = 70, max = 100 }
steps = { min = 0, max = 1000, integer = true }
temp_c = { min = 33, max = 42 }
systolic_bp = { min = 60, max = 250 }
diastolic_bp = { min = 30, max = 150 }
"""


def test_a_users_own_rules_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "ward7.toml"
    path.write_text(USER_RULES, encoding="utf-8")
    profile = load_profile(str(path))
    assert profile.name == "ward7"
    assert profile.ranges["heart_rate"].max == 200
    assert profile.ranges["steps"].integer
    assert bp_reason(profile) == "dbp_ge_sbp"


def test_a_rules_file_without_a_name_is_named_after_the_file(tmp_path: Path) -> None:
    path = tmp_path / "icu-rules.toml"
    path.write_text(USER_RULES.replace('name = "ward7"', ""), encoding="utf-8")
    assert load_profile(str(path)).name == "icu-rules"


def _ranges(**override: str) -> str:
    lines = {f: f"{f} = {{ min = 0, max = 500 }}" for f in VITAL_COLUMNS}
    lines.update(override)
    return "[ranges]\n" + "\n".join(v for v in lines.values() if v)


BROKEN = {
    "not_toml": "this is = = not toml [",
    "min_above_max": _ranges(heart_rate="heart_rate = { min = 200, max = 100 }"),
    "missing_field": _ranges(spo2=""),
    "unknown_field": _ranges() + "\nglucose = { min = 1, max = 2 }",
    "unknown_key": "colour = 'red'\n" + _ranges(),
    "bad_bp_order": "bp_order = 'ge'\n" + _ranges(),
    "bad_timestamp": "timestamp = 'unix'\n" + _ranges(),
    "no_ranges": "name = 'x'\n",
    "string_bound": _ranges(heart_rate="heart_rate = { min = 'low', max = 100 }"),
    "negative_future": "max_future_hours = -1\n" + _ranges(),
    "drops_required": "required = ['user_id']\n" + _ranges(),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_an_invalid_rules_file_is_a_one_line_config_error(tmp_path: Path, case: str) -> None:
    path = tmp_path / f"{case}.toml"
    path.write_text(BROKEN[case], encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_profile(str(path))
    message = str(caught.value)
    assert message and "\n" not in message
    assert str(path) in message


def test_a_rules_file_that_is_not_utf8_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.toml"
    path.write_bytes("name = 'caf\xe9'\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_profile(str(path))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("name", ["strict", "SEED", "", "nope.toml"])
def test_an_unknown_profile_name_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_profile(name)
    message = str(caught.value)
    assert "\n" not in message
    assert "seed" in message and "plausible" in message


def test_a_directory_is_not_a_rules_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_profile(str(tmp_path))
