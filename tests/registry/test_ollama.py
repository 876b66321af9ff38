"""ImportToOllama against a small loopback HTTP server that answers like Ollama and records calls."""
from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import pytest

from tests.registry.conftest import rpc_failure
from trainhouse.v1 import model_registry_pb2, training_service_pb2

R = model_registry_pb2


class FakeOllama:
    """Ollama's /api/version, /api/show and /api/create; or redirects everything to `redirect_to`."""

    def __init__(self, models=("llama3.2",), redirect_to: str | None = None):
        self.calls: list[dict] = []
        self.models = set(models)
        self.redirect_to = redirect_to
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def _reply(self, status: int, body: dict | None = None, headers: dict | None = None):
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                outer.calls.append({"method": self.command, "path": self.path, "body": body,
                                    "host": self.headers.get("Host")})
                if outer.redirect_to is not None:
                    return self._reply(307, {}, {"Location": outer.redirect_to + self.path})
                if self.path == "/api/version":
                    return self._reply(200, {"version": "0.6.5"})
                if self.path == "/api/show":
                    if body.get("model") in outer.models:
                        return self._reply(200, {"details": {"family": "llama"}})
                    return self._reply(404, {"error": f"model '{body.get('model')}' not found"})
                if self.path == "/api/create":
                    outer.models.add(body["model"])
                    return self._reply(200, {"status": "success"})
                return self._reply(404, {"error": "not found"})

            do_GET = do_POST = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ollama_server():
    server = FakeOllama()
    yield server
    server.close()


def import_request(**kw):
    return R.ImportToOllamaRequest(model_id="reg-ver@v1.0.0", **kw)


def test_import_creates_a_model_that_carries_catalog_and_demonstrations(registry, trained, training_stub,
                                                                        ollama_server):
    url = ollama_server.url.replace("127.0.0.1", "localhost")  # a name: resolved, every address loopback
    result = registry.ImportToOllama(import_request(model_name="reg-ver-router", base_model="llama3.2",
                                                    ollama_url=url, actor="tester"))
    imported = getattr(result, "import")
    assert imported.ollama_name == "reg-ver-router" and imported.base_model == "llama3.2"
    assert imported.model_id == "reg-ver@v1.0.0" and imported.import_time.seconds > 0
    assert [(c["method"], c["path"]) for c in ollama_server.calls] == [
        ("GET", "/api/version"), ("POST", "/api/show"), ("POST", "/api/create")]
    create = ollama_server.calls[-1]["body"]
    assert create["model"] == "reg-ver-router" and create["from"] == "llama3.2" and create["stream"] is False
    assert create["system"] == imported.system_prompt
    version = registry.GetVersion(R.GetVersionRequest(model_id="reg-ver@v1.0.0")).version
    for label in version.labels:
        assert f"- {label}" in create["system"]
    # Demonstrations come from the version's own job, each under its true output.
    demos = re.findall(r'Input: (".*?")\nOutput: (\S+)', create["system"])
    assert len(demos) == imported.demonstration_count and 4 <= len(demos) <= 12
    job_examples = training_stub.ListJobExamples(training_service_pb2.ListJobExamplesRequest(
        job_id=version.job_id, page_size=10000)).examples
    truth = {" ".join(e.input.split()): e.expected_output for e in job_examples}
    for text, output in demos:
        assert truth[json.loads(text)] == output
    assert {output for _, output in demos} == set(version.labels)
    assert ollama_server.calls[0]["host"] == url.removeprefix("http://")
    events = registry.ListAuditEvents(R.ListAuditEventsRequest(agent_id="reg-ver", kind="ollama.")).events
    assert events[0].details["import_id"] == imported.import_id and events[0].actor == "tester"


@pytest.mark.parametrize("url", ["http://10.1.2.3:11434", "http://0.0.0.0:11434", "ftp://127.0.0.1:11434",
                                 "http://user:secret@127.0.0.1:11434", "http://[::ffff:8.8.8.8]:11434",
                                 "http://192.168.1.10"])
def test_non_loopback_urls_are_refused(registry, trained, url):
    failure = rpc_failure(registry.ImportToOllama, import_request(ollama_url=url))
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "ollama_url"


def test_redirects_are_followed_only_while_they_stay_loopback(registry, trained, ollama_server):
    away = FakeOllama(redirect_to="http://10.20.30.40:11434")
    try:
        failure = rpc_failure(registry.ImportToOllama, import_request(ollama_url=away.url))
        assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "ollama_url"
        assert "redirects to http://10.20.30.40:11434/api/version" in failure.message
        assert [c["path"] for c in away.calls] == ["/api/version"]
    finally:
        away.close()
    hop = FakeOllama(redirect_to=ollama_server.url)
    try:
        result = registry.ImportToOllama(import_request(model_name="via-redirect", ollama_url=hop.url))
        assert getattr(result, "import").ollama_name == "via-redirect"
        assert [c["path"] for c in ollama_server.calls] == ["/api/version", "/api/show", "/api/create"]
    finally:
        hop.close()


def test_no_ollama_is_unavailable_and_a_missing_base_model_is_named(registry, trained, ollama_server):
    with socket.socket() as closed:  # bound but never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        failure = rpc_failure(registry.ImportToOllama, import_request(ollama_url=f"http://127.0.0.1:{port}"))
    assert failure.code == grpc.StatusCode.UNAVAILABLE and "no Ollama answers at" in failure.message
    missing = rpc_failure(registry.ImportToOllama, import_request(base_model="mistral", ollama_url=ollama_server.url))
    assert missing.code == grpc.StatusCode.FAILED_PRECONDITION and missing.field == "base_model"
    assert "ollama pull mistral" in missing.message
    assert rpc_failure(registry.ImportToOllama, import_request(model_name="bad name!",
                                                               ollama_url=ollama_server.url)).field == "model_name"
