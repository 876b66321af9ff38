"""deploy/ cannot run here (no container engine), so its references are checked by parsing."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from trainhouse.common.config import SERVICES

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
    """`python -m module` runs: the module is in the installed namespace and has a __main__."""
    import importlib.util

    return importlib.util.find_spec(f"{module}.__main__") is not None


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


def test_compose_gateway_reads_the_registrys_volume_where_the_registry_writes():
    """The gateway's serving replica opens the generation file and the artifacts at the absolute
    paths the registry sends (docs/serving.md): in compose it must see the registry's volume
    read-only at the registry's own TRAINHOUSE_HOME, and keep its own state elsewhere, in a
    directory the image gives to the non-root user (a fresh named volume copies its owner)."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    image_home = re.search(r"TRAINHOUSE_HOME=(\S+)", dockerfile).group(1)

    def home(name: str) -> str:
        return compose["services"][name].get("environment", {}).get("TRAINHOUSE_HOME", image_home)

    def mounts(name: str) -> dict[str, tuple[str, str]]:
        out = {}
        for spec in compose["services"][name]["volumes"]:
            volume, path, *mode = spec.split(":")
            out[path] = (volume, mode[0] if mode else "rw")
        return out

    registry_volume, mode = mounts("registry")[home("registry")]
    assert mode == "rw"
    assert mounts("gateway")[home("registry")] == (registry_volume, "ro")
    own, mode = mounts("gateway")[home("gateway")]
    assert own != registry_volume and mode == "rw" and home("gateway") != home("registry")
    made = re.search(r"mkdir -p ([^&]+)&& chown 10001:10001 ([^\n]+)", dockerfile)
    assert home("gateway") in made.group(1).split() and home("gateway") in made.group(2).split()


def test_dockerfile_copies_what_exists():
    copies = 0
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        match = re.match(r"COPY (.+) \S+$", line)
        if match and "--from=" not in line:  # COPY --from copies between stages
            for src in match.group(1).split():
                assert (ROOT / src).exists(), src
                copies += 1
    assert copies >= 4


# --- the production image and what the pods need from it ---------------------------------------
def dockerfile_stages() -> dict[str, str]:
    """Stage name -> its text (FROM line included)."""
    stages, name = {}, None
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        match = re.match(r"FROM \S+ AS (\S+)", line)
        if match:
            name = match.group(1)
            stages[name] = ""
        if name:
            stages[name] += line + "\n"
    return stages


def ray_cluster() -> dict:
    (cluster,) = by_kind("RayCluster").values()
    return cluster


def ray_groups() -> list[dict]:
    spec = ray_cluster()["spec"]
    return [spec["headGroupSpec"], *spec["workerGroupSpecs"]]


def test_image_has_no_test_tools_and_a_ray_variant_pinned_to_the_cluster():
    from packaging.requirements import Requirement
    from packaging.version import Version

    text = (DEPLOY / "Dockerfile").read_text()
    stages = dockerfile_stages()
    installs = [line for line in text.splitlines() if "pip install" in line]
    assert installs and not any("test" in line for line in installs), installs
    assert "make install" not in text, "the Makefile installs the test extra"
    assert "-e " not in text, "the image installs the built wheel, not the source tree"
    assert '/wheels/trainhouse-*.whl)[charts]"' in stages["build"], "the base image adds only the charts extra"
    assert '[charts,ray]"' in stages["build-ray"]
    assert "COPY --from=build-ray /app /app" in stages["runtime-ray"]
    assert "COPY --from=build /app /app" in stages["runtime"]
    assert list(stages)[-1] == "runtime", "a plain `docker build` must give the image without Ray"
    assert "USER 10001:10001" in stages["runtime-base"]
    pinned = set(re.findall(r"ARG RAY_VERSION=(\S+)", text))
    assert len(pinned) == 1
    (ray_version,) = pinned
    assert ray_cluster()["spec"]["rayVersion"] == ray_version
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["ray"]
    (req,) = [Requirement(r) for r in extra if Requirement(r).name == "ray"]
    assert Version(ray_version) in req.specifier, (ray_version, str(req.specifier))


def all_pod_specs() -> dict[str, dict]:
    pods = {name: dep["spec"]["template"]["spec"] for name, dep in by_kind("Deployment").items()}
    for group in ray_groups():
        pods[f"ray/{group.get('groupName', 'head')}"] = group["template"]["spec"]
    return pods


def test_every_container_runs_as_non_root_without_privileges():
    for name, pod in all_pod_specs().items():
        ctx = pod["securityContext"]
        assert ctx["runAsNonRoot"] is True and ctx["runAsUser"] == 10001 == ctx["fsGroup"], name
        assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}, name
        mounts = {}
        for container in pod["containers"]:
            cctx = container["securityContext"]
            assert cctx["allowPrivilegeEscalation"] is False, name
            assert cctx["capabilities"]["drop"] == ["ALL"], name
            mounts.update({m["mountPath"]: m["name"] for m in container["volumeMounts"]})
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], name
        if not name.startswith("ray/"):
            # Services write only to their volume and /tmp; Ray writes all over its image.
            assert all(c["securityContext"]["readOnlyRootFilesystem"] is True for c in pod["containers"]), name


def test_training_and_ray_workers_share_the_job_folders():
    """The Ray task gets absolute paths under TrainingService's job folder: every Ray pod must
    see the same ReadWriteMany volume at that path."""
    from types import SimpleNamespace

    from trainhouse.training.runner import JobRunner

    claims = by_kind("PersistentVolumeClaim")
    training = by_kind("Deployment")["trainhouse-training"]["spec"]["template"]["spec"]
    (container,) = training["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    jobs_path = str(JobRunner.job_dir(SimpleNamespace(home=Path(env["TRAINHOUSE_HOME"])), "j").parent)

    def claim_at(pod: dict, container: dict, path: str) -> str:
        (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        return volume["persistentVolumeClaim"]["claimName"]

    shared = claim_at(training, container, jobs_path)
    assert claims[shared]["spec"]["accessModes"] == ["ReadWriteMany"]
    # DuckDB stays on the pod's own ReadWriteOnce volume, not on network storage.
    assert claims[claim_at(training, container, env["TRAINHOUSE_HOME"])]["spec"]["accessModes"] == ["ReadWriteOnce"]
    for group in ray_groups():
        pod = group["template"]["spec"]
        (ray,) = pod["containers"]
        assert claim_at(pod, ray, jobs_path) == shared, group.get("groupName", "head")
        assert {"name": "TRAINHOUSE_HOME", "value": env["TRAINHOUSE_HOME"]} in ray["env"]
        # The Ray Client driver and the cluster run the same image, so the same Ray and Python.
        assert ray["image"] == container["image"] == "trainhouse-ray:latest"


def test_kuberay_keeps_our_command_and_gets_its_start_command():
    cluster = ray_cluster()
    assert cluster["metadata"]["annotations"]["ray.io/overwrite-container-cmd"] == "true"
    for group in ray_groups():
        (ray,) = group["template"]["spec"]["containers"]
        script = " ".join(ray["command"] + ray["args"])
        assert 'exec /bin/bash -c "$KUBERAY_GEN_RAY_START_CMD"' in script
        assert "ray start" not in script, "KubeRay generates the address and resources"
    assert ray_cluster()["spec"]["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"


def quantity(value: str) -> float:
    """A Kubernetes CPU or memory quantity as a number (cores or bytes)."""
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    for suffix, factor in units.items():
        if str(value).endswith(suffix):
            return float(str(value)[: -len(suffix)]) * factor
    return float(value)


# What one running job is given (the training pod's comment says the same), plus the service itself.
JOB_CPU, JOB_MEMORY = 1.0, quantity("1Gi")
SERVICE_CPU, SERVICE_MEMORY = 0.5, quantity("512Mi")


def test_resources_are_sized_for_the_worker_cap():
    training = by_kind("Deployment")["trainhouse-training"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in training["env"]}
    assert "TRAINHOUSE_MAX_RUNNING_JOBS" in env, "the cap the resources are sized for"
    cap = int(env["TRAINHOUSE_MAX_RUNNING_JOBS"])
    assert cap > 0
    res = training["resources"]
    # Local executor: every running job is a worker process in this pod.
    assert quantity(res["requests"]["cpu"]) >= cap * JOB_CPU + SERVICE_CPU
    assert quantity(res["requests"]["memory"]) >= cap * JOB_MEMORY + SERVICE_MEMORY
    assert res["limits"] == res["requests"], "a job must not be OOM-killed below what was promised"
    # Ray executor: the workers (no autoscaler) hold every capped job at once, 1 CPU per task.
    assert not ray_cluster()["spec"].get("enableInTreeAutoscaling")
    workers = ray_cluster()["spec"]["workerGroupSpecs"]
    ray_cpus = sum(g["replicas"] * quantity(g["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"])
                   for g in workers)
    assert ray_cpus >= cap * JOB_CPU
    for group in ray_groups():
        (ray,) = group["template"]["spec"]["containers"]
        assert ray["resources"]["requests"] == ray["resources"]["limits"], "KubeRay sizes Ray from limits"
    for name, pod in all_pod_specs().items():
        for container in pod["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert "memory" in container["resources"]["limits"], name
