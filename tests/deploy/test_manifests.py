"""deploy/ cannot run here (no container engine), so its references are checked by parsing."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from services.common.config import SERVICES

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return docs


def by_kind(kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in k8s_docs() if d["kind"] == kind}


def module_exists(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__main__.py").exists()


def test_kustomization_lists_every_manifest():
    listed = set(yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())["resources"])
    present = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present


def test_every_service_has_a_deployment_service_and_volume():
    deployments, services, claims = by_kind("Deployment"), by_kind("Service"), by_kind("PersistentVolumeClaim")
    for name in list(SERVICES) + ["gateway"]:
        dep = deployments[f"trainhouse-{name}"]
        pod = dep["spec"]["template"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert dep["spec"]["replicas"] == 1, "one writer per DuckDB file"
        container = pod["spec"]["containers"][0]
        module = container["command"][-1]
        assert module_exists(module), module
        for volume in pod["spec"]["volumes"]:
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
        svc = services[f"trainhouse-{name}"]
        assert svc["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
        port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port in svc["spec"]["ports"]:
            assert port["targetPort"] in port_names
        if name != "gateway":
            port = SERVICES[name][1]
            assert container["readinessProbe"]["grpc"]["port"] == port == port_names["grpc"]
            assert container["livenessProbe"]["grpc"]["port"] == port


def generated_secrets() -> dict[str, dict]:
    """Secrets kustomize generates from env files: name -> {"stringData": keys of the example file}."""
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    out = {}
    for gen in kustomization.get("secretGenerator", []):
        keys = {}
        for env_file in gen.get("envs", []):
            example = DEPLOY / "k8s" / f"{env_file}.example"
            for line in example.read_text().splitlines():
                if line.strip() and not line.lstrip().startswith("#"):
                    key, _, value = line.partition("=")
                    keys[key.strip()] = value
        out[gen["name"]] = {"stringData": keys}
    return out


def test_no_secret_value_is_shipped():
    """Secrets come from a generated, uncommitted env file; the example has keys without values."""
    assert not by_kind("Secret"), "a committed Secret ships its values to everyone"
    generated = generated_secrets()
    assert "trainhouse-secrets" in generated
    for name, secret in generated.items():
        assert secret["stringData"] and all(v == "" for v in secret["stringData"].values()), name
    assert "deploy/k8s/secrets.env" in (ROOT / ".gitignore").read_text().split()
    for path in DEPLOY.rglob("*"):
        if path.is_file():
            assert "change-me" not in path.read_text().lower(), path


def test_peer_addresses_point_at_defined_services():
    services = by_kind("Service")
    config_maps, secrets = by_kind("ConfigMap"), {**by_kind("Secret"), **generated_secrets()}
    for dep in by_kind("Deployment").values():
        for env in dep["spec"]["template"]["spec"]["containers"][0].get("env", []):
            if env["name"].endswith("_ADDR"):
                host, port = env["value"].split(":")
                assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}
            ref = env.get("valueFrom", {})
            if "configMapKeyRef" in ref:
                assert ref["configMapKeyRef"]["key"] in config_maps[ref["configMapKeyRef"]["name"]]["data"]
            if "secretKeyRef" in ref:
                assert ref["secretKeyRef"]["key"] in secrets[ref["secretKeyRef"]["name"]]["stringData"] or \
                    ref["secretKeyRef"].get("optional")


def test_compose_services_volumes_and_health():
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == set(SERVICES) | {"gateway"}
    for name, svc in services.items():
        assert module_exists(svc["command"][-1])
        assert "healthcheck" in svc
        for dep in svc.get("depends_on", []):
            assert dep in services
        for volume in svc.get("volumes", []):
            assert volume.split(":")[0] in compose["volumes"]
        for key, value in svc.get("environment", {}).items():
            if key.endswith("_ADDR"):
                host, port = value.split(":")
                assert host in services
                assert services[host]["environment"][f"TRAINHOUSE_{host.upper()}_PORT"] == port
        if name != "gateway":
            port = SERVICES[name][1]
            assert f"127.0.0.1:{port}" in " ".join(svc["healthcheck"]["test"])


def test_dockerfile_copies_what_exists():
    copies = 0
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY (.+) \S+$", line)
        if match and "--from=" not in line:  # COPY --from copies between stages
            for src in match.group(1).split():
                assert (ROOT / src).exists(), src
                copies += 1
    assert copies >= 4
