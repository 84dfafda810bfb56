"""`healthpipe package` (the Lambda zip) and `healthpipe upload` (files into a deployed bucket)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from healthpipe import constants as c
from healthpipe.commands.options import ConfigOpt
from healthpipe.commands.output import PlainUsage
from healthpipe.domain.identity import is_ingestible

out = Console()
MB = 1024 * 1024
CONTENT_TYPES = {".csv": "text/csv", ".gz": "application/gzip"}

BucketOpt = Annotated[
    str | None,
    typer.Option(
        "--bucket", metavar="NAME", help="Target bucket [env HEALTHPIPE_BUCKET; default none]"
    ),
]
PrefixOpt = Annotated[
    str,
    typer.Option(
        "--prefix",
        metavar="PREFIX",
        help="Key prefix (raw/ starts the pipeline) [default raw/]",
        show_default=False,
    ),
]
KmsOpt = Annotated[
    str | None,
    typer.Option(
        "--kms-key-id",
        metavar="KEY",
        help="SSE-KMS key id or ARN [env HEALTHPIPE_KMS_KEY_ID; default the bucket's]",
    ),
]


def object_key(prefix: str, path: Path) -> str:
    prefix = prefix.strip().lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return f"{prefix}{path.name}"


def upload_files(
    files: list[Path],
    *,
    bucket: str | None,
    prefix: str = c.RAW_PREFIX,
    kms_key_id: str | None = None,
    config: Path | None = None,
) -> list[tuple[str, str]]:
    """Put each file under `prefix` in the bucket (multipart when large); (key, version)s."""
    from healthpipe.bootstrap import build_aws_store
    from healthpipe.config import load_settings

    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise typer.BadParameter(f"no such file: {', '.join(missing)}")
    settings = load_settings({"bucket": bucket, "kms_key_id": kms_key_id}, config)
    store = build_aws_store(settings)
    done = []
    for path in files:
        key = object_key(prefix, path)
        content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
        version = store.put_file(key, path, content_type)
        size = path.stat().st_size
        out.print(
            f"uploaded {path} → s3://{store.bucket}/{key} ({size / MB:.1f} MB"
            f"{', version ' + version if version else ''})",
            highlight=False,
            soft_wrap=True,
        )
        if not key.startswith(c.RAW_PREFIX):
            out.print(
                f"  note: {key} is not under raw/: the pipeline ignores it",
                highlight=False,
                soft_wrap=True,
            )
        elif not is_ingestible(key):
            out.print(
                f"  note: {key} is not a .csv or .csv.gz file: the pipeline rejects it "
                "(Data Processing Failed, unsupported file type)",
                highlight=False,
                soft_wrap=True,
            )
        done.append((key, version))
    return done


def register(app: typer.Typer) -> None:
    @app.command(cls=PlainUsage)
    def upload(
        files: Annotated[list[Path], typer.Argument(metavar="FILE...", help="Files to upload")],
        bucket: BucketOpt = None,
        prefix: PrefixOpt = c.RAW_PREFIX,
        kms_key_id: KmsOpt = None,
        config: ConfigOpt = None,
    ) -> None:
        """Put files into a deployed bucket (under raw/ they start the pipeline)."""
        from healthpipe.commands.output import cli_errors

        missing = [str(f) for f in files if not f.is_file()]
        if missing:  # the user's input: exit 2 with a usage message
            raise typer.BadParameter(f"no such file: {', '.join(missing)}")
        with cli_errors(False):
            upload_files(files, bucket=bucket, prefix=prefix, kms_key_id=kms_key_id, config=config)

    @app.command()
    def package(
        arch: Annotated[
            str,
            typer.Option("--arch", metavar="ARCH", help="Lambda architecture: arm64 or x86_64"),
        ] = "arm64",
        python_version: Annotated[
            str,
            typer.Option("--python-version", metavar="X.Y", help="Lambda Python runtime version"),
        ] = "3.12",
        out_dir: Annotated[Path, typer.Option("--out", metavar="DIR", help="Output folder")] = Path(
            "dist"
        ),
        compile_: Annotated[
            bool,
            typer.Option("--compile/--no-compile", help="Byte-compile for the target Python"),
        ] = True,
        python: Annotated[
            str | None,
            typer.Option(
                "--python",
                metavar="PATH",
                help="Interpreter of the target version, for the .pyc "
                "[default: pythonX.Y found on PATH]",
                show_default=False,
            ),
        ] = None,
    ) -> None:
        """Build one Lambda deployment zip per function from manylinux wheels."""
        from healthpipe.commands.output import cli_errors
        from healthpipe.packaging import UNZIPPED_LIMIT, PackageSpec, build_package

        if arch not in ("x86_64", "arm64"):
            raise typer.BadParameter("--arch must be x86_64 or arm64")
        spec = PackageSpec(
            arch=arch,  # type: ignore[arg-type]
            python_version=python_version,
            out=out_dir,
            compile=compile_,
            python=python,
        )
        with cli_errors(False):
            built = build_package(spec)
        for function, item in built.functions.items():
            out.print(
                f"built {item.zip_path} ({item.zipped_bytes / MB:.1f} MB zipped); "
                f"{function}: {item.unzipped_bytes / MB:.1f} MB unzipped "
                f"(limit {UNZIPPED_LIMIT / MB:.0f} MB)",
                highlight=False,
                soft_wrap=True,
            )
        out.print(f"bytecode: {'compiled' if built.compiled else 'source only'}", highlight=False)
        for note in built.notes:
            out.print(f"note: {note}", highlight=False, soft_wrap=True)
