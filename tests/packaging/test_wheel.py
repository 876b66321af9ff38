"""The product as users install it: a wheel built from this tree, installed into a fresh venv with no
source tree on the path, serves a whole job driven by the SDK alone (issue #16's done-when)."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HWU64 = REPO / "tests" / "hwu64_subset.jsonl"

# Runs in the wheel's venv, from a folder with nothing of the source tree: only `import trainhouse`.
CLIENT_SCRIPT = textwrap.dedent('''
    import hashlib, json, sys
    import onnxruntime as ort
    import trainhouse
    from trainhouse import Client

    url, token, data = sys.argv[1], sys.argv[2], open(sys.argv[3], "rb").read()
    out = {"package": trainhouse.__file__, "version": trainhouse.__version__}
    with Client(url, token) as client:
        dataset = client.datasets.upload(data, dataset_id="hwu-wheel")
        job = client.jobs.create("wheel-agent", dataset_id=dataset.dataset_id,
                                 config={"method": "supervised", "epochs": 3, "batch_size": 32,
                                         "learning_rate": 0.01, "validation_split": 0.2, "seed": 3})
        events = list(client.events.stream(job.job_id))
        job = client.jobs.get(job.job_id)
        op = client.evaluations.create("wheel-agent", version_id=job.model_version_id, dataset_id="hwu-wheel")
        evaluation = client.operations.wait(op, timeout=300).result
        client.aliases.set("wheel-agent", "champion", job.model_version_id)
        answer = client.agents.predict("wheel-agent", ["wake me up at seven tomorrow"], version_id="@champion")
        model = client.versions.download("wheel-agent", "@champion")
        session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        csv_text = client.metrics.export(job.job_id, "csv").decode()
        out.update(
            state=job.state, epochs=sum(e.type == "epoch" for e in events), last_event=events[-1].type,
            accuracy=evaluation["metrics"]["accuracy"], predicted=answer.predictions[0]["output"],
            served=answer.version_id, version=job.model_version_id,
            model_sha=hashlib.sha256(model).hexdigest(),
            registered_sha=client.versions.get("wheel-agent", job.model_version_id).sha256,
            onnx_inputs=[i.name for i in session.get_inputs()],
            metric_rows=len(csv_text.strip().splitlines()) - 1, metric_header=csv_text.splitlines()[0])
    print(json.dumps(out))
''')


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:  # noqa: ANN003
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{cmd[:4]} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel built from this tree installed in it (its dependencies from the
    package index, as a user gets them); the venv's folder."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"  # build from a copy: the build must not depend on (or write into) the working tree
    skip = shutil.ignore_patterns(".venv", ".git", "build", "dist", "__pycache__", "*.egg-info", ".pytest_cache",
                                  ".trainhouse")

    def ignore(folder: str, names: list[str]) -> set[str]:  # and the editable install's stubs (services/v1)
        return set(skip(folder, names)) | ({"v1"} if Path(folder) == REPO / "services" else set())

    shutil.copytree(REPO, src, ignore=ignore)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(root / "dist"), str(src)],
         timeout=600)
    (wheel,) = (root / "dist").glob("trainhouse-*.whl")
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=True)
    _run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", str(wheel)], timeout=900)
    shutil.rmtree(src)
    return env_dir


def test_the_wheel_runs_a_whole_job_with_the_sdk_alone(installed: Path, tmp_path: Path) -> None:
    python, cli = installed / "bin" / "python", installed / "bin" / "trainhouse"
    work = tmp_path / "outside"  # no source tree here, and none on the path
    work.mkdir()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRAINHOUSE_", "PYTHON"))}
    env.update(TRAINHOUSE_HOME=str(home), TRAINHOUSE_GATEWAY_PORT="0", TRAINHOUSE_TRAINING_PORT="0",
               TRAINHOUSE_DATA_PORT="0", TRAINHOUSE_EVALUATION_PORT="0", TRAINHOUSE_REGISTRY_PORT="0")
    up = subprocess.Popen([str(cli), "up"], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True)
    try:
        port_file = home / "run" / "gateway.port"
        deadline = time.monotonic() + 120
        while not (port_file.exists() and port_file.read_text().strip()):
            assert up.poll() is None, f"trainhouse up exited {up.returncode}: {up.stdout.read()[-3000:]}"
            assert time.monotonic() < deadline, "the stack did not come up"
            time.sleep(0.3)
        url = f"http://127.0.0.1:{port_file.read_text().strip()}"
        token = (home / "admin-token").read_text().strip()
        (work / "client.py").write_text(CLIENT_SCRIPT)
        done = _run([str(python), "client.py", url, token, str(HWU64)], cwd=work, env=env, timeout=600)
        out = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        os.killpg(up.pid, signal.SIGINT)
        try:
            up.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(up.pid, signal.SIGKILL)
    assert Path(out["package"]).is_relative_to(installed), out["package"]  # the installed package, not the tree
    assert out["state"] == "completed" and out["epochs"] == 3
    assert 0.3 < out["accuracy"] <= 1.0  # 21 HWU64 intents: far above chance (0.05) after 3 epochs
    assert out["served"] == out["version"] and out["predicted"]
    assert out["model_sha"] == out["registered_sha"] and out["onnx_inputs"]
    assert out["metric_header"] == "name,value,epoch,step,time" and out["metric_rows"] > 3
    assert up.returncode == 0, up.stdout.read()[-3000:]
