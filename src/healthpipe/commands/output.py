"""What every `healthpipe` command shares: the consoles, exit codes and one-line errors.

Exit codes: 0 every file processed or skipped; 2 a file is unusable or the command's input
(arguments, settings, rules, credentials, an unwritable output) is wrong; 1 an internal failure.
An error is ONE line on stderr (`error: ...`), with no traceback and no log line before it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperArgument, TyperCommand, TyperGroup

try:  # Typer >= 0.20 carries its own copy of Click
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older Typer on the real Click
    from click.exceptions import ClickException  # type: ignore[assignment]

from healthpipe.config import Settings, load_settings
from healthpipe.errors import ConfigError, CredentialsError, HealthpipeError
from healthpipe.interrupts import EXIT_INTERRUPTED

EXIT_OK, EXIT_INTERNAL, EXIT_UNUSABLE = 0, 1, 2
INTERRUPTED = "interrupted (Ctrl-C): run the same command again to finish; nothing is lost"

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int) -> typer.Exit:
    """Print `error: message` as one line on stderr; the caller raises the returned Exit."""
    err.print(f"[bold red]error:[/] {escape(one_line(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def one_line(text: str) -> str:
    return " ".join(text.split())


@contextmanager
def cli_errors(verbose: bool) -> Iterator[None]:
    """One clear line and a documented exit code instead of a traceback."""
    try:
        yield
    except (typer.Exit, typer.Abort, ClickException):
        raise
    except KeyboardInterrupt:
        err.print(f"[bold red]error:[/] {INTERRUPTED}", highlight=False, soft_wrap=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (ConfigError, CredentialsError) as exc:
        raise fail(str(exc), EXIT_UNUSABLE) from None
    except HealthpipeError as exc:
        raise fail(str(exc), EXIT_INTERNAL) from None
    except Exception as exc:
        if verbose:
            raise
        raise fail(f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL) from None


class OneLineErrors(TyperGroup):
    """Usage errors (a bad flag, a missing argument) as one line, `error: ...`, exit 2,
    instead of Click's usage block or Typer's boxed panel."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except ClickException as exc:
            ctx = getattr(exc, "ctx", None)
            hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
            err.print(
                f"[bold red]error:[/] {escape(one_line(exc.format_message()))}{escape(hint)}",
                highlight=False,
                soft_wrap=True,
            )
            sys.exit(exc.exit_code)
        except typer.Abort:
            err.print("aborted", highlight=False)
            sys.exit(EXIT_INTERNAL)
        sys.exit(code if isinstance(code, int) else EXIT_OK)


class PlainArgument(TyperArgument):
    """An argument's help names it by its metavar alone: `FILE...`, not Typer's
    `FILE... <list[Path]>` (Typer appends the Python type to every argument)."""

    def display_type_rich(self, ctx: Any) -> str | None:
        return None


class PlainUsage(TyperCommand):
    """Usage reads `healthpipe run [OPTIONS] FILE...` (Typer would print `{files}...`), and
    its arguments' help `FILE...` (PlainArgument)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if type(param) is TyperArgument:
                param.__class__ = PlainArgument  # Typer builds them: no hook to pick the class

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = param.metavar or (param.name or "ARG").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces


def settings_from(workspace: Path | None, config: Path | None, **flags: Any) -> Settings:
    return load_settings({"workspace": workspace, **flags}, config)


def require_workspace(settings: Settings) -> None:
    """Commands that read a workspace refuse to create one by accident."""
    if not settings.db_path.exists():
        raise fail(
            f"no workspace at {settings.workspace} (run `healthpipe demo` or `healthpipe run` "
            "first, or pass --workspace)",
            EXIT_UNUSABLE,
        )
