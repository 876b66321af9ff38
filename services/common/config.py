"""Configuration from TRAINHOUSE_* environment variables, with defaults that work on a laptop.

One place reads the environment so that every process agrees on ports, addresses and folders.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

PREFIX = "TRAINHOUSE_"

# service name -> (port variable, default port, gRPC service full name)
SERVICES: dict[str, tuple[str, int, str]] = {
    "training": ("TRAINHOUSE_TRAINING_PORT", 50051, "trainhouse.v1.TrainingService"),
    "data": ("TRAINHOUSE_DATA_PORT", 50052, "trainhouse.v1.DataService"),
    "evaluation": ("TRAINHOUSE_EVALUATION_PORT", 50053, "trainhouse.v1.EvaluationService"),
    "registry": ("TRAINHOUSE_REGISTRY_PORT", 50054, "trainhouse.v1.ModelRegistry"),
}
GATEWAY_PORT_VAR = "TRAINHOUSE_GATEWAY_PORT"
GATEWAY_DEFAULT_PORT = 8080


def env_str(name: str, default: str) -> str:
    value = os.environ.get(PREFIX + name)
    return value if value not in (None, "") else default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(PREFIX + name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SystemExit(f"{PREFIX}{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float, low: float = -math.inf, high: float = math.inf) -> float:
    """A number from TRAINHOUSE_<name>; one outside [low, high] (or NaN) stops the process at start
    with a message naming the variable, instead of misbehaving later."""
    raw = os.environ.get(PREFIX + name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise SystemExit(f"{PREFIX}{name} must be a number, got {raw!r}") from exc
    if not low <= value <= high:
        raise SystemExit(f"{PREFIX}{name} must be a number between {low:g} and {high:g}, got {raw!r}")
    return value


def env_flag(name: str, default: bool) -> bool:
    """A switch from TRAINHOUSE_<name>: true/false (also 1/0, yes/no, on/off); anything else stops
    the process at start with a message naming the variable."""
    raw = os.environ.get(PREFIX + name)
    if raw in (None, ""):
        return default
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise SystemExit(f"{PREFIX}{name} must be true or false, got {raw!r}")


def home() -> Path:
    """The data folder; created on first use so a fresh checkout needs no setup."""
    path = Path(env_str("HOME", "./.trainhouse")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def service_port(service: str) -> int:
    var, default, _ = SERVICES[service]
    return env_int(var[len(PREFIX):], default)


def service_address(service: str) -> str:
    """Where a client reaches a service: TRAINHOUSE_<NAME>_ADDR; else the port the service
    reported in $TRAINHOUSE_HOME/run/<name>.port (the launcher's processes bind port 0 in tests);
    else loopback and the configured port."""
    explicit = os.environ.get(f"{PREFIX}{service.upper()}_ADDR")
    if explicit:
        return explicit
    port_file = home() / "run" / f"{service}.port"
    try:
        return f"127.0.0.1:{int(port_file.read_text())}"
    except (OSError, ValueError):
        return f"127.0.0.1:{service_port(service)}"


def gateway_port() -> int:
    return env_int(GATEWAY_PORT_VAR[len(PREFIX):], GATEWAY_DEFAULT_PORT)


def autotrain_check_s() -> float:
    """TRAINHOUSE_AUTOTRAIN_CHECK_S: seconds between two auto-training checks of every agent by
    TrainingService (default 60, 0.1 .. 86400; the tests' stack uses 1)."""
    return env_float("AUTOTRAIN_CHECK_S", 60.0, 0.1, 86_400.0)


@dataclass(frozen=True)
class TrainingSettings:
    max_running_per_account: int
    max_running_total: int
    rpc_timeout_s: float
    # False: workers do not send progress events (epoch, step, metric points) at all, so nothing of
    # them is queued, stored or streamed; status, checkpoints, budget and logs still are. For
    # measuring what event storage costs a job (bench/metrics_ingestion.py), or jobs nobody watches.
    progress_events: bool = True
    # Scheduling priority of local job workers (nice 0-19, added to the service's own): training is
    # batch work that takes every core it can get, while the service answers RPCs and stores the
    # jobs' events. Below-normal workers keep GetJob, WatchJob and cancels prompt when the jobs
    # outnumber the cores, and cost a job nothing when the cores are otherwise idle.
    worker_nice: int = 10
    # TRAINHOUSE_TRAINER_THREADS resolved (services/core/trainer/threads.py): read here so that a bad
    # value stops TrainingService at start instead of failing every job; workers resolve it again.
    trainer_threads: int = 1
    # CPUs local job workers may run on (their affinity); None: every CPU the service may use. Nice
    # alone cannot keep the control plane prompt once the jobs outnumber the cores: on the 2-core
    # bench box any unary call's p95 (a bare grpcio health server's too) grows ~5x whatever the
    # workers' nice or scheduling class, and only workers kept off a core bring it back
    # (README "Benchmarks"). Like Ray's `--num-cpus=0` on a head node or kubelet's reserved CPUs,
    # it trades the jobs' throughput for the services' latency, so the operator chooses.
    worker_cpus: frozenset[int] | None = None

    @classmethod
    def from_env(cls) -> "TrainingSettings":
        from trainhouse.core.trainer.kernels import resolve_mode
        from trainhouse.core.trainer.threads import resolve_threads
        nice = env_int("TRAINING_WORKER_NICE", 10)
        if not 0 <= nice <= 19:
            raise SystemExit(f"{PREFIX}TRAINING_WORKER_NICE must be 0-19, got {nice}")
        cpus = worker_cpus()
        try:
            threads = resolve_threads()
            resolve_mode()  # TRAINHOUSE_TRAINER_KERNELS (kernels.py): checked here, read again by workers
        except ValueError as exc:
            raise SystemExit(str(exc)) from exc
        return cls(
            max_running_per_account=env_int("MAX_RUNNING_JOBS_PER_ACCOUNT", 5),
            max_running_total=env_int("MAX_RUNNING_JOBS", 8),
            rpc_timeout_s=env_float("RPC_TIMEOUT_S", 30.0),
            progress_events=env_flag("TRAINING_PROGRESS_EVENTS", True),
            worker_nice=nice,
            trainer_threads=threads,
            worker_cpus=cpus,
        )


def parse_cpu_list(raw: str) -> frozenset[int]:
    """CPU numbers from the list syntax of taskset -c and cpusets: "1", "2-7", "0,2-3"."""
    cpus: set[int] = set()
    for part in raw.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise ValueError(f"{part.strip()!r} is not a CPU number or range")
        first, last = int(low), int(high) if dash else int(low)
        if last < first:
            raise ValueError(f"range {part.strip()!r} runs backwards")
        cpus.update(range(first, last + 1))
    return frozenset(cpus)


def worker_cpus() -> frozenset[int] | None:
    """TRAINHOUSE_TRAINING_WORKER_CPUS: the CPUs local job workers are kept on (unset: all the
    service's). Every CPU must be one the service itself may run on, else the workers could not."""
    raw = env_str("TRAINING_WORKER_CPUS", "").strip()
    if not raw:
        return None
    name = PREFIX + "TRAINING_WORKER_CPUS"
    if not hasattr(os, "sched_setaffinity"):
        raise SystemExit(f"{name}: this platform cannot pin processes to CPUs; leave it unset")
    if env_str("EXECUTOR", "local").lower() != "local":
        raise SystemExit(f"{name} applies to local workers only; Ray places its workers by their num_cpus")
    try:
        cpus = parse_cpu_list(raw)
    except ValueError as exc:
        raise SystemExit(f"{name} must be a CPU list like 1 or 2-7 or 0,2-3: {exc}") from exc
    allowed = os.sched_getaffinity(0)
    if not cpus <= allowed:
        raise SystemExit(f"{name}: CPU {min(cpus - allowed)} is not available to this process "
                         f"(available: {','.join(map(str, sorted(allowed)))})")
    return cpus
