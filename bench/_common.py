"""Helpers shared by the bench scripts: percentiles and one result-line format for run_all.py."""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, int(round(q / 100 * (len(ordered) - 1)))))
    return ordered[k]


def all_cpus_but_the_first() -> tuple[str, int] | None:
    """(the CPU list that keeps work off the first CPU, e.g. "1", and how many CPUs there are), or
    None on one CPU: the TRAINHOUSE_TRAINING_WORKER_CPUS rows (README: the operator's choice)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("one CPU: no core to keep the work off; the rows that need one are skipped")
        return None
    return ",".join(map(str, cpus[1:])), len(cpus)


def result(name: str, value: float, unit: str, baseline: float, baseline_name: str) -> None:
    """One figure next to its baseline measured in the same run (run_all.py collects these lines)."""
    ratio = value / baseline if baseline else float("nan")
    print(f"RESULT | {name} | {value:,.3f} {unit} | {baseline_name}: {baseline:,.3f} {unit} | ratio {ratio:.2f}")


@contextlib.contextmanager
def temp_stack(extra_env: dict[str, str] | None = None) -> Iterator[Any]:
    """Every service and the gateway on free loopback ports, in a throw-away TRAINHOUSE_HOME."""
    from trainhouse.launcher import Stack

    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(home=Path(tmp) / "home", log_dir=Path(tmp) / "logs", extra_env=extra_env or {}).start()
        try:
            yield stack
        finally:
            stack.stop()


def channel(stack: Any, name: str) -> Any:
    """A channel to service `name` carrying the stack's admin token (the services authenticate calls)."""
    return stack.channel(name)


@contextlib.contextmanager
def training_stub(stack: Any) -> Iterator[Any]:
    from trainhouse.v1 import training_service_pb2_grpc

    with channel(stack, "training") as ch:
        yield training_service_pb2_grpc.TrainingServiceStub(ch)


def intent_examples(n: int, seed: int = 0) -> list[Any]:
    """``n`` labelled intent examples (tests/intents.py) as Example protos."""
    from tests.intents import make_examples
    from trainhouse.v1 import example_pb2

    return [example_pb2.Example(input=e["input"], expected_output=e["expected_output"])
            for e in make_examples(n, seed=seed)]
