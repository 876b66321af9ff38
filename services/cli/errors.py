"""Exit codes and the one translation from gRPC / HTTP failures to them.

Scripts branch on the exit code, people read the message; so every failure the CLI reports is a
:class:`CliError` carrying both (and the offending field when the service named one), whichever
transport produced it.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    OK = 0
    JOB_FAILED = 1          # a watched job ended FAILED or CANCELLED; a validated dataset has issues
    USAGE = 2               # bad command line (click/typer's own code for usage errors)
    NOT_FOUND = 3
    INVALID_ARGUMENT = 4
    UNAVAILABLE = 5         # service or gateway unreachable, or timed out
    AUTH = 6                # missing/invalid token, or missing scope
    CONFLICT = 7            # already exists, or not allowed in the resource's current state
    LIMIT = 8               # rate limit or quota exceeded
    SERVER_ERROR = 9        # the service failed internally, or does not implement the call


EPILOG = (
    "Exit codes: 0 ok; 1 a watched job ended failed or cancelled (or a validated dataset has issues); 2 usage error; 3 not found; "
    "4 invalid argument (the message names the field); 5 service unavailable or timed out; "
    "6 authentication or permission; 7 conflict (already exists / wrong state); 8 rate limit or quota; "
    "9 server error. Transport: gRPC to the services by default (addresses from TRAINHOUSE_<NAME>_ADDR "
    "or TRAINHOUSE_<NAME>_PORT); --url http://host:port (or TRAINHOUSE_URL) goes through the gateway "
    "with --token / TRAINHOUSE_TOKEN / $TRAINHOUSE_HOME/admin-token."
)


@dataclass
class CliError(Exception):
    """A failure to report: message for people, code and field for scripts."""

    exit_code: ExitCode
    message: str
    field: str | None = None
    status: str | None = None   # the wire status ("NOT_FOUND", "HTTP 404", ...), for --json

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        return {"error": {"exit_code": int(self.exit_code), "kind": self.exit_code.name.lower(),
                          "status": self.status, "message": self.message, "field": self.field}}


def invalid(field: str, message: str) -> CliError:
    return CliError(ExitCode.INVALID_ARGUMENT, message, field=field, status="INVALID_ARGUMENT")


# gRPC status name -> exit code (names, so this module does not need grpc imported).
GRPC_EXIT = {
    "INVALID_ARGUMENT": ExitCode.INVALID_ARGUMENT,
    "OUT_OF_RANGE": ExitCode.INVALID_ARGUMENT,
    "NOT_FOUND": ExitCode.NOT_FOUND,
    "ALREADY_EXISTS": ExitCode.CONFLICT,
    "FAILED_PRECONDITION": ExitCode.CONFLICT,
    "ABORTED": ExitCode.CONFLICT,
    "RESOURCE_EXHAUSTED": ExitCode.LIMIT,
    "UNAVAILABLE": ExitCode.UNAVAILABLE,
    "DEADLINE_EXCEEDED": ExitCode.UNAVAILABLE,
    "UNAUTHENTICATED": ExitCode.AUTH,
    "PERMISSION_DENIED": ExitCode.AUTH,
}

HTTP_EXIT = {
    400: ExitCode.INVALID_ARGUMENT,
    401: ExitCode.AUTH,
    403: ExitCode.AUTH,
    404: ExitCode.NOT_FOUND,
    409: ExitCode.CONFLICT,
    412: ExitCode.CONFLICT,
    413: ExitCode.INVALID_ARGUMENT,
    422: ExitCode.INVALID_ARGUMENT,
    429: ExitCode.LIMIT,
    502: ExitCode.UNAVAILABLE,
    503: ExitCode.UNAVAILABLE,
    504: ExitCode.UNAVAILABLE,
}

# The canonical API's error codes (docs/api.md) -> exit code.
API_CODE_EXIT = {
    "invalid_request": ExitCode.INVALID_ARGUMENT, "invalid_json": ExitCode.INVALID_ARGUMENT,
    "payload_too_large": ExitCode.INVALID_ARGUMENT, "unauthenticated": ExitCode.AUTH,
    "permission_denied": ExitCode.AUTH, "not_found": ExitCode.NOT_FOUND, "failed_precondition": ExitCode.CONFLICT,
    "conflict": ExitCode.CONFLICT, "idempotency_key_reused": ExitCode.CONFLICT, "rate_limited": ExitCode.LIMIT,
    "unavailable": ExitCode.UNAVAILABLE, "timeout": ExitCode.UNAVAILABLE, "internal_error": ExitCode.SERVER_ERROR,
}


def from_rpc_error(error: Any, target: str) -> CliError:
    """A failed gRPC call (grpc.RpcError) -> CliError, with the field from the rich status."""
    from trainhouse.common.grpc_errors import failure_of

    failure = failure_of(error)
    code_name = failure.code.name if failure.code is not None else "UNKNOWN"
    exit_code = GRPC_EXIT.get(code_name, ExitCode.SERVER_ERROR)
    message = failure.message or code_name.lower()
    if exit_code == ExitCode.UNAVAILABLE:
        message = f"service at {target} is unavailable ({code_name}: {failure.message or 'no answer'})"
    elif code_name == "UNIMPLEMENTED":
        message = f"the service at {target} does not implement this call yet ({failure.message})"
    return CliError(exit_code, message, field=failure.field, status=code_name)


def from_api_error(status: int, code: str | None, message: str | None, param: str | None, what: str) -> CliError:
    """An error of the canonical API (/v1, as the SDK raises it: status, code, message, param) ->
    CliError, with the same exit code the HTTP status maps to above. The code wins over the status:
    an error event inside an event stream reaches the SDK without a status of its own (it guesses
    500 for `unavailable`), and a service restart must read as unavailable so `watch` reconnects."""
    exit_code = API_CODE_EXIT.get(code or "") or HTTP_EXIT.get(
        status, ExitCode.SERVER_ERROR if status >= 500 else ExitCode.INVALID_ARGUMENT)
    return CliError(exit_code, message or f"HTTP {status} from {what}", field=param or None,
                    status=f"HTTP {status}" + (f" {code}" if code else ""))
