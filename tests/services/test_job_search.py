"""ListJobs' filter and order_by over real gRPC: a handful of small jobs with different configs and
labels, searched by fields, config, labels and metric history; the expected jobs are computed from
each job's stored metric points (ListMetrics), never canned values."""
from __future__ import annotations

import statistics

import grpc
import pytest

from trainhouse.common.grpc_errors import failure_of
from tests.intents import make_examples
from tests.services.test_training_grpc import examples_pb, wait_terminal
from trainhouse.v1 import job_state_pb2, training_job_pb2, training_service_pb2

# agent -> (learning rate, epochs, labels)
JOBS = {
    "search-router-1": (0.01, 3, {"team": "a"}),
    "search-router-2": (0.1, 3, {"team": "b"}),
    "search-intent-1": (0.05, 4, {"team": "c", "tier": "gold"}),
    "search-intent-2": (0.001, 3, {}),
}
MINE = 'agent_id LIKE "search-%"'  # the shared stack holds other modules' jobs too


@pytest.fixture(scope="module")
def jobs(training) -> dict[str, dict]:
    """agent -> {"job_id", "points": {metric name: [(step, value), ...] in recording order}}."""
    started = {}
    for i, (agent, (lr, epochs, labels)) in enumerate(JOBS.items()):
        config = training_job_pb2.TrainingConfig(epochs=epochs, learning_rate=lr, batch_size=16, seed=3 + i)
        started[agent] = training.StartJob(training_service_pb2.StartJobRequest(
            agent_id=agent, examples=examples_pb(make_examples(40, seed=10 + i)), config=config,
            labels=labels)).job.job_id
    out = {}
    for agent, job_id in started.items():
        final = wait_terminal(training, job_id)
        assert final.state == job_state_pb2.JOB_STATE_COMPLETED, final.error.message
        points: dict[str, list] = {}
        for p in training.ListMetrics(training_service_pb2.ListMetricsRequest(job_id=job_id, page_size=10000)).points:
            points.setdefault(p.name, []).append((p.step, p.value))
        out[agent] = {"job_id": job_id, "points": points}
    return out


def search(training, text: str, order_by: str = "", page_size: int = 0) -> list[str]:
    resp = training.ListJobs(training_service_pb2.ListJobsRequest(filter=text, order_by=order_by,
                                                                  page_size=page_size))
    return [j.job_id for j in resp.jobs]


def ids(jobs, agents) -> set[str]:
    return {jobs[a]["job_id"] for a in agents}


def test_or_of_labels_and_config_ranges(training, jobs):
    got = search(training, f'{MINE} AND (labels.team IN ("a", "c") OR config.learning_rate >= 0.1)')
    assert set(got) == ids(jobs, ["search-router-1", "search-router-2", "search-intent-1"])
    got = search(training, f"{MINE} AND config.learning_rate > 0.005 AND config.learning_rate <= 0.05")
    assert set(got) == ids(jobs, ["search-router-1", "search-intent-1"])
    got = search(training, f"{MINE} AND (labels.tier = 'gold' OR NOT labels.team IS NOT NULL)")
    assert set(got) == ids(jobs, ["search-intent-1", "search-intent-2"])
    got = search(training, 'agent_id LIKE "search-router-%" AND state = "completed" AND method = "supervised"')
    assert set(got) == ids(jobs, ["search-router-1", "search-router-2"])


def _median_split(values: dict[str, float]) -> tuple[float, set[str]]:
    """A threshold between the values (so both sides are non-trivial when they differ) and the agents
    above it."""
    threshold = statistics.median(values.values())
    return threshold, {a for a, v in values.items() if v > threshold}


@pytest.mark.parametrize("suffix, pick", [
    ("", lambda pts: pts[-1][1]),
    (".last", lambda pts: pts[-1][1]),
    (".best", lambda pts: min(v for _, v in pts)),  # a loss: lower is better
    (".max", lambda pts: max(v for _, v in pts)),
])
def test_metric_final_and_best(training, jobs, suffix, pick):
    values = {a: pick(j["points"]["loss"]) for a, j in jobs.items()}
    threshold, above = _median_split(values)
    got = search(training, f"{MINE} AND metrics.loss{suffix} > {threshold!r}")
    assert set(got) == ids(jobs, above)


def test_metric_at_step(training, jobs):
    steps = [s for s, _ in jobs["search-router-1"]["points"]["loss"]]
    step = steps[len(steps) // 2]
    at_step = {a: [v for s, v in j["points"]["loss"] if s == step] for a, j in jobs.items()}
    values = {a: v[-1] for a, v in at_step.items() if v}
    threshold, above = _median_split(values)
    got = search(training, f"{MINE} AND metrics.loss@step={step} > {threshold!r}")
    assert set(got) == ids(jobs, above) and got
    below = {a for a, v in values.items() if v <= threshold}
    got = search(training, f"{MINE} AND metrics.loss@step={step} <= {threshold!r}")
    assert set(got) == ids(jobs, below)


def test_order_by_a_metric_and_pages(training, jobs):
    name = next(n for n in jobs["search-router-1"]["points"] if "accuracy" in n)
    best = {a: max(v for _, v in j["points"][name]) for a, j in jobs.items()}
    expected = [jobs[a]["job_id"] for a in sorted(best, key=lambda a: (-best[a], a))]
    got = search(training, MINE, f"metrics.{name}.best desc")
    assert sorted(got) == sorted(expected)
    assert [best[a] for a in _agents(jobs, got)] == sorted(best.values(), reverse=True)
    paged, token = [], ""
    while True:  # keyset pages of a metric order continue one another
        resp = training.ListJobs(training_service_pb2.ListJobsRequest(
            filter=MINE, order_by=f"metrics.{name}.best desc", page_size=1, page_token=token))
        paged += [j.job_id for j in resp.jobs]
        token = resp.next_page_token
        if not token:
            break
    assert paged == got


def _agents(jobs, job_ids):
    by_id = {j["job_id"]: a for a, j in jobs.items()}
    return [by_id[i] for i in job_ids]


def test_the_old_filters_combine_with_the_search(training, jobs):
    resp = training.ListJobs(training_service_pb2.ListJobsRequest(
        agent_id="search-router-2", filter="labels.team IN ('a', 'b')", include_total_size=True))
    assert [j.job_id for j in resp.jobs] == [jobs["search-router-2"]["job_id"]] and resp.total_size == 1


@pytest.mark.parametrize("text", [
    'agent_id = "x\' OR 1=1 --"',
    "agent_id = 'x\" OR 1=1 --'",
    'labels.team = "a\\" OR \\"1\\"=\\"1"',
    "config.learning_rate = '0; DROP TABLE jobs'",
])
def test_injection_attempts_match_nothing(training, jobs, text):
    assert search(training, text) == []
    assert len(search(training, MINE)) == len(JOBS)  # and the table is still there


@pytest.mark.parametrize("text, position", [
    (f"{MINE} AND metrics.loss >= ", "line 1, column 46"),
    ('state = "completed" OR', "line 1, column 23"),
    ("agent_id = ; 1", "line 1, column 12"),
    ("labels.team = 'a' AND secret = 1", "line 1, column 23"),
])
def test_malformed_filters_are_invalid_with_a_position(training, text, position):
    with pytest.raises(grpc.RpcError) as err:
        search(training, text)
    failure = failure_of(err.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "filter"
    assert position in failure.message, failure.message


def test_malformed_order_by_names_order_by(training):
    with pytest.raises(grpc.RpcError) as err:
        search(training, "", "metrics.loss upward")
    failure = failure_of(err.value)
    assert failure.code == grpc.StatusCode.INVALID_ARGUMENT and failure.field == "order_by"
    assert "line 1, column 14" in failure.message
