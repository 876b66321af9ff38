"""Protos <-> the plain values the DataService core works with."""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from trainhouse.common.timeutil import to_timestamp
from trainhouse.data.store import created
from trainhouse.data.synthetic.generator import GenerationStatistics
from trainhouse.data.synthetic.templates import CompiledScenario
from trainhouse.data.trajectory_store import TrajectoryFilter
from trainhouse.data.validator import Finding, ValidationReport
from trainhouse.data.validator.label_issues import LabelIssue
from trainhouse.v1 import (data_service_pb2, data_validation_pb2, dataset_pb2, synthetic_data_pb2)

SEVERITY = {"low": data_validation_pb2.SEVERITY_LOW, "medium": data_validation_pb2.SEVERITY_MEDIUM,
            "high": data_validation_pb2.SEVERITY_HIGH}
# The response lists the most doubtful label issues only; statistics.label_issues counts them all.
MAX_LABEL_ISSUES = 100
LABEL_ISSUE_INPUT_CHARS = 200


def dataset_proto(row: dict[str, Any]) -> dataset_pb2.Dataset:
    stats = json.loads(row["stats_json"] or "{}")
    return dataset_pb2.Dataset(
        dataset_id=row["dataset_id"], source=row["source"] or "", sha256=row["sha256"] or "",
        create_time=to_timestamp(created(row)), trajectory_count=row.get("trajectory_count") or 0,
        labels=json.loads(row.get("labels_json") or "{}"),
        statistics=dataset_pb2.DatasetStatistics(
            example_count=stats.get("example_count", 0), output_counts=stats.get("output_counts", {}),
            output_shares=stats.get("output_shares", {}), average_length=stats.get("average_length", 0.0),
            level_counts={int(k): v for k, v in stats.get("level_counts", {}).items()}))


# ------------------------------------------------------------------ templates and modules
def _slot_map(slots: Any) -> dict[str, list[str]]:
    # Proto maps have no defined order; sorting keeps generation from a template deterministic.
    return {name: list(slots[name].values) for name in sorted(slots)}


def template_dict(t: synthetic_data_pb2.ScenarioTemplate) -> dict[str, Any]:
    """ScenarioTemplate -> the JSON-shaped specification templates.compile_scenario reads."""
    return {
        "outputs": [{"output": o.output, "templates": list(o.templates), "topics": list(o.topics),
                     "slots": _slot_map(o.slots)} for o in t.outputs],
        "slots": _slot_map(t.slots),
        "topics": [{"name": topic.name, "slots": _slot_map(topic.slots)} for topic in t.topics],
        "shared_templates": list(t.shared_templates),
        "openers": list(t.openers),
        "closers": list(t.closers),
        "synonyms": _slot_map(t.synonyms),
    }


def _slot_proto(target: Any, slots: dict[str, list[str]]) -> None:
    for name, values in slots.items():
        target[name].values.extend(values)


def template_proto(spec: dict[str, Any]) -> synthetic_data_pb2.ScenarioTemplate:
    out = synthetic_data_pb2.ScenarioTemplate(
        shared_templates=spec.get("shared_templates", []), openers=spec.get("openers", []),
        closers=spec.get("closers", []))
    for o in spec.get("outputs", []):
        msg = out.outputs.add(output=o["output"], templates=o.get("templates", []), topics=o.get("topics", []))
        _slot_proto(msg.slots, o.get("slots", {}))
    _slot_proto(out.slots, spec.get("slots", {}))
    for topic in spec.get("topics", []):
        msg = out.topics.add(name=topic["name"])
        _slot_proto(msg.slots, topic.get("slots", {}))
    _slot_proto(out.synonyms, spec.get("synonyms", {}))
    return out


def module_proto(row: dict[str, Any], compiled: CompiledScenario) -> synthetic_data_pb2.TrainingModule:
    return synthetic_data_pb2.TrainingModule(
        module_id=row["module_id"], display_name=row["display_name"] or "", description=row["description"] or "",
        template=template_proto(json.loads(row["template_json"])),
        outputs=[o.output for o in compiled.outputs], topics=compiled.topics,
        create_time=to_timestamp(created(row)))


def generation_statistics_proto(s: GenerationStatistics) -> synthetic_data_pb2.GenerationStatistics:
    return synthetic_data_pb2.GenerationStatistics(
        generated=s.generated, average_length=s.average_length, unique_scenarios=s.unique_scenarios,
        edge_cases=s.edge_cases, diversity=s.diversity, distinct_1=s.distinct_1, distinct_2=s.distinct_2,
        unique_templates=s.unique_templates, level_counts=s.level_counts, topic_counts=s.topic_counts,
        edge_case_counts=s.edge_case_counts)


# ------------------------------------------------------------------ validation
def finding_proto(f: Finding) -> data_validation_pb2.ValidationFinding:
    return data_validation_pb2.ValidationFinding(
        type=f.type, message=f.message, severity=SEVERITY[f.severity], suggestion=f.suggestion, count=f.count,
        example_indexes=f.example_indexes, details=f.details)


def label_issue_proto(issue: LabelIssue, text: str) -> data_validation_pb2.LabelIssue:
    return data_validation_pb2.LabelIssue(
        example_index=issue.index, input=text[:LABEL_ISSUE_INPUT_CHARS], given_label=issue.given,
        likely_label=issue.likely, likely_label_confidence=issue.likely_confidence,
        given_label_confidence=issue.given_confidence)


def validation_response(report: ValidationReport, dataset_id: str,
                        inputs: Sequence[str]) -> data_service_pb2.ValidateDatasetResponse:
    """The response; ``inputs`` are the validated examples' inputs (label issues quote theirs)."""
    return data_service_pb2.ValidateDatasetResponse(
        valid=report.valid, issues=[finding_proto(f) for f in report.issues],
        warnings=[finding_proto(f) for f in report.warnings], dataset_id=dataset_id,
        label_issues=[label_issue_proto(x, inputs[x.index]) for x in report.label_issues[:MAX_LABEL_ISSUES]],
        statistics=data_validation_pb2.ValidationStatistics(
            total_examples=report.total_examples, duplicates=report.duplicates,
            near_duplicates=report.near_duplicates, average_quality=report.average_quality,
            class_balance=report.class_balance, conflicting_inputs=report.conflicting_inputs,
            label_issues=len(report.label_issues), label_issues_checked=report.label_issues_checked,
            label_noise_rate=report.label_noise_rate))


# ------------------------------------------------------------------ trajectories
def trajectory_filter(f: data_service_pb2.TrajectoryFilter, **extra: Any) -> TrajectoryFilter:
    def naive(name: str) -> dt.datetime | None:
        return getattr(f, name).ToDatetime(tzinfo=dt.timezone.utc).replace(tzinfo=None) if f.HasField(name) else None

    return TrajectoryFilter(agent_id=f.agent_id, job_id=f.job_id, source=f.source, since=naive("since"),
                            before=naive("before"), **extra)
