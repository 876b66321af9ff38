"""Import a version into a local Ollama.

Our versions are small classifiers over an output catalog, not LLM weights, so the import
creates an Ollama model *over an LLM base model* that carries what the version learned: its
output catalog and demonstrations in the system prompt. The demonstrations are chosen by the
version itself: for each output, the examples of its job (held-out first, then training) that the
version scores highest for their true output and predicts correctly: its most confident, correct
cases.

The URL must be loopback (the registry must never become a request proxy into other hosts):
http(s) only, no credentials, host a loopback literal (127.0.0.0/8, ::1) or a name whose every
address is loopback. Requests go to the resolved address (so a name cannot re-resolve elsewhere
between the check and the call), proxies from the environment are ignored, and redirects are
followed by hand only while they stay loopback.

Ollama API used (the shape since Ollama 0.5.5, see its docs/api.md "Create a Model"):
  GET  /api/version                       -> is an Ollama there
  POST /api/show   {"model"}              -> 404 when the base model is not pulled
  POST /api/create {"model", "from", "system", "parameters", "stream": false} -> {"status": "success"}
"""
from __future__ import annotations

import ipaddress
import json
import re
import socket
from dataclasses import dataclass
from typing import Any, Sequence
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import numpy as np

from trainhouse.core.errors import FailedPrecondition, InvalidArgument, Unavailable
from trainhouse.core.onnx_model import OnnxModel

DEFAULT_URL = "http://localhost:11434"
DEFAULT_BASE_MODEL = "llama3.2"
MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$")
MAX_REDIRECTS = 3
TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 3.0
MAX_DEMOS_TOTAL = 60
MAX_DEMO_CHARS = 300


@dataclass(frozen=True)
class Target:
    """A checked Ollama base URL and the loopback address to connect to."""

    url: str          # as given (normalised), for messages and Host headers
    scheme: str
    host: str
    port: int
    address: str      # resolved loopback IP
    path: str


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def check_url(raw: str, field: str = "ollama_url") -> Target:
    url = (raw or DEFAULT_URL).strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument(field, "must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise InvalidArgument(field, "must not carry credentials")
    if parts.query or parts.fragment:
        raise InvalidArgument(field, "must not have a query or fragment")
    host = parts.hostname
    if not host:
        raise InvalidArgument(field, "has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidArgument(field, "has an invalid port") from None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InvalidArgument(field, f"host '{host}' does not resolve ({exc.strerror})") from None
    addresses = sorted({info[4][0] for info in infos})
    if not addresses or not all(_is_loopback(a) for a in addresses):
        raise InvalidArgument(field, f"must be a loopback host (localhost, 127.0.0.0/8 or ::1); "
                                     f"'{host}' is {', '.join(addresses) or 'unresolvable'}")
    ipv4 = [a for a in addresses if ":" not in a]
    return Target(urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", "")), parts.scheme, host,
                  port, (ipv4 or addresses)[0], parts.path.rstrip("/"))


class OllamaClient:
    """Talks to one checked loopback Ollama, following only loopback redirects."""

    def __init__(self, target: Target, field: str = "ollama_url"):
        self.target = target
        self.field = field
        self.http = httpx.Client(trust_env=False, follow_redirects=False,
                                 timeout=httpx.Timeout(TIMEOUT_S, connect=CONNECT_TIMEOUT_S))

    def close(self) -> None:
        self.http.close()

    def _wire_url(self, target: Target, path: str) -> str:
        host = f"[{target.address}]" if ":" in target.address else target.address
        return f"{target.scheme}://{host}:{target.port}{target.path}{path}"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> httpx.Response:
        target, hops = self.target, 0
        while True:
            host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
            if ":" in target.host:
                host_header = f"[{target.host}]:{target.port}"
            try:
                resp = self.http.request(method, self._wire_url(target, path), json=body,
                                         headers={"Host": host_header})
            except httpx.TransportError as exc:
                raise Unavailable(f"no Ollama answers at {target.url}: {exc or type(exc).__name__}",
                                  metadata={"ollama_url": self.target.url}) from None
            if resp.status_code not in (301, 302, 303, 307, 308):
                return resp
            hops += 1
            location = resp.headers.get("location", "")
            if hops > MAX_REDIRECTS or not location:
                raise InvalidArgument(self.field, f"{target.url} redirects too often or without a location")
            absolute = urljoin(f"{target.url}{path}", location)
            try:
                moved = check_url(absolute, self.field)
            except InvalidArgument as err:
                raise InvalidArgument(self.field, f"{target.url} redirects to {absolute}, which is refused: "
                                                  f"{err.message}") from None
            target, path = moved, ""  # the location names the full path
            if resp.status_code == 303:
                method, body = "GET", None


def _error_text(resp: httpx.Response) -> str:
    try:
        return str(resp.json().get("error") or resp.text)
    except Exception:  # not JSON: the raw text says more than nothing
        return resp.text[:300]


def choose_demonstrations(model: OnnxModel, examples: Sequence[dict[str, Any]], per_output: int
                          ) -> list[tuple[str, str, float]]:
    """(input, output, probability) of the version's most confident correct examples per output."""
    if per_output <= 0 or not examples:
        return []
    index = {label: i for i, label in enumerate(model.labels)}
    usable, seen = [], set()
    for e in examples:
        text = " ".join(str(e["input"]).split())
        if (e.get("feedback") or "correct") == "incorrect" or e["expected_output"] not in index:
            continue
        if not text or text in seen or len(text) > MAX_DEMO_CHARS:
            continue
        seen.add(text)
        usable.append((text, e["expected_output"]))
    if not usable:
        return []
    probs = model.predict_proba([t for t, _ in usable])
    best: dict[str, list[tuple[float, str]]] = {}
    for (text, label), p in zip(usable, probs):
        j = index[label]
        if int(np.argmax(p)) == j:
            best.setdefault(label, []).append((float(p[j]), text))
    out: list[tuple[str, str, float]] = []
    for label in model.labels:  # catalog order, each output's best first
        for prob, text in sorted(best.get(label, []), key=lambda x: (-x[0], x[1]))[:per_output]:
            out.append((text, label, prob))
    return out[:MAX_DEMOS_TOTAL]


def system_prompt(agent_id: str, version_id: str, labels: Sequence[str],
                  demonstrations: Sequence[tuple[str, str, float]]) -> str:
    lines = [
        f"You are the '{agent_id}' agent (trainhouse model version {version_id}).",
        "For every user message, answer with exactly one output from this catalog, copied verbatim, "
        "and nothing else:",
        *[f"- {label}" for label in labels],
    ]
    if demonstrations:
        lines += ["", "Examples the trained model is most confident about (input -> output):"]
        lines += [f"Input: {json.dumps(text, ensure_ascii=False)}\nOutput: {label}" for text, label, _ in demonstrations]
    return "\n".join(lines)


def create_model(client: OllamaClient, name: str, base_model: str, system: str) -> None:
    """Check Ollama is there and has the base model, then create `name` over it."""
    version = client.request("GET", "/api/version")
    if version.status_code != 200:
        raise Unavailable(f"{client.target.url} does not answer like Ollama (GET /api/version -> "
                          f"{version.status_code})", metadata={"ollama_url": client.target.url})
    show = client.request("POST", "/api/show", {"model": base_model})
    if show.status_code == 404:
        raise FailedPrecondition(f"base model '{base_model}' is not available in the Ollama at {client.target.url}; "
                                 f"pull it first (ollama pull {base_model})", field="base_model")
    if show.status_code != 200:
        raise Unavailable(f"Ollama could not show '{base_model}': {_error_text(show)}")
    created = client.request("POST", "/api/create", {"model": name, "from": base_model, "system": system,
                                                     "parameters": {"temperature": 0}, "stream": False})
    if created.status_code != 200:
        message = f"Ollama refused to create '{name}': {_error_text(created)}"
        if 400 <= created.status_code < 500:
            raise FailedPrecondition(message, metadata={"ollama_status": str(created.status_code)})
        raise Unavailable(message)
    try:
        status = created.json().get("status")
    except Exception:
        status = None
    if status not in (None, "success"):
        raise Unavailable(f"Ollama did not confirm the creation of '{name}' (status {status!r})")


def check_model_name(name: str) -> str:
    if not MODEL_NAME_RE.match(name):
        raise InvalidArgument("model_name", "must match [A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")
    return name


def check_base_model(name: str) -> str:
    if not MODEL_NAME_RE.match(name):
        raise InvalidArgument("base_model", "must match [A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")
    return name
