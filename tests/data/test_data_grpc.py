"""DataService over real gRPC (the shared `stack`): datasets, generation, validation, trajectories."""
from __future__ import annotations

import datetime as dt
import json
import uuid

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from trainhouse.common.grpc_errors import failure_of
from trainhouse.data.text import normalize
from tests.intents import hwu64_subset, shuffle_labels
from trainhouse.v1 import (data_service_pb2 as pb, data_service_pb2_grpc, data_validation_pb2, example_pb2,
                           synthetic_data_pb2 as syn, trajectory_pb2)


@pytest.fixture(scope="module")
def data(stack):
    with stack.channel("data") as ch:
        yield data_service_pb2_grpc.DataServiceStub(ch)


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def fails(call, code=grpc.StatusCode.INVALID_ARGUMENT):
    with pytest.raises(grpc.RpcError) as err:
        call()
    failure = failure_of(err.value)
    assert failure.code == code, failure
    return failure


def stream_all(data, dataset_id: str) -> list[example_pb2.Example]:
    return [e for batch in data.StreamExamples(pb.StreamExamplesRequest(dataset_id=dataset_id, batch_size=128))
            for e in batch.examples]


# ------------------------------------------------------------------ datasets
def test_dataset_lifecycle(data):
    dataset_id = uid("ds")
    examples = [example_pb2.Example(input=f"where is order {i}", expected_output="track" if i % 4 else "refund",
                                    level=1 + i % 3) for i in range(40)]
    ds = data.CreateDataset(pb.CreateDatasetRequest(dataset_id=dataset_id, examples=examples,
                                                    labels={"origin": "test"})).dataset
    assert ds.source == "upload" and dict(ds.labels) == {"origin": "test"}
    assert ds.statistics.example_count == 40 and dict(ds.statistics.output_counts) == {"track": 30, "refund": 10}
    assert ds.statistics.output_shares["refund"] == pytest.approx(0.25)
    assert dict(ds.statistics.level_counts) == {1: 14, 2: 13, 3: 13}
    assert data.GetDataset(pb.GetDatasetRequest(dataset_id="latest")).dataset.dataset_id == dataset_id
    assert [e.input for e in stream_all(data, dataset_id)] == [e.input for e in examples]
    # immutable: the id cannot be reused; a new version is a new id
    fails(lambda: data.CreateDataset(pb.CreateDatasetRequest(dataset_id=dataset_id, examples=examples[:1])),
          grpc.StatusCode.ALREADY_EXISTS)
    assert fails(lambda: data.CreateDataset(pb.CreateDatasetRequest(dataset_id="latest", examples=examples))
                 ).field == "dataset_id"
    assert fails(lambda: data.CreateDataset(pb.CreateDatasetRequest(
        examples=[example_pb2.Example(input="x", expected_output="")]))).field == "examples[0].expected_output"
    data.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=dataset_id))
    fails(lambda: data.GetDataset(pb.GetDatasetRequest(dataset_id=dataset_id)), grpc.StatusCode.NOT_FOUND)
    fails(lambda: data.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=dataset_id)), grpc.StatusCode.NOT_FOUND)


def test_jsonl_upload_is_all_or_nothing_with_line_numbers(data):
    dataset_id = uid("jsonl")
    bad = b'{"input": "a", "expected_output": "x"}\n{"input": "b"}\n\n{oops\n{"input": "c", "expected_output": "y"}\n'
    failure = fails(lambda: data.CreateDatasetFromJsonl(pb.CreateDatasetFromJsonlRequest(
        dataset_id=dataset_id, content=bad)))
    assert failure.field == "line 2" and failure.metadata["lines"] == "2,4"
    assert "line 4: not valid JSON" in failure.message
    fails(lambda: data.GetDataset(pb.GetDatasetRequest(dataset_id=dataset_id)), grpc.StatusCode.NOT_FOUND)
    good = "\n".join(json.dumps({"input": f"text {i}", "expectedOutput": "a" if i % 2 else "b",
                                 "metadata": {"row": i}}) for i in range(10)).encode()
    resp = data.CreateDatasetFromJsonl(pb.CreateDatasetFromJsonlRequest(dataset_id=dataset_id, content=good,
                                                                        source="import"))
    assert resp.line_count == 10 and resp.dataset.statistics.example_count == 10
    assert stream_all(data, dataset_id)[3].metadata["row"] == 3
    listed = data.ListDatasets(pb.ListDatasetsRequest(source="import", page_size=100, include_total_size=True))
    assert dataset_id in [d.dataset_id for d in listed.datasets]
    assert all(d.source == "import" for d in listed.datasets) and listed.total_size == len(listed.datasets)


# ------------------------------------------------------------------ synthetic data
def test_generate_seed_000_request_and_statistics_match_the_data(data):
    request = pb.GenerateSyntheticDataRequest(
        scenario_type="customer-support", count=1000, difficulty="medium", edge_cases=True, diversity=0.8, seed=42,
        constraints=syn.GenerationConstraints(max_length=500, languages=["en"],
                                              topics=["billing", "technical", "account"]))
    resp = data.GenerateSyntheticData(request)
    ds, stats = resp.dataset, resp.statistics
    assert ds.source == "synthetic" and resp.seed == 42 and resp.scenario == "customer-support"
    assert ds.labels["difficulty"] == "medium" and ds.labels["seed"] == "42"
    assert stats.generated == ds.statistics.example_count == 1000
    examples = stream_all(data, ds.dataset_id)
    assert len(examples) == 1000
    assert stats.average_length == pytest.approx(sum(len(e.input) for e in examples) / 1000)
    assert stats.unique_scenarios == len({normalize(e.input) for e in examples})
    assert stats.edge_cases == sum(e.metadata["edge_case"] for e in examples) > 0
    assert {e.metadata["topic"] for e in examples} == {"billing", "technical", "account"}
    assert max(len(e.input) for e in examples) <= 500
    assert all(e.level == 3 for e in examples if e.metadata["edge_case"])
    assert 0 < stats.diversity <= 1
    # deterministic: the same seed gives the same content under a new id
    again = data.GenerateSyntheticData(request).dataset
    assert again.dataset_id != ds.dataset_id and again.sha256 == ds.sha256


def test_data_types_modules_and_custom_templates(data):
    resp = data.GenerateSyntheticData(pb.GenerateSyntheticDataRequest(
        data_type="customer_queries", count=100, difficulty="medium", seed=1,
        constraints=syn.GenerationConstraints(topics=["billing", "technical"])))
    assert resp.scenario == "customer-support" and resp.dataset.labels["data_type"] == "customer_queries"
    assert set(resp.dataset.statistics.output_counts) == {"refund_request", "payment_failed", "invoice_question",
                                                          "login_issue", "bug_report", "performance_issue"}

    template = syn.ScenarioTemplate(
        outputs=[syn.TemplateOutput(output="escalate", templates=["I need a {role} now", "get me a {role}"]),
                 syn.TemplateOutput(output="self_serve", templates=["how do I {task} myself", "where can I {task}"])],
        shared_templates=["question: {subject}"])
    template.slots["role"].values.extend(["manager", "supervisor", "human"])
    template.outputs[1].slots["task"].values.extend(["reset my password", "download an invoice"])
    template.outputs[0].slots["subject"].values.extend(["talking to a person"])
    template.outputs[1].slots["subject"].values.extend(["doing it myself"])
    module_id = uid("module")
    module = data.CreateTrainingModule(pb.CreateTrainingModuleRequest(
        module_id=module_id, display_name="Escalation", template=template)).module
    assert list(module.outputs) == ["escalate", "self_serve"] and list(module.topics) == ["general"]
    assert data.GetTrainingModule(pb.GetTrainingModuleRequest(module_id=module_id)).module.template == template
    assert module_id in [m.module_id for m in data.ListTrainingModules(pb.ListTrainingModulesRequest()).modules]
    fails(lambda: data.CreateTrainingModule(pb.CreateTrainingModuleRequest(module_id=module_id, template=template)),
          grpc.StatusCode.ALREADY_EXISTS)

    # seed 001: sample_count 1-50 on that surface -> the caller passes its limit
    gen = data.GenerateSyntheticData(pb.GenerateSyntheticDataRequest(module_id=module_id, count=20, max_count=50,
                                                                     difficulty="hard", seed=3))
    assert gen.dataset.labels["module_id"] == module_id and gen.statistics.generated == 20
    assert set(gen.dataset.statistics.output_counts) == {"escalate", "self_serve"}
    failure = fails(lambda: data.GenerateSyntheticData(pb.GenerateSyntheticDataRequest(
        module_id=module_id, count=51, max_count=50)))
    assert failure.field == "count" and failure.metadata["limit"] == "50"
    fails(lambda: data.GenerateSyntheticData(pb.GenerateSyntheticDataRequest(module_id="no-such-module")),
          grpc.StatusCode.NOT_FOUND)

    custom = data.GenerateSyntheticData(pb.GenerateSyntheticDataRequest(scenario_type="custom", template=template,
                                                                        count=30, seed=5))
    assert custom.scenario == "custom" and custom.statistics.generated == 30
    data.DeleteTrainingModule(pb.DeleteTrainingModuleRequest(module_id=module_id))
    fails(lambda: data.GetTrainingModule(pb.GetTrainingModuleRequest(module_id=module_id)), grpc.StatusCode.NOT_FOUND)


def test_a_topic_outside_the_catalogue_is_generated_and_reported(data):
    """Seed 002's example topics for customer_queries: "billing" is in the catalogue, "support"
    is not; both come back, and the answer, the dataset and the examples say which is generic."""
    request = pb.GenerateSyntheticDataRequest(data_type="customer_queries", count=100, difficulty="medium", seed=5,
                                              constraints=syn.GenerationConstraints(topics=["billing", "support"]))
    resp = data.GenerateSyntheticData(request)
    assert list(resp.generic_topics) == ["support"] and resp.scenario == "customer-support"
    assert resp.dataset.labels["generic_topics"] == "support" and resp.dataset.labels["topics"] == "billing,support"
    assert dict(resp.statistics.topic_counts) == {"billing": 75, "support": 25}
    assert set(resp.dataset.statistics.output_counts) == {"refund_request", "payment_failed", "invoice_question",
                                                          "support"}
    examples = stream_all(data, resp.dataset.dataset_id)
    assert len(examples) == 100
    for e in examples:
        generic = e.metadata["topic"] == "support"
        assert e.metadata["generic_topic"] is generic and (e.expected_output == "support") is generic
    assert data.GenerateSyntheticData(request).dataset.sha256 == resp.dataset.sha256  # same seed, same data
    catalogue_only = data.GenerateSyntheticData(pb.GenerateSyntheticDataRequest(
        data_type="customer_queries", count=10, seed=5, constraints=syn.GenerationConstraints(topics=["Billing"])))
    assert not catalogue_only.generic_topics and "generic_topics" not in catalogue_only.dataset.labels


@pytest.mark.parametrize("request_fields, field, phrase", [
    ({}, "scenario_type", "one of scenario_type, data_type or module_id"),
    ({"scenario_type": "weather"}, "scenario_type", "customer-support"),
    ({"data_type": "weather_reports"}, "data_type", "customer_queries"),
    ({"scenario_type": "custom"}, "template", "required"),
    ({"scenario_type": "customer-support", "count": 100_001}, "count", "100000"),
    ({"scenario_type": "customer-support", "count": 0}, "count", "between 1"),
    ({"scenario_type": "customer-support", "difficulty": "extreme"}, "difficulty", "easy, medium, hard"),
    ({"scenario_type": "customer-support", "diversity": 2.0}, "diversity", "[0, 1]"),
    ({"scenario_type": "customer-support", "constraints": {"languages": ["en", "fr"]}}, "constraints.languages[1]",
     "cannot generate language 'fr'"),
    ({"scenario_type": "customer-support", "constraints": {"max_length": 3}}, "constraints.max_length", "10"),
])
def test_bad_generation_requests_name_the_field(data, request_fields, field, phrase):
    constraints = request_fields.pop("constraints", None)
    request = pb.GenerateSyntheticDataRequest(**request_fields)
    if constraints:
        request.constraints.CopyFrom(syn.GenerationConstraints(**constraints))
    failure = fails(lambda: data.GenerateSyntheticData(request))
    assert failure.field == field and phrase in failure.message, failure


def test_list_scenario_types(data):
    scenarios = {s.scenario_type: s for s in data.ListScenarioTypes(pb.ListScenarioTypesRequest()).scenarios}
    assert list(scenarios) == ["customer-support", "code-generation", "data-analysis", "content-creation",
                               "task-automation", "custom"]
    assert "customer_queries" in scenarios["customer-support"].data_types
    assert list(scenarios["customer-support"].topics) == ["billing", "technical", "account", "shipping"]


# ------------------------------------------------------------------ validation
def test_validate_a_generated_dataset_and_inline_examples(data):
    ds = data.GenerateSyntheticData(pb.GenerateSyntheticDataRequest(
        scenario_type="data-analysis", count=600, difficulty="easy", seed=9)).dataset
    report = data.ValidateDataset(pb.ValidateDatasetRequest(dataset_id=ds.dataset_id))
    assert report.valid and report.dataset_id == ds.dataset_id and not report.issues
    assert report.statistics.total_examples == 600 and report.statistics.average_quality > 0.95
    assert sum(report.statistics.class_balance.values()) == pytest.approx(1)

    inline = [example_pb2.Example(input=text, expected_output=out) for text, out in [
        ("refund my order", "billing")] * 3 + [("", "billing"), ("refund my order", "technical")] +
        [(f"the app crashes on screen {i}", "technical") for i in range(20)]]
    report = data.ValidateDataset(pb.ValidateDatasetRequest(examples=pb.ExampleList(examples=inline)))
    assert not report.valid and report.dataset_id == ""
    assert {f.type for f in report.issues} == {"empty", "conflicting_labels"}
    duplicate = next(f for f in report.warnings if f.type == "duplicate")
    assert duplicate.count == 2 and list(duplicate.example_indexes) == [1, 2]
    assert report.statistics.duplicates == 2
    imbalance = next(f for f in report.warnings if f.type == "imbalance")
    assert imbalance.severity == data_validation_pb2.SEVERITY_MEDIUM and "billing" in imbalance.message
    only_balance = data.ValidateDataset(pb.ValidateDatasetRequest(
        examples=pb.ExampleList(examples=inline), checks=data_validation_pb2.ValidationChecks(balance=True)))
    assert only_balance.valid and {f.type for f in only_balance.warnings} == {"imbalance"}
    assert fails(lambda: data.ValidateDataset(pb.ValidateDatasetRequest())).field == "dataset_id"
    fails(lambda: data.ValidateDataset(pb.ValidateDatasetRequest(dataset_id="nope")), grpc.StatusCode.NOT_FOUND)
    bad_option = pb.ValidateDatasetRequest(dataset_id=ds.dataset_id)
    bad_option.options.near_duplicate_threshold = 1.5
    assert fails(lambda: data.ValidateDataset(bad_option)).field == "options.near_duplicate_threshold"



def test_validate_reports_wrong_labels(data):
    clean = hwu64_subset()
    shuffled = shuffle_labels(clean, 0.9, seed=1)
    ds = data.CreateDataset(pb.CreateDatasetRequest(examples=[example_pb2.Example(**e) for e in shuffled])).dataset
    report = data.ValidateDataset(pb.ValidateDatasetRequest(dataset_id=ds.dataset_id))
    assert not report.valid
    (issue,) = [f for f in report.issues if f.type == "label_issues"]
    assert issue.severity == data_validation_pb2.SEVERITY_HIGH
    s = report.statistics
    assert s.label_issues_checked == 840 and s.label_noise_rate > 0.6
    assert s.label_issues == issue.count and s.label_noise_rate == pytest.approx(s.label_issues / 840)
    assert len(report.label_issues) == 100 < s.label_issues  # the most doubtful 100, all counted
    first = report.label_issues[0]
    assert first.input == shuffled[first.example_index]["input"]
    assert first.given_label == shuffled[first.example_index]["expected_output"] != first.likely_label
    assert 0 <= first.given_label_confidence <= first.likely_label_confidence <= 1
    assert [x.given_label_confidence for x in report.label_issues] == sorted(
        x.given_label_confidence for x in report.label_issues)

    inline = pb.ExampleList(examples=[example_pb2.Example(**e) for e in clean])
    fine = data.ValidateDataset(pb.ValidateDatasetRequest(examples=inline))
    assert fine.valid and fine.statistics.label_noise_rate < 0.06
    assert fine.statistics.average_quality - s.average_quality > 0.3

    # The flag switches the check off; unset it follows `quality` (seed 000 names only its four checks).
    off = data.ValidateDataset(pb.ValidateDatasetRequest(
        dataset_id=ds.dataset_id, checks=data_validation_pb2.ValidationChecks(quality=True, label_issues=False)))
    assert off.valid and not off.label_issues and off.statistics.label_issues_checked == 0
    seed_000 = data.ValidateDataset(pb.ValidateDatasetRequest(
        dataset_id=ds.dataset_id, checks=data_validation_pb2.ValidationChecks(
            duplicates=True, quality=True, balance=True, bias=True)))
    assert not seed_000.valid and seed_000.statistics.average_quality == pytest.approx(s.average_quality)
    no_quality = data.ValidateDataset(pb.ValidateDatasetRequest(
        dataset_id=ds.dataset_id, checks=data_validation_pb2.ValidationChecks(balance=True)))
    assert no_quality.statistics.label_issues_checked == 0

    lenient = pb.ValidateDatasetRequest(dataset_id=ds.dataset_id)
    lenient.options.max_label_noise = 1.0
    assert data.ValidateDataset(lenient).valid
    bad = pb.ValidateDatasetRequest(dataset_id=ds.dataset_id)
    bad.options.max_label_noise = 0
    assert fails(lambda: data.ValidateDataset(bad)).field == "options.max_label_noise"

    few = data.ValidateDataset(pb.ValidateDatasetRequest(examples=pb.ExampleList(examples=inline.examples[:30])))
    (limited,) = [f for f in few.warnings if f.type == "label_check_limited"]
    assert "labels were not checked" in limited.message and few.statistics.label_issues_checked == 0

# ------------------------------------------------------------------ trajectories
def runtime(agent: str, i: int, calls: int) -> trajectory_pb2.Trajectory:
    t = trajectory_pb2.Trajectory(trajectory_id=f"{agent}-rt-{i}", agent_id=agent, source="chat",
                                  status=trajectory_pb2.TRAJECTORY_STATUS_COMPLETED)
    t.start_time.FromMilliseconds(1718000000000 + i)
    t.end_time.FromMilliseconds(1718000010000 + i)
    for j in range(calls):
        t.llm_calls.add(model="small-llm", prompt=f"user asks thing {i}.{j}", response=f"answer {j}",
                        prompt_tokens=10, completion_tokens=5, total_tokens=15)
    t.provider_accesses.add(provider="memory", purpose="recall").data.update({"hits": 2})
    return t


def grpo(job: str, i: int) -> trajectory_pb2.Trajectory:
    t = trajectory_pb2.Trajectory(trajectory_id=f"{job}-t{i:05d}", agent_id="grpo-agent", source="grpo", job_id=job,
                                  iteration=i // 8, query=f"write function {i % 8}", reward=(i % 10) / 10,
                                  normalized_reward=(i % 10) / 10 - 0.45, advantage=0.1, success=i % 3 != 0)
    t.execution_time.FromMilliseconds(1500)
    step = t.steps.add()
    step.state.update({"context": "..."})
    step.action.update({"tool": "code_generator", "params": "..."})
    step.result.update({"code": "def sort(arr): ..."})
    step.timestamp.FromSeconds(1760697010)
    step.duration.FromMilliseconds(500)
    t.steps.add().action.update({"tool": "finish"})
    return t


def ingest(data, trajectories, chunk: int = 100) -> pb.IngestTrajectoriesResponse:
    batches = [pb.IngestTrajectoriesRequest(trajectories=trajectories[i:i + chunk])
               for i in range(0, len(trajectories), chunk)]
    return data.IngestTrajectories(iter(batches))


def test_ingest_is_idempotent_and_lists_page_both_ways(data):
    agent = uid("agent")
    trajectories = [runtime(agent, i, calls=1 + i % 4) for i in range(30)]
    before = Timestamp()
    before.FromDatetime(dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=5))
    first = ingest(data, trajectories, chunk=7)
    assert (first.received, first.created, first.updated, first.unchanged) == (30, 30, 0, 0)
    assert list(first.trajectory_ids) == [t.trajectory_id for t in trajectories]
    changed = runtime(agent, 0, calls=2)
    changed.status = trajectory_pb2.TRAJECTORY_STATUS_FAILED
    again = ingest(data, trajectories[:10] + [changed])
    assert (again.received, again.created, again.updated, again.unchanged) == (11, 0, 1, 10)

    flt = pb.TrajectoryFilter(agent_id=agent)
    page = data.ListTrajectories(pb.ListTrajectoriesRequest(filter=flt, page_size=10, skip=5, include_total_size=True))
    assert page.total_size == 30 and len(page.trajectories) == 10
    # newest first; the update kept trajectory 0 in its place (first-ingest order)
    assert [t.trajectory_id for t in page.trajectories] == [f"{agent}-rt-{i}" for i in range(24, 14, -1)]
    basic = page.trajectories[0]
    assert basic.llm_call_count == 1 + 24 % 4 and not basic.llm_calls and basic.provider_access_count == 1
    seen, token = [], ""
    while True:
        resp = data.ListTrajectories(pb.ListTrajectoriesRequest(filter=flt, page_size=12, page_token=token))
        seen += [t.trajectory_id for t in resp.trajectories]
        token = resp.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 30
    # AIP-158: skip counts from the token's position; the token only continues its own filter
    after = data.ListTrajectories(pb.ListTrajectoriesRequest(filter=flt, page_size=10, skip=5, include_total_size=True,
                                                             page_token=page.next_page_token))
    assert [t.trajectory_id for t in after.trajectories] == [f"{agent}-rt-{i}" for i in range(9, -1, -1)]
    assert fails(lambda: data.ListTrajectories(pb.ListTrajectoriesRequest(page_token=page.next_page_token, skip=5))
                 ).field == "page_token"
    assert fails(lambda: data.ListTrajectories(pb.ListTrajectoriesRequest(skip=-1))).field == "skip"

    full = data.GetTrajectory(pb.GetTrajectoryRequest(trajectory_id=f"{agent}-rt-0")).trajectory
    assert full.status == trajectory_pb2.TRAJECTORY_STATUS_FAILED and len(full.llm_calls) == 2
    assert full.provider_accesses[0].data["hits"] == 2 and full.create_time.seconds >= before.seconds
    fails(lambda: data.GetTrajectory(pb.GetTrajectoryRequest(trajectory_id="nope")), grpc.StatusCode.NOT_FOUND)
    assert data.CountTrajectories(pb.CountTrajectoriesRequest(filter=pb.TrajectoryFilter(
        agent_id=agent, since=before))).count == 30
    later = Timestamp()
    later.FromDatetime(dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1))
    assert data.CountTrajectories(pb.CountTrajectoriesRequest(filter=pb.TrajectoryFilter(
        agent_id=agent, since=later))).count == 0
    # [since, before): a window ending before the ingest counts none of them, one after it all
    assert data.CountTrajectories(pb.CountTrajectoriesRequest(filter=pb.TrajectoryFilter(
        agent_id=agent, before=before))).count == 0
    assert data.CountTrajectories(pb.CountTrajectoriesRequest(filter=pb.TrajectoryFilter(
        agent_id=agent, since=before, before=later))).count == 30

    bad = runtime(agent, 99, calls=1)
    bad.llm_calls[0].completion_tokens = -3
    failure = fails(lambda: ingest(data, trajectories[:5] + [bad]))
    assert failure.field == "trajectories[5].llm_calls[0].completion_tokens"

    # build a dataset (seed 004): trajectories with >= 2 LLM calls, FAILED ones skipped
    built = data.BuildDatasetFromTrajectories(pb.BuildDatasetFromTrajectoriesRequest(
        min_llm_calls_per_trajectory=2, filter=flt))
    eligible = [t for t in trajectories[1:] if len(t.llm_calls) >= 2]
    assert built.trajectory_count == len(eligible) == built.dataset.trajectory_count
    assert built.example_count == sum(len(t.llm_calls) for t in eligible) == built.dataset.statistics.example_count
    assert built.dataset.source == "trajectories" and built.dataset.labels["agent_id"] == agent
    examples = stream_all(data, built.dataset.dataset_id)
    assert examples[0].input.startswith("user asks thing") and examples[0].expected_output.startswith("answer")
    capped = data.BuildDatasetFromTrajectories(pb.BuildDatasetFromTrajectoriesRequest(limit=5, filter=flt))
    assert capped.trajectory_count == 5
    listed = data.ListDatasets(pb.ListDatasetsRequest(source="trajectories", page_size=1000)).datasets
    assert {built.dataset.dataset_id, capped.dataset.dataset_id} <= {d.dataset_id for d in listed}
    fails(lambda: data.BuildDatasetFromTrajectories(pb.BuildDatasetFromTrajectoriesRequest(
        min_llm_calls_per_trajectory=50, filter=flt)), grpc.StatusCode.FAILED_PRECONDITION)


def test_export_grpo_trajectories_streams_with_totals(data):
    job = uid("job")
    trajectories = [grpo(job, i) for i in range(1500)]
    assert ingest(data, trajectories, chunk=500).created == 1500

    def export(**fields):
        messages = list(data.ExportTrajectories(pb.ExportTrajectoriesRequest(job_id=job, **fields)))
        return messages[0], [t for m in messages for t in m.trajectories], len(messages)

    head, got, n_messages = export()
    assert (head.total_count, head.returned_count, head.has_more) == (1500, 1000, True)   # default limit 1000
    assert len(got) == 1000 and n_messages > 1                                              # streamed in batches
    assert [t.trajectory_id for t in got] == [t.trajectory_id for t in trajectories[:1000]]  # iteration order
    step = got[0].steps[0]
    assert step.action["tool"] == "code_generator" and step.result["code"].startswith("def sort")
    assert step.duration.ToMilliseconds() == 500 and got[0].execution_time.ToMilliseconds() == 1500

    head, got, _ = export(success_only=True, min_reward=0.5, limit=100, offset=10)
    matching = [t for t in trajectories if t.success and t.reward >= 0.5]
    assert (head.total_count, head.returned_count, head.has_more) == (len(matching), 100, True)
    assert [t.trajectory_id for t in got] == [t.trajectory_id for t in matching[10:110]]
    head, got, _ = export(limit=10000, offset=1490)
    assert (head.total_count, head.returned_count, head.has_more, len(got)) == (1500, 10, False, 10)
    head, got, _ = export(offset=5000)
    assert (head.returned_count, head.has_more, got) == (0, False, [])

    failure = fails(lambda: export(limit=10001))
    assert failure.field == "limit" and failure.metadata["limit"] == "10000" and "10000" in failure.message
    assert fails(lambda: export(limit=0)).field == "limit"
    assert fails(lambda: export(offset=-1)).field == "offset"
    assert fails(lambda: list(data.ExportTrajectories(pb.ExportTrajectoriesRequest()))).field == "job_id"

    # GRPO trajectories build datasets from their steps (successful ones only)
    built = data.BuildDatasetFromTrajectories(pb.BuildDatasetFromTrajectoriesRequest(
        limit=30, filter=pb.TrajectoryFilter(job_id=job)))
    assert built.trajectory_count == 20 and built.example_count == 40
    assert dict(built.dataset.statistics.output_counts) == {"code_generator": 20, "finish": 20}
