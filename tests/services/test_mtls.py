"""Mutual TLS between the processes: certificates from `trainhouse certs`, a real stack started with
TRAINHOUSE_TLS_*, and the three ways in that must fail (plaintext, no client certificate, a
certificate from another CA). Positive checks use the gRPC health and reflection services and the
gateway, so they hold whatever per-RPC authorization the services add."""
from __future__ import annotations

import stat
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from trainhouse.common import tls
from trainhouse.common.config import SERVICES
from trainhouse.launcher import LaunchError, Stack
from tests.conftest import started_stack

CLI = str(Path(sys.executable).with_name("trainhouse"))
PROCESSES = (*SERVICES, "gateway", "client")


def make_certs(out: Path, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([CLI, "certs", "--out", str(out), *args], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def tls_env(folder: Path, name: str = "client") -> dict[str, str]:
    return {"TRAINHOUSE_TLS_CA": str(folder / "ca.pem"), "TRAINHOUSE_TLS_CERT": str(folder / f"{name}.pem"),
            "TRAINHOUSE_TLS_KEY": str(folder / f"{name}-key.pem")}


def credentials(ca: Path, pair: Path | None = None, name: str = "client") -> grpc.ChannelCredentials:
    """Built here with grpc directly, not with trainhouse.common.tls: the test is the other side."""
    if pair is None:
        return grpc.ssl_channel_credentials(root_certificates=ca.read_bytes())
    return grpc.ssl_channel_credentials(ca.read_bytes(), (pair / f"{name}-key.pem").read_bytes(),
                                        (pair / f"{name}.pem").read_bytes())


def health_check(ch: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=service), timeout=5).status


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pki") / "certs"
    proc = make_certs(out, "--host", "trainhouse.example.org", "--host", "10.1.2.3", "--days", "30")
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("other-pki")
    assert make_certs(out).returncode == 0
    return out


@pytest.fixture(scope="module")
def tls_stack(tmp_path_factory, pki):
    # Every process gets the same pair (they are peers; the client pair has loopback SANs and both usages).
    with started_stack(tmp_path_factory.mktemp("tls-home"), tls_env(pki)) as running:
        yield running


# --- the certificates -----------------------------------------------------------------------------

def test_certs_writes_a_ca_and_a_pair_per_process(pki):
    assert stat.S_IMODE((pki / "ca-key.pem").stat().st_mode) == 0o600
    ca = x509.load_pem_x509_certificate((pki / "ca.pem").read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    for name in PROCESSES:
        assert stat.S_IMODE((pki / f"{name}-key.pem").stat().st_mode) == 0o600, name
        cert = x509.load_pem_x509_certificate((pki / f"{name}.pem").read_bytes())
        cert.verify_directly_issued_by(ca)
        usages = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
        assert usages == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        dns = set(san.get_values_for_type(x509.DNSName))
        ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        assert {"localhost", name, "trainhouse.example.org"} <= dns and {"127.0.0.1", "10.1.2.3"} <= ips
        if name != "client":  # the Service names deploy/k8s gives each process, in the default namespace
            assert f"trainhouse-{name}.trainhouse.svc.cluster.local" in dns and f"trainhouse-{name}" in dns


def test_certs_prints_the_settings_and_refuses_a_non_empty_folder(tmp_path, pki):
    out = tmp_path / "c"
    first = make_certs(out, "--namespace", "ml")
    assert first.returncode == 0
    assert f"TRAINHOUSE_TLS_CA={out / 'ca.pem'}" in first.stdout and "development" in first.stdout
    cert = x509.load_pem_x509_certificate((out / "data.pem").read_bytes())
    assert "trainhouse-data.ml.svc" in cert.extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    before = (out / "ca.pem").read_bytes()
    again = make_certs(out)
    assert again.returncode == 7 and "--force" in again.stderr
    assert (out / "ca.pem").read_bytes() == before
    assert make_certs(out, "--force").returncode == 0 and (out / "ca.pem").read_bytes() != before
    bad = make_certs(tmp_path / "d", "--host", "not a host")
    assert bad.returncode == 4 and "--host" in bad.stderr and not (tmp_path / "d").exists()


# --- the stack over mutual TLS ----------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(SERVICES))
def test_health_and_reflection_with_the_client_certificate(tls_stack, pki, name):
    with grpc.secure_channel(tls_stack.address(name), credentials(pki / "ca.pem", pki)) as ch:
        assert health_check(ch, SERVICES[name][2]) == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(ch)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                              timeout=5)
        assert SERVICES[name][2] in {s.name for r in responses for s in r.list_services_response.service}


def test_tls_module_channel_dials_by_ip_and_by_name(tls_stack, pki):
    port = tls_stack.address("registry").rsplit(":", 1)[1]
    for target in (f"127.0.0.1:{port}", f"localhost:{port}"):
        with tls.channel(target, environ=tls_env(pki)) as ch:
            assert health_check(ch) == health_pb2.HealthCheckResponse.SERVING


def test_gateway_reaches_every_service_over_mtls(tls_stack):
    health = requests.get(f"{tls_stack.gateway_url}/healthz", timeout=10)
    assert health.status_code == 200, health.text
    assert set(health.json()["services"].values()) == {"SERVING"}
    auth = {"Authorization": f"Bearer {tls_stack.admin_token}"}
    for path in ("/api/v1/agents", "/api/v1/training/datasets"):
        resp = requests.get(f"{tls_stack.gateway_url}{path}", headers=auth, timeout=10)
        assert resp.status_code == 200, (path, resp.text)


def test_plaintext_client_is_refused(tls_stack):
    with grpc.insecure_channel(tls_stack.address("training")) as ch, pytest.raises(grpc.RpcError) as err:
        health_check(ch)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_client_without_a_certificate_is_refused(tls_stack, pki):
    with grpc.secure_channel(tls_stack.address("data"), credentials(pki / "ca.pem")) as ch, \
            pytest.raises(grpc.RpcError) as err:
        health_check(ch)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("trusts", ["our CA", "the other CA"])
def test_client_certificate_from_another_ca_is_refused(tls_stack, pki, other_pki, trusts):
    """The server rejects a client signed by another CA even when the client trusts the server,
    and a client of the other CA does not trust our server either."""
    ca = pki / "ca.pem" if trusts == "our CA" else other_pki / "ca.pem"
    with grpc.secure_channel(tls_stack.address("evaluation"), credentials(ca, other_pki)) as ch, \
            pytest.raises(grpc.RpcError) as err:
        health_check(ch)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_half_a_tls_configuration_stops_the_stack_at_start(tmp_path, pki):
    env = tls_env(pki)
    del env["TRAINHOUSE_TLS_KEY"]
    stack = Stack(home=tmp_path / "home", log_dir=tmp_path / "logs", extra_env=env)
    with pytest.raises(LaunchError, match="TRAINHOUSE_TLS_KEY"):
        stack.start()  # start() stops what it started before raising


# --- TlsSettings.from_env ---------------------------------------------------------------------------

def test_no_tls_variable_means_plaintext():
    assert tls.TlsSettings.from_env({}) is None
    assert tls.TlsSettings.from_env({"TRAINHOUSE_TLS_CA": "", "TRAINHOUSE_TLS_CERT": ""}) is None


def test_settings_read_every_file(pki):
    settings = tls.TlsSettings.from_env(tls_env(pki, "gateway"))
    assert settings is not None and settings.cert == (pki / "gateway.pem").read_bytes()
    assert settings.channel_options([]) == []
    named = tls.TlsSettings.from_env({**tls_env(pki), "TRAINHOUSE_TLS_SERVER_NAME": "trainhouse-data"})
    assert ("grpc.ssl_target_name_override", "trainhouse-data") in named.channel_options([("a", 1)])


@pytest.mark.parametrize("missing", ["TRAINHOUSE_TLS_CA", "TRAINHOUSE_TLS_CERT", "TRAINHOUSE_TLS_KEY"])
def test_partial_configuration_names_the_missing_variable(pki, missing):
    env = tls_env(pki)
    del env[missing]
    with pytest.raises(tls.TlsConfigError, match=missing):
        tls.TlsSettings.from_env(env)


def test_server_name_without_tls_is_an_error():
    with pytest.raises(tls.TlsConfigError, match="TRAINHOUSE_TLS_SERVER_NAME"):
        tls.TlsSettings.from_env({"TRAINHOUSE_TLS_SERVER_NAME": "trainhouse-data"})


def test_unreadable_or_wrong_files_name_their_variable(tmp_path, pki):
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello\n")
    cases = [
        ("TRAINHOUSE_TLS_CA", str(tmp_path / "missing.pem"), "cannot read"),
        ("TRAINHOUSE_TLS_CERT", str(not_pem), "not a PEM certificate"),
        ("TRAINHOUSE_TLS_KEY", str(not_pem), "not an unencrypted PEM private key"),
        ("TRAINHOUSE_TLS_KEY", str(pki / "data-key.pem"), "is not the key of the certificate"),
        ("TRAINHOUSE_TLS_CA", str(tmp_path), "cannot read"),  # a folder
    ]
    for var, value, message in cases:
        with pytest.raises(tls.TlsConfigError, match=f"{var}.*{message}"):
            tls.TlsSettings.from_env({**tls_env(pki), var: value})
