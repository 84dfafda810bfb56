"""healthpipe's errors.

HealthpipeError
├── ConfigError            bad settings or rules file (exit 2)
├── InputError             a file the pipeline cannot use (exit 2): the file is kept,
│                          a rejected manifest records the reason
├── AdapterError           a port's backing service failed
│   ├── TransientError     worth retrying (throttling, timeouts, lost connections)
│   └── PermanentError     retrying will not help (access denied, missing bucket)
│       └── CredentialsError   no or invalid cloud credentials (exit 2 in the CLI)
└── StageError             a stage could not finish; carries the stage name
"""

from __future__ import annotations


class HealthpipeError(Exception):
    """Base of every error healthpipe raises on purpose."""


class ConfigError(HealthpipeError):
    """Settings or a rules profile are invalid."""


class InputError(HealthpipeError):
    """The input file cannot be used as a vitals CSV."""

    def __init__(self, reason: str, *, code: str = "unusable_file") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


class AdapterError(HealthpipeError):
    """A backing service behind a port failed."""


class TransientError(AdapterError):
    """A failure that may go away when retried."""


class PermanentError(AdapterError):
    """A failure that retrying will not fix."""


class CredentialsError(PermanentError):
    """No usable cloud credentials: the user's set-up, not a failure of the service."""


class StageError(HealthpipeError):
    """A stage could not complete."""

    def __init__(self, stage: str, message: str) -> None:
        super().__init__(f"{stage}: {message}")
        self.stage = stage
