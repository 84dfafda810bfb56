"""Settings precedence: flag > HEALTHPIPE_* env > file (healthpipe.toml / --config /
HEALTHPIPE_CONFIG) > default; list parsing; invalid values are a one-line ConfigError and, in
the CLI, exit 2 with one line and no traceback. (conftest chdirs into tmp_path and clears
HEALTHPIPE_* variables.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from healthpipe.cli import app
from healthpipe.config import load_settings
from healthpipe.errors import ConfigError

VITALS = (
    "event_time,user_id,heart_rate,spo2,steps,temp_c,systolic_bp,diastolic_bp\n"
    "2025-09-17T12:00:00Z,u1,70,98,100,36.8,120,80\n"
)


def write_toml(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.rules == "plausible"
    assert settings.workspace == Path("healthpipe-data")
    assert settings.email_to == ["care-team@localhost"]
    assert settings.max_attempts == 3
    assert settings.runtime == "local"


def test_file_over_default(tmp_path: Path) -> None:
    write_toml(tmp_path / "healthpipe.toml", 'rules = "seed"\nmax_attempts = 5\n')
    settings = load_settings()
    assert settings.rules == "seed" and settings.max_attempts == 5


def test_env_over_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(tmp_path / "healthpipe.toml", 'rules = "seed"\nmax_attempts = 5\n')
    monkeypatch.setenv("HEALTHPIPE_RULES", "plausible")
    settings = load_settings()
    assert settings.rules == "plausible"
    assert settings.max_attempts == 5  # still from the file


def test_flag_over_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_toml(tmp_path / "healthpipe.toml", 'rules = "plausible"\n')
    monkeypatch.setenv("HEALTHPIPE_RULES", "plausible")
    assert load_settings({"rules": "seed"}).rules == "seed"


def test_a_flag_left_unset_does_not_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHPIPE_RULES", "seed")
    assert load_settings({"rules": None}).rules == "seed"


def test_explicit_config_file_beats_the_cwd_file(tmp_path: Path) -> None:
    write_toml(tmp_path / "healthpipe.toml", 'rules = "plausible"\n')
    other = write_toml(tmp_path / "other.toml", 'rules = "seed"\n')
    assert load_settings(file=other).rules == "seed"


def test_config_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = write_toml(tmp_path / "elsewhere.toml", 'analyst = "builtin"\ntop_users = 7\n')
    monkeypatch.setenv("HEALTHPIPE_CONFIG", str(other))
    assert load_settings().top_users == 7


def test_email_to_from_env_is_a_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHPIPE_EMAIL_TO", "a@x, b@y")
    assert load_settings().email_to == ["a@x", "b@y"]


def test_email_to_single_and_trailing_comma(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHPIPE_EMAIL_TO", " solo@x ,")
    assert load_settings().email_to == ["solo@x"]


def test_email_to_in_the_file(tmp_path: Path) -> None:
    write_toml(tmp_path / "healthpipe.toml", 'email_to = ["c@z", "d@z"]\n')
    assert load_settings().email_to == ["c@z", "d@z"]
    write_toml(tmp_path / "healthpipe.toml", 'email_to = "e@z,f@z"\n')
    assert load_settings().email_to == ["e@z", "f@z"]


def test_env_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("healthpipe_top_users", "9")
    assert load_settings().top_users == 9


def test_secrets_do_not_print(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHPIPE_SMTP_PASSWORD", "hunter2")
    settings = load_settings()
    assert settings.smtp_password.get_secret_value() == "hunter2"
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HEALTHPIPE_MAX_ATTEMPTS", "abc"),
        ("HEALTHPIPE_MAX_ATTEMPTS", "0"),
        ("HEALTHPIPE_SMTP_PORT", "70000"),
        ("HEALTHPIPE_RUNTIME", "mars"),
        ("HEALTHPIPE_ANALYST", "oracle"),
        ("HEALTHPIPE_DIGEST_ONLY", "perhaps"),
        ("HEALTHPIPE_LLM_PRICES", "{not json"),
    ],
)
def test_invalid_env_values_are_one_line_config_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    "body", ['max_attempts = "many"\n', "smtp_port = -1\n", "rules = = 3\n", "[broken\n"]
)
def test_invalid_files_are_one_line_config_errors(tmp_path: Path, body: str) -> None:
    path = write_toml(tmp_path / "bad.toml", body)
    with pytest.raises(ConfigError) as caught:
        load_settings(file=path)
    assert "\n" not in str(caught.value)


def test_a_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(file=tmp_path / "absent.toml")
    assert "absent.toml" in str(caught.value)


# --- through the CLI ----------------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def rules_used(result: Result, workspace: Path) -> str:
    assert result.exit_code == 0, result.output
    (item,) = json.loads(result.stdout)["files"]
    manifest = json.loads(
        (workspace / "bucket" / "manifests" / f"{item['dataset_id']}.json").read_text()
    )
    return str(manifest["rules_profile"])


@pytest.mark.parametrize(
    ("file_rules", "env_rules", "flag_rules", "expected"),
    [
        (None, None, None, "plausible"),
        ("seed", None, None, "seed"),
        ("seed", "plausible", None, "plausible"),
        ("plausible", "plausible", "seed", "seed"),
        (None, "seed", None, "seed"),
    ],
)
def test_cli_rules_precedence(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_rules: str | None,
    env_rules: str | None,
    flag_rules: str | None,
    expected: str,
) -> None:
    if file_rules:
        write_toml(tmp_path / "healthpipe.toml", f'rules = "{file_rules}"\n')
    if env_rules:
        monkeypatch.setenv("HEALTHPIPE_RULES", env_rules)
    source = tmp_path / "v.csv"
    source.write_text(VITALS, encoding="utf-8")
    workspace = tmp_path / "ws"
    args = ["run", str(source), "--json", "-w", str(workspace)]
    if flag_rules:
        args += ["--rules", flag_rules]
    assert rules_used(invoke(*args), workspace) == expected


def test_cli_workspace_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "v.csv"
    source.write_text(VITALS, encoding="utf-8")
    config = write_toml(tmp_path / "cfg.toml", f'workspace = "{tmp_path / "from-file"}"\n')
    assert invoke("run", str(source), "--json", "--config", str(config)).exit_code == 0
    assert (tmp_path / "from-file" / "healthpipe.db").is_file()

    monkeypatch.setenv("HEALTHPIPE_WORKSPACE", str(tmp_path / "from-env"))
    assert invoke("run", str(source), "--json", "--config", str(config)).exit_code == 0
    assert (tmp_path / "from-env" / "healthpipe.db").is_file()

    flag = tmp_path / "from-flag"
    result = invoke("run", str(source), "--json", "--config", str(config), "-w", str(flag))
    assert result.exit_code == 0
    assert (flag / "healthpipe.db").is_file()


@pytest.mark.parametrize(
    ("env", "file_body"),
    [
        ({"HEALTHPIPE_MAX_ATTEMPTS": "lots"}, None),
        ({"HEALTHPIPE_RUNTIME": "mars"}, None),
        ({}, "max_attempts = 0\n"),
        ({}, "this is not toml ==\n"),
    ],
)
def test_cli_invalid_settings_exit_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], file_body: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    args = ["run", str(tmp_path / "v.csv"), "--json", "-w", str(tmp_path / "ws")]
    (tmp_path / "v.csv").write_text(VITALS, encoding="utf-8")
    if file_body is not None:
        args += ["--config", str(write_toml(tmp_path / "bad.toml", file_body))]
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert result.stdout.strip() == ""


def test_cli_missing_config_file_exit_2(tmp_path: Path) -> None:
    result = invoke("status", "--config", str(tmp_path / "nope.toml"))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "nope.toml" in lines[0]


def test_a_misspelt_key_in_the_file_is_an_error_naming_the_closest_key(tmp_path: Path) -> None:
    # GIVEN a typo in healthpipe.toml (it used to be ignored silently)
    write_toml(tmp_path / "healthpipe.toml", 'workspce = "/data/hp"\n')
    # THEN loading the settings fails and suggests the valid name
    expected = r"unknown setting 'workspce' \(did you mean workspace\?\)"
    with pytest.raises(ConfigError, match=expected):
        load_settings()


def test_a_misspelt_key_in_the_file_is_one_line_and_exit_2_in_the_cli(tmp_path: Path) -> None:
    write_toml(tmp_path / "healthpipe.toml", 'workspce = "/data/hp"\n')
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean workspace?" in lines[0], result.stderr


@pytest.mark.parametrize("key", ["smtp_password", "openai_api_key", "pseudonym_secret"])
def test_a_secret_in_the_file_is_an_error_naming_the_environment_variable(
    tmp_path: Path, key: str
) -> None:
    # GIVEN a secret written into healthpipe.toml (the docs say: environment only)
    write_toml(tmp_path / "healthpipe.toml", f'{key} = "hunter2"\n')
    # THEN it is refused, naming the variable to use, and the value is not echoed
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert f"HEALTHPIPE_{key.upper()}" in str(info.value)
    assert "hunter2" not in str(info.value)
