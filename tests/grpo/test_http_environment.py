"""GRPO against the user's own tool server (``environment: {type: http, ...}``): a small HTTP server
started by the test speaks the documented protocol; training learns to use its tools; the bearer
token named by ``secret_env`` reaches the server on every request and nowhere else; timeouts,
errors and a server that goes away are observations in the episode, not a crashed job."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from trainhouse.core.errors import FailedPrecondition, InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig
from trainhouse.core.grpo import GRPOConfig, GRPOTrainer, evaluate_policy
from trainhouse.core.grpo.environments import make_environment
from tests.grpo.test_training import Recorder

TOKEN = "tok-4f9a1c-very-secret"
TOKEN_ENV = "TRAINHOUSE_TEST_TOOL_TOKEN"
PRODUCTS = {"kettle": ("SKU-1", 30.0), "toaster": ("SKU-2", 45.5), "blender": ("SKU-3", 80.0),
            "lamp": ("SKU-4", 12.25), "chair": ("SKU-5", 99.0), "mirror": ("SKU-6", 54.0)}
BASIC_TOOLS = [
    {"name": "find_product", "description": "Find the product named in the query.",
     "arguments": {"type": "object", "properties": {"query": {"type": "string"}}}, "outputs": ["sku"]},
    {"name": "get_price", "description": "Price of a SKU.",
     "arguments": {"type": "object", "properties": {"sku": {"type": "string"}}}, "outputs": ["price"]},
    {"name": "check_stock", "description": "Whether a SKU is in stock.",
     "arguments": {"type": "object", "properties": {"sku": {"type": "string"}}}, "outputs": ["in_stock"]},
]
EXTRA_TOOLS = [{"name": "slow_tool", "description": "Sleeps past the client's timeout."},
               {"name": "broken_tool", "description": "Answers HTTP 500."},
               {"name": "echo_header", "description": "Echoes the Authorization header (a careless server)."}]


class ToolServer:
    def __init__(self):
        self.seen_auth: list[str | None] = []
        self.requests: list[tuple[str, str]] = []
        self.episodes: dict[str, dict] = {}
        self.graded: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self):
                auth = self.headers.get("Authorization")
                with server.lock:
                    server.seen_auth.append(auth)
                    server.requests.append((self.command, self.path))
                if auth != f"Bearer {TOKEN}":
                    self._send(401, {"error": "unauthorized"})
                    return False
                return True

            def do_GET(self):
                if not self._authorized():
                    return
                prefix, _, rest = self.path.strip("/").partition("/")
                if rest == "tools":
                    return self._send(200, {"tools": BASIC_TOOLS + (EXTRA_TOOLS if prefix == "full" else [])})
                self._send(404, {"error": "not found"})

            def do_POST(self):
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if self.path == "/grade":
                    with server.lock:
                        server.graded.append(body)
                    # the user's own scoring: 1 for the right answer, 0.25 for any answer, else 0
                    state, expected = body["final_state"], body["expected_outcome"]
                    reward = 1.0 if state.get("answer") == expected.get("answer") else (
                        0.25 if "answer" in state else 0.0)
                    return self._send(200, {"reward": reward})
                if self.path == "/grade-broken":
                    return self._send(503, {"error": "down"})
                parts = self.path.strip("/").split("/")[1:]
                if parts == ["episodes"]:
                    with server.lock:
                        eid = f"ep-{len(server.episodes)}"
                        server.episodes[eid] = {"query": body["query"], "state": {}}
                    return self._send(200, {"episode_id": eid, "state": {}})
                if len(parts) == 3 and parts[0] == "episodes" and parts[2] == "calls":
                    ep = server.episodes.get(parts[1])
                    if ep is None:
                        return self._send(404, {"error": "no such episode"})
                    return self._send(200, server.call(ep, body["tool"], body.get("arguments", {}),
                                                       self.headers.get("Authorization")))
                self._send(404, {"error": "not found"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.handle_error = lambda request, address: None   # broken_tool / timed-out clients: expected
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def call(self, ep, tool, args, auth):
        state = ep["state"]
        if tool == "find_product":
            name = next((p for p in PRODUCTS if p in args.get("query", "")), None)
            if name is None:
                return {"result": None, "error": "no product in the query", "state": state}
            state["sku"] = PRODUCTS[name][0]
            return {"result": {"sku": state["sku"]}, "state": state}
        if tool in ("get_price", "check_stock"):
            sku = args.get("sku")
            match = [p for p, (s, _) in PRODUCTS.items() if s == sku]
            if not match:
                return {"result": None, "error": "unknown or missing sku", "state": state}
            if tool == "get_price":
                state["price"] = PRODUCTS[match[0]][1]
            else:
                state["in_stock"] = sku != "SKU-3"
            return {"result": {k: state[k] for k in ("price", "in_stock") if k in state}, "state": state}
        if tool == "slow_tool":
            time.sleep(1.0)
            return {"result": "late", "state": state}
        if tool == "broken_tool":
            raise RuntimeError("boom")  # the server answers with a broken connection / 500
        if tool == "echo_header":
            return {"result": {"you_sent": auth}, "state": {**state, "note": f"header was {auth}"}}
        return {"result": None, "error": f"unknown tool {tool}", "state": state}

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server():
    s = ToolServer()
    yield s
    s.stop()


@pytest.fixture
def token(monkeypatch):
    monkeypatch.setenv(TOKEN_ENV, TOKEN)


def tasks(names, kinds=("price", "sku")):
    out = []
    for i, name in enumerate(names):
        sku, price = PRODUCTS[name]
        if kinds[i % len(kinds)] == "price":
            out.append({"query": f"how much does the {name} cost", "expected_outcome": {"price": price}})
        else:
            out.append({"query": f"which sku does the {name} have", "expected_outcome": {"sku": sku}})
    return out


def http_config(url, **kw):
    return GRPOConfig(environment={"type": "http", "url": url, "secret_env": TOKEN_ENV, "timeout_s": 0.3,
                                   "max_calls": 8}, **kw)


def test_trains_against_the_tool_server_and_keeps_the_token_out(server, token, tmp_path):
    train = tasks(["kettle", "toaster", "blender", "lamp"] * 2, ("price", "sku", "sku", "price"))
    held_out = tasks(["chair", "mirror", "chair", "mirror"], ("price", "sku", "sku", "price"))
    cfg = http_config(f"{server.url}/basic", n_iterations=25, checkpoint_interval=25, batch_size=6,
                      n_trajectories_per_query=8, learning_rate=0.05, max_steps_per_trajectory=4,
                      hidden_sizes=(32,), featurizer=FeaturizerConfig(dim=512), seed=2)
    rec = Recorder(tmp_path)
    n_before = len(server.seen_auth)
    trainer = GRPOTrainer(cfg, train, held_out, rec, keep_trajectories=True)
    assert trainer.actions == ["find_product", "get_price", "check_stock", "finish"]
    result = trainer.train()
    before = evaluate_policy(trainer.initial_policy(), held_out, config=cfg, env=trainer.env)
    after = evaluate_policy(result.policy, held_out, config=cfg, env=trainer.env)
    print(f"\ntool server: held-out success {before['success_rate']:.2f} -> {after['success_rate']:.2f}")
    assert after["success_rate"] >= before["success_rate"] + 0.5
    # the token arrived with every request ...
    seen = server.seen_auth[n_before:]
    assert len(seen) > 100 and set(seen) == {f"Bearer {TOKEN}"}
    # ... and is nowhere in what the platform keeps
    stored = json.dumps({"events": rec.events, "config": cfg.to_dict(), "trajectories": result.trajectories,
                         "metrics": result.metrics, "history": result.history}, default=str)
    assert TOKEN not in stored and TOKEN_ENV in json.dumps(cfg.to_dict())
    for ckpt in tmp_path.iterdir():
        assert TOKEN.encode() not in ckpt.read_bytes()
    assert TOKEN not in repr(trainer.env.client)
    # the calls in the trajectories are the server's: arguments filled from query and state
    steps = [s for t in result.trajectories for s in t["steps"] if s["action"]["tool"] == "get_price"
             and s["result"]["ok"]]
    assert steps and all(s["action"]["params"] == {"sku": s["state"]["outcome"]["sku"]} for s in steps)
    assert all(s["duration_ms"] > 0 and "price" in s["result"]["output"] for s in steps)


def test_failures_are_observations(server, token):
    env = make_environment(http_config(f"{server.url}/full", max_steps_per_trajectory=8))
    ep = env.run("how much does the lamp cost", ["slow_tool", "broken_tool", "get_price", "find_product", "get_price",
                                                 "echo_header", "finish"])
    results = [s["result"] for s in ep.steps]
    assert results[0]["ok"] is False and "timed out after 0.3 s" in results[0]["error"]
    assert results[1]["ok"] is False and "failed" in results[1]["error"]
    assert results[2]["ok"] is False and results[2]["error"] == "unknown or missing sku"
    assert results[3]["ok"] and results[4]["ok"] and ep.final_state()["price"] == 12.25
    # a server that echoes the token: it is redacted before it enters the trajectory
    assert results[5]["ok"] and results[5]["output"] == {"you_sent": "Bearer [redacted]"}
    assert TOKEN not in json.dumps(ep.steps) and TOKEN not in json.dumps(ep.final_state())
    # max_calls bounds the requests of one episode (its start included)
    capped = make_environment(http_config(f"{server.url}/basic", max_steps_per_trajectory=12))
    ep = capped.run("how much does the lamp cost", ["check_stock"] * 10)
    errors = [s["result"].get("error", "") for s in ep.steps]
    assert sum("max_calls (8)" in e for e in errors) == 10 - 7


def test_server_going_away_and_bad_setup(token):
    s = ToolServer()
    env = make_environment(http_config(f"{s.url}/basic", max_steps_per_trajectory=4))
    s.stop()
    ep = env.run("how much does the lamp cost", ["find_product", "get_price", "finish"])
    assert [st["result"]["ok"] for st in ep.steps] == [False, False, True]
    assert "failed" in ep.steps[0]["result"]["error"]
    with pytest.raises(FailedPrecondition) as err:
        make_environment(http_config(f"{s.url}/basic"))
    assert err.value.field == "environment.url" and "tool list is unavailable" in err.value.message


def test_missing_secret_is_a_clear_error(server, monkeypatch):
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    with pytest.raises(InvalidArgument) as err:
        make_environment(http_config(f"{server.url}/basic"))
    assert err.value.field == "environment.secret_env" and TOKEN_ENV in err.value.message


def test_a_grader_endpoint_scores_the_episodes(server, token):
    from trainhouse.core.grpo.trainer import GRPOTrainer as Trainer

    data = [{"query": "what is 12 times 12", "expected_outcome": {"answer": 144}},
            {"query": "what is the population of Oslo", "expected_outcome": {"answer": 709000}}]
    cfg = GRPOConfig(environment="builtin", grader={"url": f"{server.url}/grade", "secret_env": TOKEN_ENV},
                     n_iterations=2, checkpoint_interval=2, batch_size=2, n_trajectories_per_query=4,
                     max_steps_per_trajectory=3, hidden_sizes=(8,), featurizer=FeaturizerConfig(dim=256))
    assert cfg.to_dict()["grader"] == {"url": f"{server.url}/grade", "secret_env": TOKEN_ENV, "timeout_s": 10.0}
    n_before, auth_before = len(server.graded), len(server.seen_auth)
    result = Trainer(cfg, data, None, keep_trajectories=True).train()
    graded = server.graded[n_before:]
    assert len(graded) >= 2 * 2 * 4 and set(server.seen_auth[auth_before:]) == {f"Bearer {TOKEN}"}
    for t in result.trajectories:
        final = {}
        for step in t["steps"]:
            if step["result"]["ok"] and step["action"]["tool"] != "finish":
                final.update(step["result"]["changes"])
        expected = next(q["expected_outcome"] for q in data if q["query"] == t["query"])
        want = 1.0 if final.get("answer") == expected["answer"] else (0.25 if "answer" in final else 0.0)
        assert t["reward"] == want          # the grader's reward, not exact_match's
    assert {g["query"] for g in graded} == {q["query"] for q in data}
    broken = GRPOConfig.from_dict({**cfg.to_dict(), "grader": {"url": f"{server.url}/grade-broken",
                                                                "secret_env": TOKEN_ENV}})
    with pytest.raises(FailedPrecondition) as err:
        Trainer(broken, data).train()
    assert err.value.field == "grader.url" and "HTTP 503" in err.value.message
