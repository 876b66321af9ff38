"""Authenticated gRPC: every call to a service names its caller, the way an HTTP request does.

A caller sends `authorization: Bearer <credential>` metadata, one of
- an API token (``th_...``) issued by the gateway: checked by token introspection (RFC 7662) at the
  gateway, which owns the token store, and cached for INTROSPECTION_TTL_S (a revoked token stops
  working within that time);
- a JWT (HS256 with TRAINHOUSE_JWT_SECRET, or RS256 from TRAINHOUSE_JWT_JWKS): checked here with
  the same keys and the same claim mapping as the gateway;
- an internal assertion (trainhouse.common.internal_tokens): the identity the gateway or a peer
  service forwards for the caller it authenticated.

The interceptor binds the caller for the handler (trainhouse.common.identity.current), then checks
the method's scope from trainhouse.common.rpc_scopes. No credential, or a bad one: UNAUTHENTICATED;
a good one without the scope: PERMISSION_DENIED. Health and reflection stay open.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import httpx
import jwt

from trainhouse.common import config
from trainhouse.common.identity import DEFAULT_ACCOUNT, SYSTEM, Caller, acting_as, bound, delegated
from trainhouse.common.interceptors import WrappedHandlers, wrap_handler
from trainhouse.common.internal_tokens import InternalTokens, caller_from_claims, is_internal
from trainhouse.common.jwt_keys import JwtVerifier, KeyUnknown
from trainhouse.common.logs import log
from trainhouse.common.request_context import CallDetails
from trainhouse.common.rpc_scopes import scope_of
from trainhouse.core.errors import PermissionDenied, TrainhouseError, Unauthenticated, Unavailable

logger = logging.getLogger("trainhouse.authn")
AUTHORIZATION = "authorization"
INTROSPECTION_PATH = "/internal/v1/introspect"
INTROSPECTION_TTL_S = 10.0
NEGATIVE_TTL_S = 2.0
_BAD = "invalid, revoked or expired token"
KNOWN_MAX = 4096
JWT_RECHECK_S = 60.0
# A credential still in use this close to the end of its cached answer is checked again in the
# background, so a busy caller never waits on introspection (measured: one GetJob in ~100 waited
# 24-31 ms for the HTTP round trip to the gateway while jobs trained, every 10 s per token).
REFRESH_AHEAD_S = 3.0


def gateway_url() -> str:
    """TRAINHOUSE_GATEWAY_URL, else the local gateway's reported port (the launcher's stacks)."""
    explicit = os.environ.get("TRAINHOUSE_GATEWAY_URL", "").strip()
    if explicit:
        return explicit.rstrip("/")
    port_file = config.home() / "run" / "gateway.port"
    try:
        return f"http://127.0.0.1:{int(Path(port_file).read_text())}"
    except (OSError, ValueError):
        return f"http://127.0.0.1:{config.gateway_port()}"


class Introspector:
    """Asks the gateway whether an API token is active, and whose it is."""

    def __init__(self, internal: InternalTokens, url: str | None = None, ttl_s: float = INTROSPECTION_TTL_S):
        self.internal = internal
        self.url = url
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Caller | None]] = {}
        self._lock = threading.Lock()
        # One client for the process's life: httpx.post built a client per check, and its TLS
        # context alone was ~40 ms of CPU (profiled in a streaming TrainingService).
        self._http: httpx.Client | None = None

    def caller(self, token: str) -> Caller | None:
        return self.caller_until(token)[0]

    def caller_until(self, token: str, fresh: bool = False) -> tuple[Caller | None, float]:
        """The token's caller (None: not active) and until when (epoch seconds) that answer stands;
        ``fresh`` asks the gateway even when a cached answer still stands."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
        if fresh or hit is None or hit[0] <= now:
            found = self._ask(token)
            hit = (now + (self.ttl_s if found else NEGATIVE_TTL_S), found)
            with self._lock:
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[key] = hit
        return hit[1], time.time() + (hit[0] - now)

    def _client(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = httpx.Client(timeout=5.0)
            return self._http

    def _ask(self, token: str) -> Caller | None:
        url = (self.url or gateway_url()) + INTROSPECTION_PATH
        try:
            response = self._client().post(url, data={"token": token},
                                           headers={"Authorization": f"Bearer {self.internal.mint(SYSTEM)}"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log(logger, "token introspection failed", logging.WARNING, error=type(exc).__name__)
            raise Unavailable("cannot check the API token now (the gateway's token introspection is "
                              "unreachable); retry shortly") from None
        if not isinstance(body, dict) or body.get("active") is not True:
            return None
        scopes = str(body.get("scope") or "").split()
        return Caller(str(body.get("sub") or ""), str(body.get("account") or DEFAULT_ACCOUNT),
                      frozenset(scopes), str(body.get("token_id") or ""))


class ServiceAuthenticator:
    """Credential -> Caller for a service; one instance per process."""

    def __init__(self, internal: InternalTokens, verifier: JwtVerifier, introspector: Introspector,
                 refresh_ahead_s: float = REFRESH_AHEAD_S):
        self.internal = internal
        self.verifier = verifier
        self.introspector = introspector
        self.refresh_ahead_s = refresh_ahead_s
        # The exact `authorization` value -> (valid until, caller, check again from): a repeated
        # credential costs one dictionary lookup instead of a JWT decode (profiled: the unverified
        # decode that tells an internal assertion from a user JWT ran on every call). Signed
        # credentials are kept until their own `exp`; API tokens as long as the introspection answer
        # stands, so a revoked token stops working within INTROSPECTION_TTL_S as before. Refusals are
        # not kept. From "check again" on, a call still gets the kept caller and starts one check in
        # the background (refresh_ahead_s before the end), which replaces the entry, or drops it
        # when the credential is no longer good (the next call is then refused).
        self._known: dict[str, tuple[float, Caller, float]] = {}
        self._known_lock = threading.Lock()
        self._checker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="credential-check")

    @classmethod
    def from_env(cls) -> "ServiceAuthenticator":
        internal = InternalTokens.from_env()
        return cls(internal, JwtVerifier.from_env(), Introspector(internal))

    def authenticate(self, authorization: str | None) -> Caller:
        if not authorization:
            raise Unauthenticated("missing 'authorization: Bearer <token>' metadata")
        hit = self._known.get(authorization)  # a dict read is atomic; writes take the lock
        if hit is not None:
            now = time.time()
            until, caller, check_from = hit
            if until > now:
                if now >= check_from:
                    self._check_in_background(authorization, hit)
                return caller
        return self._remember(authorization, fresh=False)

    def _remember(self, authorization: str, fresh: bool, kept_until: float = 0.0) -> Caller:
        caller, until = self._verify(authorization, fresh)
        # A signed credential's answer ends at its own `exp`: checking it again gains nothing.
        check_from = until - self.refresh_ahead_s if until > kept_until else float("inf")
        with self._known_lock:
            if len(self._known) >= KNOWN_MAX:
                self._known.clear()
            self._known[authorization] = (until, caller, check_from)
        return caller

    def _check_in_background(self, authorization: str, hit: tuple[float, Caller, float]) -> None:
        with self._known_lock:
            if self._known.get(authorization) is not hit:
                return  # replaced meanwhile, or already being checked
            self._known[authorization] = (hit[0], hit[1], float("inf"))  # one check per entry
        self._checker.submit(self._check, authorization, hit[0])

    def _check(self, authorization: str, kept_until: float) -> None:
        try:
            self._remember(authorization, fresh=True, kept_until=kept_until)
        except Unavailable:
            pass  # the kept answer ends at its time as before; the next call after it asks itself
        except TrainhouseError:  # revoked, expired, or its key is gone: the next call is refused
            with self._known_lock:
                self._known.pop(authorization, None)
        except Exception:
            logger.exception("checking a credential in the background failed")

    def _verify(self, authorization: str, fresh: bool = False) -> tuple[Caller, float]:
        """The caller and until when (epoch seconds) this credential may be taken as verified."""
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            raise Unauthenticated("authorization metadata must be 'Bearer <token>'")
        if credential.count(".") == 2:
            if is_internal(credential):
                found = self.internal.verify_until(credential)
                if found is None:
                    raise Unauthenticated(_BAD)
                return found
            if self.verifier.enabled:
                try:
                    claims = self.verifier.claims(credential)
                except (jwt.PyJWTError, KeyUnknown) as exc:
                    raise Unauthenticated(f"invalid JWT: {type(exc).__name__}") from None
                # exp is required by the verifier; a key dropped from the JWKS applies within a minute.
                until = min(float(claims["exp"]), time.time() + JWT_RECHECK_S)
                return caller_from_claims(claims, DEFAULT_ACCOUNT), until
        found, until = self.introspector.caller_until(credential, fresh)
        if found is None:
            raise Unauthenticated(_BAD)
        return found, until


def _credential(context: grpc.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == AUTHORIZATION:
            return value
    return None


class AuthInterceptor(grpc.ServerInterceptor):
    """Authenticates every trainhouse RPC, binds its caller, checks the method's scope."""

    def __init__(self, authenticator: ServiceAuthenticator):
        self.authenticator = authenticator
        self._handlers = WrappedHandlers()

    def intercept_service(self, continuation, handler_call_details):  # noqa: ANN001 - gRPC API
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if not method.startswith("/trainhouse."):
            return handler  # health and reflection
        # The method's scope is looked up once, when its wrapped handler is built.
        return self._handlers.get(method, handler, lambda h: self._wrap(h, method))

    def _wrap(self, handler: grpc.RpcMethodHandler, method: str) -> grpc.RpcMethodHandler | None:
        scope = scope_of(method)

        @contextlib.contextmanager
        def around(context: grpc.ServicerContext) -> Iterator[None]:
            caller = self.authenticator.authenticate(_credential(context))
            if scope is None:
                raise PermissionDenied(f"method {method} has no scope entry; refused")
            if not caller.allows(scope):
                raise PermissionDenied(f"token lacks the '{scope}' scope",
                                       metadata={"scope": scope})
            with acting_as(caller):
                yield

        return wrap_handler(handler, around)


# ---- the client side: forward the caller to peers ----------------------------------------------

_tokens: InternalTokens | None = None
_tokens_lock = threading.Lock()


def internal_tokens() -> InternalTokens:
    """This process's minting key (read once from the environment)."""
    global _tokens
    with _tokens_lock:
        if _tokens is None:
            _tokens = InternalTokens.from_env()
        return _tokens


def forwarded_authorization() -> str:
    """The `authorization` value for a peer call made now: the bound caller, delegated, or SYSTEM."""
    caller = bound()
    return f"Bearer {internal_tokens().mint(delegated(caller) if caller is not None else SYSTEM)}"


class AuthorizationInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                               grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization` (from `value()`, asked per call) to calls that do not carry their own."""

    def __init__(self, value: Callable[[], str]):
        self.value = value

    def _with_identity(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or [])
        if any(key == AUTHORIZATION for key, _ in metadata):
            return details
        metadata.append((AUTHORIZATION, self.value()))
        return CallDetails(details.method, details.timeout, metadata, details.credentials,
                           getattr(details, "wait_for_ready", None), getattr(details, "compression", None))

    def intercept_unary_unary(self, continuation, client_call_details, request):  # noqa: ANN001
        return continuation(self._with_identity(client_call_details), request)

    def intercept_unary_stream(self, continuation, client_call_details, request):  # noqa: ANN001
        return continuation(self._with_identity(client_call_details), request)

    def intercept_stream_unary(self, continuation, client_call_details, request_iterator):  # noqa: ANN001
        return continuation(self._with_identity(client_call_details), request_iterator)

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):  # noqa: ANN001
        return continuation(self._with_identity(client_call_details), request_iterator)


def forwarding_interceptor() -> AuthorizationInterceptor:
    """For the services' channels to their peers: the bound caller, forwarded (SYSTEM outside calls)."""
    return AuthorizationInterceptor(forwarded_authorization)


def bearer_interceptor(token: str) -> AuthorizationInterceptor:
    """For a client with its own API token or JWT (the CLI, scripts, tests)."""
    header = f"Bearer {token}"
    return AuthorizationInterceptor(lambda: header)
