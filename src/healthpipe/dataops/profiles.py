"""Rules profiles from files: a builtin one (`domain/profiles/<name>.toml`) or a user's TOML.

Reading is here; what a profile means and how its text is checked is `domain/rules.py`.
"""

from __future__ import annotations

from pathlib import Path

from healthpipe.domain.rules import BUILTIN_PROFILES, RuleProfile, parse_profile
from healthpipe.errors import ConfigError

PROFILES_DIR = Path(__file__).parent.parent / "domain" / "profiles"


def load_profile(name_or_path: str) -> RuleProfile:
    """A builtin profile by name (`seed`, `plausible`) or a user's TOML file by path."""
    path = Path(name_or_path)
    choices = f"profiles: {', '.join(BUILTIN_PROFILES)}, or a path to a TOML file"
    if name_or_path in BUILTIN_PROFILES:
        path = PROFILES_DIR / f"{name_or_path}.toml"
    elif name_or_path.strip() and (
        path.suffix.lower() == ".toml" or len(path.parts) > 1 or path.exists()
    ):
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "not found"
            raise ConfigError(f"rules file {what}: {name_or_path} ({choices})")
    else:
        raise ConfigError(
            f"unknown rules profile {name_or_path!r}: use one of "
            f"{', '.join(BUILTIN_PROFILES)} or a path to a TOML file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc}") from exc
    return parse_profile(text, name=path.stem, source=str(path))
