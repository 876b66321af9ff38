"""Validate a StartJob request at the edge and turn it into the domain's job spec.

Everything the worker later relies on is checked here, synchronously, so a bad request is an
INVALID_ARGUMENT naming its field instead of a job that fails a second later.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from services.common.errors import InvalidArgument
from services.common.example_codec import example_dicts
from services.common.validation import resource_id
from services.training.trainer.examples import parse_examples
from services.training.trainer.supervised_config import SupervisedConfig
from trainhouse.v1 import job_state_pb2, training_service_pb2

MAX_EXAMPLES = 1_000_000

METHODS = {
    job_state_pb2.TRAINING_METHOD_UNSPECIFIED: "supervised",
    job_state_pb2.TRAINING_METHOD_SUPERVISED: "supervised",
    job_state_pb2.TRAINING_METHOD_FEW_SHOT: "few_shot",
    job_state_pb2.TRAINING_METHOD_TRANSFER: "transfer",
    job_state_pb2.TRAINING_METHOD_REINFORCEMENT: "reinforcement",
    job_state_pb2.TRAINING_METHOD_GRPO: "grpo",
}
SUPPORTED_METHODS = {"supervised"}


@dataclass
class JobSpec:
    agent_id: str
    account_id: str
    display_name: str
    method: str
    config: SupervisedConfig
    config_dict: dict[str, Any]
    examples: list[dict[str, Any]]
    validation_examples: list[dict[str, Any]]
    dataset_id: str
    base_version_id: str


def config_dict(request: training_service_pb2.StartJobRequest) -> dict[str, Any]:
    cfg = request.config
    out = MessageToDict(cfg, preserving_proto_field_name=True)
    out.pop("method", None)
    options = out.pop("options", None) or {}
    out.update(options)
    # MessageToDict renders int64 as strings; the config parser wants numbers.
    if "seed" in out:
        out["seed"] = int(out["seed"])
    curriculum = out.get("curriculum")
    if curriculum is not None:
        curriculum.setdefault("enabled", False)
        curriculum.setdefault("stages", [])
    return out


def parse_start_request(request: training_service_pb2.StartJobRequest,
                        dataset_examples: list[dict[str, Any]] | None) -> JobSpec:
    agent_id = resource_id(request.agent_id, "agent_id")
    method = METHODS.get(request.config.method)
    if method is None:
        raise InvalidArgument("config.method", "unknown training method")
    if method not in SUPPORTED_METHODS:
        raise InvalidArgument("config.method", f"'{method}' is not available yet; use 'supervised'")
    examples = example_dicts(request.examples) if request.examples else (dataset_examples or [])
    if not examples:
        raise InvalidArgument("examples", "at least 2 examples are required (inline or through a dataset)")
    if len(examples) > MAX_EXAMPLES:
        raise InvalidArgument("examples", f"at most {MAX_EXAMPLES} examples per job")
    validation = example_dicts(request.validation_examples)
    parsed = parse_examples(examples, "examples")
    if validation:
        parse_examples(validation, "validation_examples")
    if len(parsed) < 2:
        raise InvalidArgument("examples", "at least 2 examples are required")
    if len({e.expected_output for e in parsed}) < 2:
        raise InvalidArgument("examples", "examples must name at least 2 distinct outputs")
    raw_config = config_dict(request)
    try:
        config = SupervisedConfig.from_dict(raw_config)
    except InvalidArgument as err:  # report the path in the request, as for every other field
        raise InvalidArgument(f"config.{err.field}", err.message) from None
    return JobSpec(agent_id=agent_id, account_id=request.account_id or "default",
                   display_name=request.display_name, method=method, config=config, config_dict=raw_config,
                   examples=examples, validation_examples=validation, dataset_id=request.dataset_id,
                   base_version_id=request.base_version_id)
