"""Webhook URL checks and pinned delivery, without a stack: real local HTTP(S) servers receive
the deliveries; the only stand-in is the resolver, which `send` takes as a parameter."""
from __future__ import annotations

import asyncio
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from trainhouse.gateway.webhooks import dispatcher, urls


@pytest.mark.parametrize("address", [
    "64:ff9b::a9fe:a9fe",         # NAT64 of 169.254.169.254 (cloud metadata)
    "64:ff9b::a00:1",             # NAT64 of 10.0.0.1
    "64:ff9b:1::a9fe:a9fe",       # local-use NAT64 prefix (RFC 8215)
    "2002:7f00:1::",              # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",          # 6to4 of 169.254.169.254
    "::127.0.0.1",                # IPv4-compatible loopback
    "::a9fe:a9fe",                # IPv4-compatible metadata address
    "::ffff:10.0.0.1",            # IPv4-mapped private
    "::ffff:127.0.0.1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    "127.0.0.1", "10.1.2.3", "169.254.169.254", "100.64.0.1", "::1", "fe80::1", "fc00::1", "0.0.0.0", "::",
    "224.0.0.1", "ff02::1",
])
def test_private_and_embedded_ipv4_addresses_are_refused(address: str) -> None:
    assert urls.blocked(address)
    literal = f"[{address}]" if ":" in address else address
    with pytest.raises(urls.UrlRefused, match="private, loopback or reserved"):
        asyncio.run(urls.check(f"http://{literal}/hook", allow_private=False))


@pytest.mark.parametrize("address", ["8.8.8.8", "2606:4700:4700::1111", "64:ff9b::808:808", "2002:808:808::1",
                                     "::ffff:8.8.8.8"])
def test_public_addresses_are_accepted(address: str) -> None:
    assert not urls.blocked(address)
    literal = f"[{address}]" if ":" in address else address
    target = asyncio.run(urls.check(f"https://{literal}:8443/hook?x=1", allow_private=False))
    assert target.addresses == (address,)
    assert target.pinned_url(address) == f"https://{literal}:8443/hook?x=1"


def test_a_name_with_one_private_address_is_refused() -> None:
    async def resolve(host: str, port: int) -> list[str]:
        return ["8.8.8.8", "64:ff9b::a9fe:a9fe"]
    with pytest.raises(urls.UrlRefused, match="64:ff9b::a9fe:a9fe"):
        asyncio.run(urls.check("http://hooks.example.test/x", allow_private=False, resolve=resolve))


class Receiver:
    """A real HTTP(S) server on one loopback address, recording each POST and the TLS server name."""

    def __init__(self, host: str, port: int = 0, tls: ssl.SSLContext | None = None) -> None:
        self.calls: list[dict[str, Any]] = []
        self.server_names: list[str | None] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server API
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.calls.append({"path": self.path, "host": self.headers.get("Host"), "body": body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        if tls is not None:
            tls.sni_callback = lambda sock, name, ctx: self.server_names.append(name)
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rebinding_resolver(first: str, later: str) -> tuple[urls.Resolver, list[str]]:
    """Answers `first` once, then `later`: what a DNS-rebinding attacker's name server does."""
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return [first if len(asked) == 1 else later]
    return resolve, asked


def test_delivery_connects_to_the_checked_address_not_a_second_answer() -> None:
    checked, elsewhere = Receiver("127.0.0.1"), None
    try:
        # The rebinding target listens on another loopback address, same port.
        elsewhere = Receiver("127.0.0.2", checked.port)
        resolve, asked = rebinding_resolver("127.0.0.1", "127.0.0.2")
        # A .invalid name never resolves in real DNS: only the injected resolver knows it.
        url = f"http://rebind.invalid:{checked.port}/hook?a=1"

        async def deliver() -> int:
            async with dispatcher.new_client(5) as client:
                response = await dispatcher.send(client, url, b'{"x":1}', {"Content-Type": "application/json"},
                                                 allow_private=True, resolve=resolve)
                return response.status_code
        assert asyncio.run(deliver()) == 200
        assert asked == ["rebind.invalid"]  # resolved once, by the check
        assert [c["path"] for c in checked.calls] == ["/hook?a=1"]
        assert checked.calls[0]["host"] == f"rebind.invalid:{checked.port}" and checked.calls[0]["body"] == b'{"x":1}'
        assert elsewhere.calls == []
        # The next delivery checks again and goes where that check approved.
        assert asyncio.run(deliver()) == 200
        assert len(checked.calls) == 1 and len(elsewhere.calls) == 1
    finally:
        checked.close()
        if elsewhere is not None:
            elsewhere.close()


def test_delivery_is_refused_when_the_name_now_answers_a_private_address() -> None:
    resolve, asked = rebinding_resolver("64:ff9b::a9fe:a9fe", "8.8.8.8")

    async def deliver() -> None:
        async with dispatcher.new_client(5) as client:
            await dispatcher.send(client, "http://rebind.invalid/hook", b"{}", {}, allow_private=False,
                                  resolve=resolve)
    with pytest.raises(urls.UrlRefused):
        asyncio.run(deliver())
    assert asked == ["rebind.invalid"]


def _certificates(folder: Path, host: str) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for `host`, made with the openssl command."""
    ca_key, ca_crt = folder / "ca.key", folder / "ca.crt"
    key, csr, crt, ext = folder / "srv.key", folder / "srv.csr", folder / "srv.crt", folder / "ext.cnf"
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
        "-days", "2", "-subj", "/CN=trainhouse test CA")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={host}")
    ext.write_text(f"subjectAltName=DNS:{host}\n")
    run("x509", "-req", "-in", str(csr), "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(crt), "-days", "2", "-extfile", str(ext))
    return ca_crt, crt, key


def test_https_delivery_to_a_pinned_address_verifies_the_host_name(tmp_path: Path) -> None:
    host = "hooks.trainhouse.invalid"
    ca, crt, key = _certificates(tmp_path, host)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(crt, key)
    receiver = Receiver("127.0.0.1", tls=tls)
    trust = ssl.create_default_context(cafile=str(ca))

    async def resolve(name: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    async def deliver(url: str) -> int:
        async with dispatcher.new_client(5, verify=trust) as client:
            return (await dispatcher.send(client, url, b"{}", {}, allow_private=True, resolve=resolve)).status_code
    try:
        assert asyncio.run(deliver(f"https://{host}:{receiver.port}/tls")) == 200
        assert receiver.server_names == [host] and receiver.calls[0]["host"] == f"{host}:{receiver.port}"
        # A name the certificate does not cover fails verification, though it pins to the same address.
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED|certificate"):
            asyncio.run(deliver(f"https://other.trainhouse.invalid:{receiver.port}/tls"))
    finally:
        receiver.close()
