"""Client construction and error translation shared by the AWS adapters.

Clients are created only when asked for (never at import), from an injectable boto3 session,
with botocore's `standard` retry mode. Errors are translated at the boundary:

    botocore ClientError / BotoCoreError
    ├── throttling, 5xx, timeouts, lost connections  -> TransientError
    ├── no or invalid credentials                     -> CredentialsError (a PermanentError)
    └── everything else (access denied, not found…)  -> PermanentError
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from healthpipe.errors import AdapterError, CredentialsError, PermanentError, TransientError

CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "UnrecognizedClientException"}
)

BOTO_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=60,
)

TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "SlowDown",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "TransactionConflictException",
    }
)
TRANSIENT_BOTOCORE = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
)


def make_client(service: str, session: boto3.session.Session | None = None) -> Any:
    """A client for `service` from `session` (a new default session when None)."""
    chosen: Any = session or boto3.session.Session()
    return chosen.client(service, config=BOTO_CONFIG)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return error_code(exc) in TRANSIENT_CODES or status >= 500
    return isinstance(exc, TRANSIENT_BOTOCORE)


def translate(exc: ClientError | BotoCoreError, doing: str) -> AdapterError:
    """An AdapterError saying what failed; the caller does `raise translate(...) from exc`."""
    if isinstance(exc, ClientError):
        detail = f"{error_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
    else:
        detail = f"{type(exc).__name__}: {exc}"
    message = f"{doing} failed ({detail})"
    if isinstance(exc, NoCredentialsError) or (
        isinstance(exc, ClientError) and error_code(exc) in CREDENTIAL_CODES
    ):
        return CredentialsError(message)
    return TransientError(message) if is_transient(exc) else PermanentError(message)
