"""`healthpipe pseudonym ID…`: the pseudonym an authorised operator looks a participant up by.

Stores, reports and CLI output name participants by pseudonym only (`P-` + 64 bits of an
HMAC-SHA256 of the id). Nothing maps a pseudonym back to an id; whoever holds the secret (the
workspace's `pseudonym.key`, or `HEALTHPIPE_PSEUDONYM_SECRET` on AWS) recomputes the pseudonym
of a given id and searches for it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from healthpipe.commands.options import ConfigOpt, WorkspaceOpt
from healthpipe.commands.output import PlainUsage

EXIT_UNUSABLE = 2


def _secret(workspace: Path | None, config: Path | None) -> str:
    from healthpipe.bootstrap import PSEUDONYM_KEY_FILE
    from healthpipe.config import load_settings

    settings = load_settings({"workspace": workspace}, config)
    secret = settings.pseudonym_secret.get_secret_value()
    if secret:
        return secret
    key_file = settings.workspace / PSEUDONYM_KEY_FILE
    if not key_file.is_file():
        raise ValueError(
            f"no pseudonym key at {key_file}: give the workspace that processed the data "
            "(--workspace) or set HEALTHPIPE_PSEUDONYM_SECRET"
        )
    return key_file.read_text(encoding="ascii").strip()


def register(app: typer.Typer) -> None:
    @app.command(cls=PlainUsage)
    def pseudonym(
        participant: Annotated[
            list[str],
            typer.Argument(metavar="ID...", help="Participant id(s) as in the CSV"),
        ],
        workspace: WorkspaceOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        """Print the pseudonym of each participant id (one per line, in order)."""
        from healthpipe.domain.identity import pseudonym as pseudonym_of
        from healthpipe.errors import ConfigError

        try:
            secret = _secret(workspace, config)
        except (ValueError, ConfigError) as exc:
            Console(stderr=True).print(
                f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(EXIT_UNUSABLE) from None
        for participant_id in participant:
            typer.echo(pseudonym_of(participant_id, secret))
