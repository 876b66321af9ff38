"""The ListJobs filter/order_by language (services/training/search.py): parsing, error positions and
the compiled SQL run against a real JobStore with hand-made jobs and metric histories."""
from __future__ import annotations

import json

import pytest

from trainhouse.common.pagination import PageRequest
from trainhouse.core.errors import InvalidArgument
from trainhouse.training.search import compile_filter, compile_order
from trainhouse.training.store import JobStore

# job -> (agent, account, state, method, resolved config, labels, metric points (name, value, step))
JOBS = {
    "job-a": ("router-1", "acct-1", "completed", "supervised", {"learning_rate": 0.01, "epochs": 10},
              {"team": "a"}, [("loss", 1.0, 10), ("loss", 0.4, 20), ("loss", 0.5, 30), ("accuracy", 0.7, 30)]),
    "job-b": ("router-2", "acct-1", "completed", "supervised", {"learning_rate": 0.1, "epochs": 5},
              {"team": "b"}, [("loss", 0.9, 10), ("loss", 0.8, 20), ("accuracy", 0.9, 20)]),
    "job-c": ("intent-1", "acct-2", "failed", "few_shot", {"learning_rate": 0.001},
              {}, [("loss", 2.0, 10)]),
    "job-d": ("router-3", "acct-2", "running", "supervised", {"learning_rate": 0.05, "optimizer": "adam"},
              {"team": "c", "tier": "gold"}, []),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    s = JobStore(tmp_path_factory.mktemp("search") / "training.duckdb")
    for job_id, (agent, account, state, method, config, labels, points) in JOBS.items():
        s.create_job({"job_id": job_id, "agent_id": agent, "account_id": account, "method": method,
                      "state": state, "config_json": json.dumps({"resolved": config,
                                                                 **({"labels": labels} if labels else {})})})
        if points:
            s.append_events(job_id, [("metric", {"name": n, "value": v, "step": step}, {}) for n, v, step in points])
    yield s
    s.close()


def search(store: JobStore, text: str, order: str = "", visible: str | None = None, size: int = 50) -> list[str]:
    page = store.list_jobs(PageRequest(size=size), condition=compile_filter(text), order=compile_order(order),
                           visible=visible)
    return [r["job_id"] for r in page.rows]


@pytest.mark.parametrize("text, expected", [
    ('state = "completed"', {"job-a", "job-b"}),
    ('state = "JOB_STATE_FAILED" OR method = "few_shot"', {"job-c"}),
    ('config.learning_rate >= 0.01 AND config.learning_rate < 0.1', {"job-a", "job-d"}),
    ('labels.team IN ("a", "c")', {"job-a", "job-d"}),
    ('labels.team NOT IN ("a")', {"job-b", "job-d"}),  # a job without the label compares false
    ('NOT labels.team IN ("a")', {"job-b", "job-c", "job-d"}),
    ('agent_id LIKE "router-%" AND NOT state = "running"', {"job-a", "job-b"}),
    ('agent_id NOT LIKE "router-%"', {"job-c"}),
    ("metrics.loss < 0.6", {"job-a"}),  # last value: a 0.5, b 0.8
    ("metrics.loss.min < 0.45", {"job-a"}),
    ("metrics.loss.best < 0.85", {"job-a", "job-b"}),  # best loss is the minimum
    ("metrics.accuracy.best >= 0.9", {"job-b"}),  # best accuracy is the maximum
    ("metrics.loss.first > 1.5", {"job-c"}),
    ("metrics.loss@step=20 < 0.5", {"job-a"}),
    ("metrics.loss@step=10 >= 1 OR metrics.accuracy IS NOT NULL AND labels.team = 'b'", {"job-a", "job-b", "job-c"}),
    ("metrics.loss IS NULL", {"job-d"}),
    ("config.optimizer = 'adam' AND labels.tier = \"gold\"", {"job-d"}),
    ('create_time > "2000-01-01T00:00:00Z" AND cost_usd = 0', set(JOBS)),
    ('agent_id = "x\' OR 1=1 --"', set()),
    ("labels.team = \"a\\\" OR \\\"1\\\"=\\\"1\"", set()),
])
def test_filters_select_the_right_jobs(store, text, expected):
    assert set(search(store, text)) == expected


def test_account_restriction_applies_to_searches(store):
    assert set(search(store, 'state = "completed" OR state = "failed"', visible="acct-2")) == {"job-c"}
    assert search(store, 'account_id = "acct-1"', visible="acct-2") == []


def test_order_by_a_metric_puts_jobs_without_it_last(store):
    assert search(store, "", "metrics.loss.best asc") == ["job-a", "job-b", "job-c", "job-d"]
    assert search(store, "", "metrics.loss.best desc") == ["job-c", "job-b", "job-a", "job-d"]
    assert search(store, "", "config.learning_rate desc, job_id") == ["job-b", "job-d", "job-a", "job-c"]
    assert search(store, "", "labels.team desc") == ["job-d", "job-b", "job-a", "job-c"]


def test_pages_of_a_metric_order_follow_each_other(store):
    order = compile_order("metrics.loss desc")
    page = store.list_jobs(PageRequest(size=3), order=order)
    assert page.next_page_token
    from trainhouse.common.pagination import _decode_token  # the token's key continues the order
    after, _ = _decode_token(page.next_page_token)
    rest = store.list_jobs(PageRequest(size=3, after=after), order=order)
    assert [r["job_id"] for r in page.rows + rest.rows] == ["job-c", "job-b", "job-a", "job-d"]


@pytest.mark.parametrize("text, column, words", [
    ("metrics.loss >= ", 17, "expected a value"),
    ('state = "completed" AND (agent_id = "x"', 40, "')'"),
    ("agent_id = $", 12, "unexpected character '$'"),
    ("agent_id == 'x'", 11, "expected a value"),
    ("state = \"completed\"\n  AND foo = 1", 7, "unknown field 'foo'"),
    ("metrics.loss > 'x'", 16, "compare it with a number"),
    ("agent_id > 3", 12, "quoted string"),
    ("state = 'done'", 9, "not a state"),
    ("create_time > 'yesterday'", 15, "ISO 8601"),
    ("labels.Team = 'a'", 1, "keys are"),
    ("agent_id@step=3 = 'a'", 1, "@step=N applies to metrics"),
    ("metrics.loss LIKE 'a%'", 1, "LIKE compares text"),
])
def test_errors_name_the_position(text, column, words):
    with pytest.raises(InvalidArgument) as err:
        compile_filter(text)
    assert err.value.field == "filter"
    assert f"column {column}:" in str(err.value.message) and words in err.value.message, err.value.message


def test_order_by_errors_name_order_by():
    with pytest.raises(InvalidArgument) as err:
        compile_order("metrics.loss sideways")
    assert err.value.field == "order_by" and "line 1, column 14" in err.value.message
