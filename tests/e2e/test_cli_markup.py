"""User text (paths, reasons) is printed as text, never read as Rich markup."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from healthpipe.cli import app


def test_a_path_that_looks_like_markup_is_printed_verbatim(tmp_path: Path) -> None:
    # GIVEN a path holding a Rich closing tag, which would raise MarkupError as markup
    missing = tmp_path / "exports[/bold]" / "vitals.csv"
    # WHEN it is run
    result = CliRunner().invoke(app, ["run", str(missing), "-w", str(tmp_path / "ws")])
    # THEN it is an unusable input (exit 2) named verbatim, with no traceback
    assert result.exit_code == 2, result.output
    assert f"no such file: {missing}" in result.output.replace("\n", "")
    assert "Traceback" not in result.output
