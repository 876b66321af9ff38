"""DataService RPCs: validate the request, call the core, build the response."""
from __future__ import annotations

import json
import logging
import math
import secrets
import time
from collections.abc import Iterator
from typing import Any

from trainhouse.common import identity
from trainhouse.core.errors import FailedPrecondition, InvalidArgument
from trainhouse.common.example_codec import example_dicts, example_proto
from trainhouse.core.examples import Example, parse_examples
from trainhouse.common.logs import log
from trainhouse.common.pagination import page_request
from trainhouse.common.validation import resource_id
from trainhouse.data import convert, statistics
from trainhouse.data.jsonl import parse_jsonl
from trainhouse.data.store import DataStore
from trainhouse.data.synthetic.generation_config import DEFAULT_COUNT, GenerationConfig, check_count
from trainhouse.data.synthetic.generator import SyntheticGenerator
from trainhouse.data.synthetic.scenarios import (CUSTOM, SCENARIOS, builtin, check_scenario_type, data_types_of,
                                               resolve_data_type)
from trainhouse.data.synthetic.templates import CompiledScenario, compile_scenario
from trainhouse.data.trajectories import canonical, extract_examples
from trainhouse.data.trajectory_store import TrajectoryFilter, TrajectoryStore
from trainhouse.data.validator import ValidationConfig, validate
from trainhouse.v1 import data_service_pb2, data_service_pb2_grpc, synthetic_data_pb2, trajectory_pb2
from trainhouse.core.ids import random_id

logger = logging.getLogger("trainhouse.data")

MAX_EXAMPLES = 1_000_000
MAX_INGEST = 100_000
EXPORT_DEFAULT_LIMIT = 1000
EXPORT_MAX_LIMIT = 10_000
EXPORT_BATCH = 200


def _example_dicts(parsed: list[Example]) -> list[dict[str, Any]]:
    return [{"input": e.input, "expected_output": e.expected_output, "feedback": e.feedback,
             "weight": e.weight, "level": e.level, "metadata": e.metadata} for e in parsed]


def _new_id(value: str, field: str, prefix: str) -> str:
    if not value:
        return random_id(prefix, 12)
    resource_id(value, field)
    if value == "latest":
        raise InvalidArgument(field, "'latest' is reserved")
    return value


def _visible() -> str | None:
    """The account the caller's reads are restricted to (None: admin sees every account). Each store
    applies it in one place, so another account's resource answers exactly like a missing one."""
    return identity.current().account_filter


def _owner() -> str:
    """The account a resource created by this call belongs to: the caller's."""
    return identity.current().account


def _required(value: str, field: str) -> str:
    if not value:
        raise InvalidArgument(field, "is required")
    return value


class DataServicer(data_service_pb2_grpc.DataServiceServicer):
    def __init__(self, store: DataStore, trajectories: TrajectoryStore):
        self.store = store
        self.trajectories = trajectories

    # ------------------------------------------------------------------ datasets
    def _create(self, dataset_id: str, source: str, examples: list[dict[str, Any]], *,
                labels: dict[str, str] | None = None, trajectory_count: int = 0) -> dict[str, Any]:
        if len(examples) > MAX_EXAMPLES:
            raise InvalidArgument("examples", f"at most {MAX_EXAMPLES} examples per dataset",
                                  metadata={"limit": str(MAX_EXAMPLES)})
        return self.store.create(dataset_id, source, examples, statistics.compute(examples),
                                 statistics.content_hash(examples), account=_owner(), labels=labels,
                                 trajectory_count=trajectory_count)

    def CreateDataset(self, request, context):
        dataset_id = _new_id(request.dataset_id, "dataset_id", "dataset")
        if not request.examples:
            raise InvalidArgument("examples", "a dataset needs at least one example")
        if len(request.examples) > MAX_EXAMPLES:
            raise InvalidArgument("examples", f"at most {MAX_EXAMPLES} examples per dataset",
                                  metadata={"limit": str(MAX_EXAMPLES)})
        examples = _example_dicts(parse_examples(example_dicts(request.examples), "examples"))
        row = self._create(dataset_id, request.source or "upload", examples, labels=dict(request.labels))
        return data_service_pb2.CreateDatasetResponse(dataset=convert.dataset_proto(row))

    def CreateDatasetFromJsonl(self, request, context):
        dataset_id = _new_id(request.dataset_id, "dataset_id", "dataset")
        if not request.content:
            raise InvalidArgument("content", "is required: one example object per line")
        parsed, lines = parse_jsonl(request.content)
        row = self._create(dataset_id, request.source or "upload", _example_dicts(parsed), labels=dict(request.labels))
        return data_service_pb2.CreateDatasetFromJsonlResponse(dataset=convert.dataset_proto(row), line_count=lines)

    def GetDataset(self, request, context):
        row = self.store.get(resource_id(request.dataset_id, "dataset_id"), _visible())
        return data_service_pb2.GetDatasetResponse(dataset=convert.dataset_proto(row))

    def ListDatasets(self, request, context):
        datasets = self.store.list(page_request(request, 50, 1000), _visible(), request.source)
        return data_service_pb2.ListDatasetsResponse(
            datasets=[convert.dataset_proto(r) for r in datasets.rows], next_page_token=datasets.next_page_token,
            total_size=datasets.total_size)

    def DeleteDataset(self, request, context):
        self.store.delete(resource_id(request.dataset_id, "dataset_id"), _visible())
        return data_service_pb2.DeleteDatasetResponse()

    def StreamExamples(self, request, context):
        resource_id(request.dataset_id, "dataset_id")
        if request.batch_size < 0:
            raise InvalidArgument("batch_size", "must be >= 0")
        dataset_id = self.store.get(request.dataset_id, _visible())["dataset_id"]
        batch = min(request.batch_size or 500, 5000)
        offset = 0
        while context.is_active():
            rows = self.store.examples(dataset_id, offset, batch)
            if not rows:
                return
            yield data_service_pb2.StreamExamplesResponse(examples=[
                example_proto({**r, "metadata": json.loads(r["metadata_json"] or "{}")}) for r in rows])
            offset += len(rows)

    # ------------------------------------------------------------------ synthetic data
    def _scenario(self, request) -> tuple[CompiledScenario, dict[str, str]]:
        """The scenario a generation request names, and provenance labels for the dataset."""
        which = request.WhichOneof("generator")
        if which is None:
            raise InvalidArgument("scenario_type", "one of scenario_type, data_type or module_id is required")
        has_template = request.HasField("template")
        if which == "scenario_type":
            scenario_type = check_scenario_type(request.scenario_type)
            if scenario_type == CUSTOM:
                if not has_template:
                    raise InvalidArgument("template", "is required with scenario_type 'custom'")
                return (compile_scenario(convert.template_dict(request.template), CUSTOM, "template"),
                        {"scenario_type": CUSTOM})
            if has_template:
                raise InvalidArgument("template", "is only accepted with scenario_type 'custom'")
            return builtin(scenario_type), {"scenario_type": scenario_type}
        if has_template:
            raise InvalidArgument("template", "is only accepted with scenario_type 'custom'")
        if which == "data_type":
            scenario_type = resolve_data_type(request.data_type)
            return builtin(scenario_type), {"scenario_type": scenario_type, "data_type": request.data_type}
        module_id = resource_id(request.module_id, "module_id")
        row = self.store.get_module(module_id, _visible())
        return (compile_scenario(json.loads(row["template_json"]), f"module:{module_id}", "template"),
                {"module_id": module_id})

    def GenerateSyntheticData(self, request, context):
        scenario, labels = self._scenario(request)
        count = request.count if request.HasField("count") else DEFAULT_COUNT
        check_count(count, request.max_count)
        c = request.constraints
        config = GenerationConfig(
            count=count, difficulty=request.difficulty.strip().lower() or "medium", edge_cases=request.edge_cases,
            edge_case_rate=request.edge_case_rate if request.HasField("edge_case_rate") else 0.15,
            diversity=request.diversity if request.HasField("diversity") else 0.7,
            max_length=c.max_length if c.HasField("max_length") else None,
            topics=tuple(c.topics), languages=tuple(c.languages) or ("en",),
            seed=request.seed if request.HasField("seed") else secrets.randbelow(2 ** 63),
            label_by=request.label_by.strip().lower() or "output")
        dataset_id = _new_id(request.dataset_id, "dataset_id", "dataset")
        self.store.ensure_new(dataset_id)
        started = time.perf_counter()
        result = SyntheticGenerator(scenario, config).generate()
        generated_s = time.perf_counter() - started
        labels.update({"difficulty": config.difficulty, "diversity": f"{config.diversity:g}",
                       "edge_cases": str(config.edge_cases).lower(), "seed": str(config.seed),
                       "label_by": config.label_by})
        if config.topics:
            labels["topics"] = ",".join(config.topics)
        if result.generic_topics:
            labels["generic_topics"] = ",".join(result.generic_topics)
        if config.max_length:
            labels["max_length"] = str(config.max_length)
        row = self._create(dataset_id, "synthetic", result.examples, labels=labels)
        log(logger, "synthetic data generated", dataset_id=dataset_id, scenario=scenario.name, count=config.count,
            seed=config.seed, generate_s=round(generated_s, 3), total_s=round(time.perf_counter() - started, 3))
        return data_service_pb2.GenerateSyntheticDataResponse(
            dataset=convert.dataset_proto(row), statistics=convert.generation_statistics_proto(result.statistics),
            seed=config.seed, scenario=scenario.name, generic_topics=result.generic_topics)

    def ListScenarioTypes(self, request, context):
        out = []
        for name, spec in SCENARIOS.items():
            compiled = builtin(name)
            out.append(synthetic_data_pb2.ScenarioInfo(
                scenario_type=name, description=spec["description"], topics=compiled.topics,
                outputs=[o.output for o in compiled.outputs], data_types=data_types_of(name)))
        out.append(synthetic_data_pb2.ScenarioInfo(
            scenario_type=CUSTOM, description="Your own outputs and templates, given as `template`."))
        return data_service_pb2.ListScenarioTypesResponse(scenarios=out)

    def CreateTrainingModule(self, request, context):
        module_id = _new_id(request.module_id, "module_id", "module")
        if not request.HasField("template"):
            raise InvalidArgument("template", "is required")
        spec = convert.template_dict(request.template)
        compiled = compile_scenario(spec, f"module:{module_id}", "template")
        row = self.store.create_module(module_id, request.display_name or module_id, request.description, spec,
                                       account=_owner())
        return data_service_pb2.CreateTrainingModuleResponse(module=convert.module_proto(row, compiled))

    def _module(self, row: dict[str, Any]) -> synthetic_data_pb2.TrainingModule:
        compiled = compile_scenario(json.loads(row["template_json"]), f"module:{row['module_id']}", "template")
        return convert.module_proto(row, compiled)

    def GetTrainingModule(self, request, context):
        row = self.store.get_module(_required(request.module_id, "module_id"), _visible())
        return data_service_pb2.GetTrainingModuleResponse(module=self._module(row))

    def ListTrainingModules(self, request, context):
        modules = self.store.list_modules(page_request(request, 50, 1000), _visible())
        return data_service_pb2.ListTrainingModulesResponse(
            modules=[self._module(r) for r in modules.rows], next_page_token=modules.next_page_token,
            total_size=modules.total_size)

    def DeleteTrainingModule(self, request, context):
        self.store.delete_module(_required(request.module_id, "module_id"), _visible())
        return data_service_pb2.DeleteTrainingModuleResponse()

    # ------------------------------------------------------------------ validation
    def ValidateDataset(self, request, context):
        which = request.WhichOneof("target")
        if which is None:
            raise InvalidArgument("dataset_id", "one of dataset_id or examples is required")
        if which == "dataset_id":
            row = self.store.get(resource_id(request.dataset_id, "dataset_id"), _visible())
            dataset_id = row["dataset_id"]
            examples = self.store.all_examples(dataset_id)
        else:
            dataset_id = ""
            items = request.examples.examples
            if not items:
                raise InvalidArgument("examples.examples", "needs at least one example")
            if len(items) > MAX_EXAMPLES:
                raise InvalidArgument("examples.examples", f"at most {MAX_EXAMPLES} examples",
                                      metadata={"limit": str(MAX_EXAMPLES)})
            # Not parsed with parse_examples: empty or malformed examples are findings, not errors.
            examples = [{"input": e.input, "expected_output": e.expected_output, "feedback": e.feedback}
                        for e in items]
        checks = request.checks
        o = request.options
        defaults = ValidationConfig()
        config = ValidationConfig(
            duplicates=checks.duplicates if request.HasField("checks") else True,
            quality=checks.quality if request.HasField("checks") else True,
            balance=checks.balance if request.HasField("checks") else True,
            bias=checks.bias if request.HasField("checks") else True,
            # Unset follows `quality`, so a seed-000 request naming its four checks gets a score that sees labels.
            label_issues=checks.label_issues if checks.HasField("label_issues")
            else (checks.quality if request.HasField("checks") else True),
            near_duplicate_threshold=o.near_duplicate_threshold if o.HasField("near_duplicate_threshold")
            else defaults.near_duplicate_threshold,
            min_length=o.min_length if o.HasField("min_length") else defaults.min_length,
            max_length=o.max_length if o.HasField("max_length") else defaults.max_length,
            bias_alpha=o.bias_alpha if o.HasField("bias_alpha") else defaults.bias_alpha,
            imbalance_ratio=o.imbalance_ratio if o.HasField("imbalance_ratio") else defaults.imbalance_ratio,
            max_label_noise=o.max_label_noise if o.HasField("max_label_noise") else defaults.max_label_noise)
        report = validate(examples, config)
        return convert.validation_response(report, dataset_id, [e["input"] for e in examples])

    # ------------------------------------------------------------------ trajectories
    def IngestTrajectories(self, request_iterator, context):
        received: list[trajectory_pb2.Trajectory] = []
        for message in request_iterator:
            for t in message.trajectories:
                if len(received) >= MAX_INGEST:
                    raise InvalidArgument("trajectories", f"at most {MAX_INGEST} trajectories per call",
                                          metadata={"limit": str(MAX_INGEST)})
                received.append(canonical(t, f"trajectories[{len(received)}]"))
        counts = self.trajectories.ingest(received, _owner())
        log(logger, "trajectories ingested", received=len(received), created=counts.created, updated=counts.updated,
            unchanged=counts.unchanged)
        return data_service_pb2.IngestTrajectoriesResponse(
            received=len(received), created=counts.created, updated=counts.updated, unchanged=counts.unchanged,
            trajectory_ids=[t.trajectory_id for t in received])

    def GetTrajectory(self, request, context):
        full = request.view != trajectory_pb2.TRAJECTORY_VIEW_BASIC
        t = self.trajectories.get(resource_id(request.trajectory_id, "trajectory_id"), _visible(), full=full)
        return data_service_pb2.GetTrajectoryResponse(trajectory=t)

    def ListTrajectories(self, request, context):
        page = page_request(request, 100, 1000)
        found = self.trajectories.list(convert.trajectory_filter(request.filter, account_id=_visible()), page,
                                       full=request.view == trajectory_pb2.TRAJECTORY_VIEW_FULL)
        return data_service_pb2.ListTrajectoriesResponse(
            trajectories=found.rows, next_page_token=found.next_page_token, total_size=found.total_size)

    def ExportTrajectories(self, request, context) -> Iterator[data_service_pb2.ExportTrajectoriesResponse]:
        job_id = resource_id(request.job_id, "job_id")
        limit = request.limit if request.HasField("limit") else EXPORT_DEFAULT_LIMIT
        if limit > EXPORT_MAX_LIMIT:
            raise InvalidArgument("limit", f"must be at most {EXPORT_MAX_LIMIT}, got {limit}",
                                  metadata={"limit": str(EXPORT_MAX_LIMIT)})
        if limit < 1:
            raise InvalidArgument("limit", f"must be between 1 and {EXPORT_MAX_LIMIT}, got {limit}",
                                  metadata={"limit": str(EXPORT_MAX_LIMIT)})
        if request.offset < 0:
            raise InvalidArgument("offset", "must be >= 0")
        if request.HasField("min_reward") and not math.isfinite(request.min_reward):
            raise InvalidArgument("min_reward", "must be a finite number")
        where = TrajectoryFilter(job_id=job_id, success_only=request.success_only, account_id=_visible(),
                                 min_reward=request.min_reward if request.HasField("min_reward") else None)
        total = self.trajectories.count(where)
        returned = max(0, min(limit, total - request.offset))
        pages = self.trajectories.scan(where, request.offset, returned, order="iteration ASC, ordinal ASC",
                                       batch=EXPORT_BATCH) if returned else iter(())
        first = next(pages, [])
        yield data_service_pb2.ExportTrajectoriesResponse(
            total_count=total, returned_count=returned, has_more=request.offset + returned < total,
            trajectories=first)
        for page in pages:
            if not context.is_active():
                return
            yield data_service_pb2.ExportTrajectoriesResponse(trajectories=page)

    def CountTrajectories(self, request, context):
        return data_service_pb2.CountTrajectoriesResponse(
            count=self.trajectories.count(convert.trajectory_filter(request.filter, account_id=_visible())))

    def BuildDatasetFromTrajectories(self, request, context):
        dataset_id = _new_id(request.dataset_id, "dataset_id", "dataset")
        if request.limit < 0:
            raise InvalidArgument("limit", "must be >= 0 (0 = no cap)")
        if request.min_llm_calls_per_trajectory < 0:
            raise InvalidArgument("min_llm_calls_per_trajectory", "must be >= 0")
        where = convert.trajectory_filter(request.filter, min_llm_calls=request.min_llm_calls_per_trajectory,
                                          account_id=_visible())
        examples: list[dict[str, Any]] = []
        used = considered = 0
        for page in self.trajectories.scan(where, 0, request.limit or None, order="ordinal DESC"):
            for t in page:
                considered += 1
                extracted = extract_examples(t)
                if extracted:
                    used += 1
                    examples.extend(extracted)
            if len(examples) > MAX_EXAMPLES:
                raise InvalidArgument("limit", f"the trajectories give more than {MAX_EXAMPLES} examples; "
                                               "lower the limit", metadata={"limit": str(MAX_EXAMPLES)})
        if not examples:
            raise FailedPrecondition(
                f"no examples could be extracted from the {considered} matching trajectories (they need LLM calls "
                "with a prompt and a response or tool, or steps with a tool and a query, and must not have "
                "failed)", metadata={"trajectories": str(considered)})
        labels = {"min_llm_calls_per_trajectory": str(request.min_llm_calls_per_trajectory)}
        if request.limit:
            labels["limit"] = str(request.limit)
        for name in ("agent_id", "job_id", "source"):
            if getattr(request.filter, name):
                labels[name] = getattr(request.filter, name)
        for name in ("since", "before"):
            if request.filter.HasField(name):
                labels[name] = getattr(request.filter, name).ToJsonString()
        row = self._create(dataset_id, "trajectories", examples, labels=labels, trajectory_count=used)
        log(logger, "dataset built from trajectories", dataset_id=dataset_id, trajectories=used,
            considered=considered, examples=len(examples))
        return data_service_pb2.BuildDatasetFromTrajectoriesResponse(
            dataset=convert.dataset_proto(row), trajectory_count=used, example_count=len(examples))
