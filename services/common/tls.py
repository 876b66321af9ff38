"""Optional mutual TLS between trainhouse processes: one place decides how ports bind and channels dial.

Every process is both a server and a client of its peers, so one key pair per process serves both
ways (its certificate carries the serverAuth and clientAuth usages). With TRAINHOUSE_TLS_CA,
TRAINHOUSE_TLS_CERT and TRAINHOUSE_TLS_KEY set, servers demand a client certificate signed by that
CA and clients check the server's certificate against it (its SANs against the target host);
with none set, everything is plaintext as before. Half a configuration is an error at start,
never a silent fallback to plaintext.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc

from trainhouse.common.config import PREFIX

CA_VAR, CERT_VAR, KEY_VAR = PREFIX + "TLS_CA", PREFIX + "TLS_CERT", PREFIX + "TLS_KEY"
SERVER_NAME_VAR = PREFIX + "TLS_SERVER_NAME"
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")

Options = Sequence[tuple[str, Any]]


class TlsConfigError(SystemExit):
    """A TRAINHOUSE_TLS_* value is missing or unusable: one line naming the variable, exit non-zero
    (SystemExit, like every other bad TRAINHOUSE_ value in trainhouse.common.config)."""


@dataclass(frozen=True)
class TlsSettings:
    """The PEM bytes of the CA every peer must be signed by, and this process's own pair."""

    ca: bytes
    cert: bytes
    key: bytes
    # TRAINHOUSE_TLS_SERVER_NAME: the name clients check servers' certificates for, instead of the
    # target's host (for an address the certificates do not name). Prefer SANs that match.
    server_name: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "TlsSettings | None":
        """None when no TRAINHOUSE_TLS_* variable is set (plaintext); raises TlsConfigError when
        only some are set or a file is unreadable, not PEM, or the key does not match the cert."""
        env = os.environ if environ is None else environ
        paths = {var: env.get(var, "") for var in (CA_VAR, CERT_VAR, KEY_VAR)}
        server_name = env.get(SERVER_NAME_VAR, "")
        if not any(paths.values()):
            if server_name:
                raise TlsConfigError(f"{SERVER_NAME_VAR} is set but TLS is off: set {CA_VAR}, {CERT_VAR} "
                                     f"and {KEY_VAR} too, or unset it")
            return None
        missing = [var for var, path in paths.items() if not path]
        if missing:
            given = [var for var, path in paths.items() if path]
            raise TlsConfigError(f"{', '.join(missing)} not set: mutual TLS needs {CA_VAR}, {CERT_VAR} and "
                                 f"{KEY_VAR} together (only {', '.join(given)} given); unset all three for plaintext")
        if server_name and not _HOSTNAME.match(server_name):
            raise TlsConfigError(f"{SERVER_NAME_VAR} must be a DNS name, got {server_name!r}")
        ca, cert, key = (_read(var, paths[var]) for var in (CA_VAR, CERT_VAR, KEY_VAR))
        _check_pem(ca, cert, key, paths)
        return cls(ca, cert, key, server_name or None)

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)], root_certificates=self.ca,
                                           require_client_auth=True)

    def channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.ca, private_key=self.key,
                                            certificate_chain=self.cert)

    def channel_options(self, options: Options) -> list[tuple[str, Any]]:
        out = list(options)
        if self.server_name:
            out.append(("grpc.ssl_target_name_override", self.server_name))
        return out


def _read(var: str, path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise TlsConfigError(f"{var}: cannot read {path!r}: {exc.strerror or exc}") from exc


def _check_pem(ca: bytes, cert: bytes, key: bytes, paths: Mapping[str, str]) -> None:
    """Parse here so a wrong file names its variable; gRPC would only fail the first handshake."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    def certs(var: str, data: bytes) -> list[x509.Certificate]:
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise TlsConfigError(f"{var}: {paths[var]!r} is not a PEM certificate ({exc})") from exc

    certs(CA_VAR, ca)
    leaf = certs(CERT_VAR, cert)[0]
    try:
        private = serialization.load_pem_private_key(key, password=None)
    except (ValueError, TypeError) as exc:  # TypeError: the key is encrypted
        raise TlsConfigError(f"{KEY_VAR}: {paths[KEY_VAR]!r} is not an unencrypted PEM private key ({exc})") from exc
    der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if private.public_key().public_bytes(*der) != leaf.public_key().public_bytes(*der):
        raise TlsConfigError(f"{KEY_VAR}: {paths[KEY_VAR]!r} is not the key of the certificate in "
                             f"{CERT_VAR} ({paths[CERT_VAR]!r})")


def add_port(server: grpc.Server, address: str, environ: Mapping[str, str] | None = None) -> int:
    """Bind `address` with TLS demanding a client certificate when configured, else plaintext.
    Returns the bound port (grpcio's own convention for a failed bind: 0 or RuntimeError)."""
    settings = TlsSettings.from_env(environ)
    if settings is None:
        return server.add_insecure_port(address)
    return server.add_secure_port(address, settings.server_credentials())


def channel(target: str, options: Options = (), environ: Mapping[str, str] | None = None) -> grpc.Channel:
    """A blocking channel to a peer: mutual TLS when configured, else plaintext. `environ` is for
    the launcher, which checks its children with the environment it gave them."""
    settings = TlsSettings.from_env(environ)
    if settings is None:
        return grpc.insecure_channel(target, options=list(options))
    return grpc.secure_channel(target, settings.channel_credentials(), options=settings.channel_options(options))


def aio_channel(target: str, options: Options = (), interceptors: Sequence[Any] | None = None,
                environ: Mapping[str, str] | None = None) -> grpc.aio.Channel:
    """The grpc.aio twin of `channel` (the gateway)."""
    settings = TlsSettings.from_env(environ)
    if settings is None:
        return grpc.aio.insecure_channel(target, options=list(options), interceptors=interceptors)
    return grpc.aio.secure_channel(target, settings.channel_credentials(),
                                   options=settings.channel_options(options), interceptors=interceptors)
