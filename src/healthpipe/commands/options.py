"""Command-line options shared by `healthpipe` sub-commands (cli.py and commands/*)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder [env HEALTHPIPE_WORKSPACE; default ./healthpipe-data]",
        show_default=False,
    ),
]
RulesOpt = Annotated[
    str | None, typer.Option("--rules", help="Rules profile (plausible, seed) or a TOML file path")
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Settings file [env HEALTHPIPE_CONFIG; default ./healthpipe.toml if present]",
    ),
]
AnalystOpt = Annotated[str | None, typer.Option("--analyst", help="builtin, bedrock or openai")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="INFO logs (JSON) on stderr")]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout")]
