"""deploy/k8s/network-policy.yaml, read the way Kubernetes reads it, against the rendered pods.

`allows` evaluates the rendered NetworkPolicies for one connection (source pod labels, destination
pod, port number): a pod no Ingress policy selects takes everything; a selected pod takes what
one of its policies' rules allows, a named port meaning the destination container's port of that
name. Only what deploy/k8s uses is modelled (podSelector peers in the namespace, rules without
`from`, matchLabels and matchExpressions). The pods and their ports come from the rendered
Deployments and RayCluster, so a renamed label or a moved port fails here.
"""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from trainhouse.common.config import SERVICES
from tests.deploy.test_k8s_render import rendered  # noqa: F401 - the module's fixture, rendered once here too

RAY = ("ray-head", "ray-worker")
OUTSIDER = {"app": "something-else"}  # any other pod (or, for rules without `from`, any address)


@dataclass
class Pod:
    name: str
    labels: dict[str, str]
    ports: dict[str, int]  # container port name -> number

    @property
    def component(self) -> str:
        return self.labels["app.kubernetes.io/component"]


def _pod(name: str, template: dict) -> Pod:
    ports = {p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
    return Pod(name, template["metadata"]["labels"], ports)


@pytest.fixture(scope="module")
def pods(rendered) -> dict[str, Pod]:  # noqa: F811
    out = [_pod(d["metadata"]["name"], d["spec"]["template"]) for d in rendered if d["kind"] == "Deployment"]
    for cluster in (d for d in rendered if d["kind"] == "RayCluster"):
        groups = [cluster["spec"]["headGroupSpec"], *cluster["spec"].get("workerGroupSpecs", [])]
        out += [_pod(f"{cluster['metadata']['name']}-{i}", g["template"]) for i, g in enumerate(groups)]
    return {p.component: p for p in out}


@pytest.fixture(scope="module")
def policies(rendered) -> list[dict]:  # noqa: F811
    return [d for d in rendered if d["kind"] == "NetworkPolicy"]


def selects(selector: dict, labels: dict[str, str]) -> bool:
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {"In": key in labels and labels[key] in values, "NotIn": labels.get(key) not in values,
              "Exists": key in labels, "DoesNotExist": key not in labels}[op]
        if not ok:
            return False
    return True


def _port_matches(rule: dict, dst: Pod, port: int) -> bool:
    if "ports" not in rule:
        return True
    for p in rule["ports"]:
        assert p.get("protocol", "TCP") == "TCP" and "endPort" not in p
        if p["port"] == port or dst.ports.get(p["port"]) == port:
            return True
    return False


def _peer_matches(rule: dict, src: dict[str, str]) -> bool:
    if "from" not in rule:
        return True
    for peer in rule["from"]:
        assert set(peer) == {"podSelector"}, f"not modelled: {peer}"
        if selects(peer["podSelector"], src):
            return True
    return False


def allows(policies: list[dict], src: dict[str, str], dst: Pod, port: int) -> bool:
    selecting = [p for p in policies if "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
                 and selects(p["spec"]["podSelector"], dst.labels)]
    if not selecting:
        return True
    return any(_peer_matches(rule, src) and _port_matches(rule, dst, port)
               for p in selecting for rule in p["spec"].get("ingress", []))


def test_every_trainhouse_pod_is_default_deny(pods, policies):
    for pod in pods.values():
        assert any(selects(p["spec"]["podSelector"], pod.labels) and not p["spec"].get("ingress")
                   for p in policies), pod.name
        for port in pod.ports.values():  # nothing else in the namespace reaches a pod's port by default...
            if pod.component != "gateway":
                assert not allows(policies, OUTSIDER, pod, port), (pod.name, port)
    assert not allows(policies, OUTSIDER, pods["training"], 9999)


def test_service_ports_take_the_gateway_and_the_services_only(pods, policies):
    assert set(SERVICES) | {"gateway", *RAY} == set(pods)
    for name, (_, default_port, _) in SERVICES.items():
        dst = pods[name]
        assert dst.ports["grpc"] == default_port
        for src in pods.values():
            allowed = allows(policies, src.labels, dst, default_port)
            assert allowed == (src.component in SERVICES or src.component == "gateway"), (src.name, name)
    clients = {src.component for src in pods.values() for name in SERVICES
               if allows(policies, src.labels, pods[name], pods[name].ports["grpc"])}
    assert clients - set(SERVICES) == {"gateway"}


def test_gateway_http_is_open_and_nothing_else_of_it(pods, policies):
    gateway = pods["gateway"]
    for src in [OUTSIDER] + [p.labels for p in pods.values()]:
        assert allows(policies, src, gateway, gateway.ports["http"])
    assert not allows(policies, OUTSIDER, gateway, 9999)


def test_ray_pods_reach_each_other_and_training_reaches_the_head(pods, policies):
    head = pods["ray-head"]
    for src, dst in [("ray-head", "ray-worker"), ("ray-worker", "ray-head"), ("ray-worker", "ray-worker")]:
        for port in (head.ports["gcs"], 12345):  # Ray picks worker ports at run time
            assert allows(policies, pods[src].labels, pods[dst], port), (src, dst, port)
    assert allows(policies, pods["training"].labels, head, head.ports["client"])
    for src in ("gateway", "data", "evaluation", "registry"):
        assert not allows(policies, pods[src].labels, head, head.ports["client"]), src
    assert not allows(policies, pods["training"].labels, head, head.ports["gcs"])
    assert not allows(policies, pods["training"].labels, pods["ray-worker"], 12345)


def test_the_model_of_policies_is_live(pods, policies):
    """Without the policies everything is allowed; a policy selecting nothing changes nothing."""
    assert allows([], OUTSIDER, pods["data"], pods["data"].ports["grpc"])
    stray = {"spec": {"podSelector": {"matchLabels": {"app": "none"}}, "policyTypes": ["Ingress"]}}
    assert allows([stray], OUTSIDER, pods["data"], pods["data"].ports["grpc"])
