"""The local runtime never pseudonymises with an empty key."""

from __future__ import annotations

import stat
from pathlib import Path

from healthpipe.bootstrap import PSEUDONYM_KEY_FILE, build_local
from healthpipe.config import load_settings


def test_a_workspace_key_is_created_once_and_kept_private(tmp_path: Path) -> None:
    # GIVEN no pseudonym_secret in the settings
    settings = load_settings({"workspace": tmp_path / "ws"})
    assert settings.pseudonym_secret.get_secret_value() == ""
    # WHEN the local runtime is built twice
    first = build_local(settings)
    second = build_local(settings)
    try:
        key = first.ports.analyze_settings.pseudonym_secret
        # THEN both use the same random key, stored readable by the owner only
        assert len(key) == 64
        assert second.ports.notify_settings.pseudonym_secret == key
        path = tmp_path / "ws" / PSEUDONYM_KEY_FILE
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        first.close()
        second.close()


def test_a_configured_secret_wins(tmp_path: Path) -> None:
    settings = load_settings({"workspace": tmp_path / "ws", "pseudonym_secret": "s3cret"})
    runtime = build_local(settings)
    try:
        assert runtime.ports.analyze_settings.pseudonym_secret == "s3cret"
        assert not (tmp_path / "ws" / PSEUDONYM_KEY_FILE).exists()
    finally:
        runtime.close()
