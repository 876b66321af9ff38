"""Making a development CA and per-process key pairs with `cryptography` (for `trainhouse certs`).

Its own module so that the CLI imports `cryptography` only when a certificate is made, not at
every start. Every process is a server to some peers and a client of others, so each leaf
carries both serverAuth and clientAuth, and SANs for every name it is dialled by: loopback (the
launcher's stack), its own name, and its Kubernetes Service DNS names (deploy/k8s names each
Service `trainhouse-<name>`).
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trainhouse.common.config import SERVICES

# One pair per process of the stack, and `client` for the CLI and tests.
PROCESSES = (*SERVICES, "gateway", "client")
K8S_PREFIX = "trainhouse-"
_DNS_NAME = re.compile(r"^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class BadName(ValueError):
    """A --host that is neither an IP address nor a DNS name."""


def _san(value: str) -> x509.GeneralName:
    """An IP address or a DNS name (a leading `*.` allowed); anything else is a usage error."""
    try:
        return x509.IPAddress(ipaddress.ip_address(value))
    except ValueError:
        pass
    if len(value) > 253 or not _DNS_NAME.match(value):
        raise BadName(f"{value!r} is neither an IP address nor a DNS name")
    return x509.DNSName(value)


def sans(process: str, namespace: str, hosts: list[str]) -> list[x509.GeneralName]:
    """The names a process is dialled by: loopback, its own name, its k8s Service, and --host."""
    names = ["localhost", "127.0.0.1", "::1", process]
    if process != "client":
        svc = K8S_PREFIX + process
        names += [svc, f"{svc}.{namespace}", f"{svc}.{namespace}.svc", f"{svc}.{namespace}.svc.cluster.local"]
    return [_san(n) for n in dict.fromkeys(names + hosts)]


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trainhouse development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_ca(days: int, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("trainhouse development CA")).issuer_name(_name("trainhouse development CA"))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def issue(ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, process: str, names: list[x509.GeneralName],
          days: int, now: dt.datetime) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A leaf for `process`, usable as both server and client (every process is both)."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(process)).issuer_name(ca_cert.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _write(path: Path, data: bytes, mode: int) -> None:
    """Created with its final mode, so a private key is never readable by others, not even briefly."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # an existing file (--force) keeps its old mode otherwise
        os.write(fd, data)
    finally:
        os.close(fd)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def write_set(out: Path, hosts: list[str], days: int, namespace: str) -> None:
    """ca.pem / ca-key.pem, then <process>.pem / <process>-key.pem for every process."""
    now = dt.datetime.now(dt.timezone.utc)
    leaf_names = {p: sans(p, namespace, hosts) for p in PROCESSES}  # bad --host fails before any file
    out.mkdir(parents=True, exist_ok=True)
    ca_key, ca_cert = make_ca(days, now)
    _write(out / "ca.pem", ca_cert.public_bytes(serialization.Encoding.PEM), 0o644)
    _write(out / "ca-key.pem", _key_pem(ca_key), 0o600)
    for process, names in leaf_names.items():
        key, cert = issue(ca_key, ca_cert, process, names, days, now)
        _write(out / f"{process}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
        _write(out / f"{process}-key.pem", _key_pem(key), 0o600)
