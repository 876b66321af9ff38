"""Who a call acts for: one `Caller` model used by the gateway, every service and the workers.

An account (a project) is the isolation boundary of every resource: a caller sees, lists, cancels
and downloads only what belongs to its own account, and ``admin`` crosses accounts. The services
enforce this themselves (not only the gateway), so a direct gRPC client gets the same answers.

The caller of the RPC being served sits in a contextvar, bound by the services' authentication
interceptor (trainhouse.common.authn) for the handler's duration; calls a service makes to its peers
carry that caller on (trainhouse.common.clients), so the original identity follows a request through
every hop. Work that runs outside any call (job runners, auto-training, rollouts) acts as SYSTEM, or
binds the account it works for with `acting_as`.
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass

SCOPES: tuple[str, ...] = (
    "training:start", "training:view", "training:cancel", "training:evaluate",
    "data:generate", "data:export", "models:deploy", "admin",
)
ADMIN = "admin"
DEFAULT_ACCOUNT = "default"
# Scopes a job's own work needs when it acts for its account (register a version, read its data).
ACCOUNT_WORK_SCOPES = frozenset(s for s in SCOPES if s != ADMIN)


@dataclass(frozen=True)
class Caller:
    """An authenticated identity: whose resources it may touch (`account`) and what it may do."""

    subject: str
    account: str
    scopes: frozenset[str]
    token_id: str = ""

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.scopes

    def allows(self, scope: str) -> bool:
        return self.is_admin or scope in self.scopes

    def sees(self, account: str) -> bool:
        """Whether a resource of `account` exists for this caller (others' resources are 'not found')."""
        return self.is_admin or account == self.account

    @property
    def account_filter(self) -> str | None:
        """The account lists are restricted to: None (every account) for admin."""
        return None if self.is_admin else self.account

    def owner_for(self, requested: str) -> str:
        """The account a new resource belongs to: the caller's own; admin may name another one."""
        if requested and self.is_admin:
            return requested
        return self.account


SYSTEM = Caller("system", DEFAULT_ACCOUNT, frozenset({ADMIN}), "system")

_current: contextvars.ContextVar[Caller | None] = contextvars.ContextVar("trainhouse_caller", default=None)


def current() -> Caller:
    """The caller being served; SYSTEM outside any call (background work of the platform itself)."""
    return _current.get() or SYSTEM


def bound() -> Caller | None:
    """The caller bound to this context, or None (not serving a call)."""
    return _current.get()


@contextlib.contextmanager
def acting_as(caller: Caller) -> Iterator[Caller]:
    """Bind `caller` for the block: peer calls made inside carry it."""
    token = _current.set(caller)
    try:
        yield caller
    finally:
        _current.reset(token)


def delegated(caller: Caller) -> Caller:
    """The identity a process forwards to its peers for `caller`: the same subject and account, with
    the scopes any work of that account needs (the caller's own scope was checked where the call
    entered; a training job's data read must not need the caller's data:export). Admin stays admin."""
    scopes = ACCOUNT_WORK_SCOPES | (frozenset({ADMIN}) if caller.is_admin else frozenset())
    return Caller(caller.subject, caller.account, scopes, caller.token_id)


def bind_for_task(caller: Caller) -> None:
    """Bind `caller` for the rest of the current asyncio task (one HTTP request in the gateway).

    Not reset on purpose: a streamed response body (SSE, downloads) is sent after the route handler
    returned, and its service calls must still carry the request's caller. Each request runs in its
    own task with its own copy of the context, so nothing leaks into the next request."""
    _current.set(caller)


def for_account(account: str, subject: str = "system") -> Caller:
    """The identity background work uses for one account's resources (a job registering its version)."""
    return Caller(f"{subject}:{account}", account, ACCOUNT_WORK_SCOPES, "system")
