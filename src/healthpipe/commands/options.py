"""Command-line options shared by `healthpipe` sub-commands (cli.py and commands/*).

Every option's help ends with where its value comes from when the flag is absent: the
`HEALTHPIPE_*` variable and the default (help is plain text, never read as Rich markup).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from healthpipe.constants import ENV_CONFIG, ENV_PREFIX


def setting_help(text: str, name: str, default: str) -> str:
    """`text [env HEALTHPIPE_NAME; default D]` for an option backed by a Settings field."""
    return f"{text} [env {ENV_PREFIX}{name.upper()}; default {default}]"


def flag_help(text: str, default: str = "off") -> str:
    return f"{text} [default {default}]"


WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        metavar="DIR",
        help=setting_help("Workspace folder", "workspace", "./healthpipe-data"),
        show_default=False,
    ),
]
RulesOpt = Annotated[
    str | None,
    typer.Option(
        "--rules",
        metavar="PROFILE|FILE",
        help=setting_help("Rules profile (plausible, seed) or a TOML file", "rules", "plausible"),
        show_default=False,
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help=f"Settings file [env {ENV_CONFIG}; default ./healthpipe.toml if present]",
        show_default=False,
    ),
]
AnalystOpt = Annotated[
    str | None,
    typer.Option(
        "--analyst",
        metavar="NAME",
        help=setting_help("builtin, bedrock or openai", "analyst", "builtin"),
        show_default=False,
    ),
]
VerboseOpt = Annotated[
    bool,
    typer.Option("--verbose", "-v", help=flag_help("INFO logs on stderr"), show_default=False),
]
LogJsonOpt = Annotated[
    bool,
    typer.Option(
        "--log-json", help=flag_help("INFO logs on stderr as JSON lines"), show_default=False
    ),
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help=flag_help("One JSON object on stdout"), show_default=False),
]
WideOpt = Annotated[
    bool,
    typer.Option(
        "--wide", help=flag_help("Every column, however wide the terminal"), show_default=False
    ),
]
