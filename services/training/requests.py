"""Validate a StartJob request at the edge and turn it into the domain's job spec.

Everything the worker later relies on is checked here, synchronously, so a bad request is an
INVALID_ARGUMENT naming its field instead of a job that fails a second later. Field paths are
the request's own (``config.learning_rate``, ``examples[3].input``, ``training_queries``); a config
key given in ``options`` is named as the caller wrote it (``config.learningRate``).

The config is validated here once, by the paradigm's model (services/core/configs); the job keeps
only the resolved config (every default filled in, canonical names), which the worker reads back.
"""
from __future__ import annotations

import re

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.json_format import MessageToDict

from trainhouse.common.example_codec import example_dicts, query_dicts
from trainhouse.common.validation import resource_id, version_ref
from trainhouse.core.configs import ConfigModel, GRPOConfig
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.grpo.environment import parse_queries
from trainhouse.core.promotion import Policy
from trainhouse.core.trainer.dispatch import parse_config
from trainhouse.core.trainer.examples import parse_examples
from trainhouse.core.trainer.loop import planned_steps
from trainhouse.core.trainer.supervised_trainer import resolve_config, split_examples
from trainhouse.core.trainer.feedback import parse_feedback
from trainhouse.training.convert import config_dict, grpo_config_dict
from trainhouse.v1 import job_state_pb2, training_service_pb2

MAX_EXAMPLES = 1_000_000
# Seed 003: "Training queries (min 100)".
MIN_GRPO_QUERIES = 100

METHODS = {
    job_state_pb2.TRAINING_METHOD_UNSPECIFIED: "supervised",
    job_state_pb2.TRAINING_METHOD_SUPERVISED: "supervised",
    job_state_pb2.TRAINING_METHOD_FEW_SHOT: "few_shot",
    job_state_pb2.TRAINING_METHOD_TRANSFER: "transfer",
    job_state_pb2.TRAINING_METHOD_REINFORCEMENT: "reinforcement",
    job_state_pb2.TRAINING_METHOD_GRPO: "grpo",
}
CLASSIFIER_METHODS = ("supervised", "few_shot", "transfer")


@dataclass
class JobSpec:
    agent_id: str
    account_id: str
    display_name: str
    method: str
    config: ConfigModel              # the paradigm's config, validated
    # Job folder content: examples / validation_examples, or training/evaluation queries.
    data: dict[str, Any]
    example_count: int
    total_epochs: int
    budget_usd: float | None
    dataset_id: str
    base_version_id: str
    # Set: the registered version serves only if it passes the registry's promotion gate.
    promotion: Policy | None = None
    labels: dict[str, str] = field(default_factory=dict)
    # Known when the job is accepted (classifier jobs): the split and the optimizer steps the
    # worker will use, computed by the same core functions.
    planned: dict[str, int] = field(default_factory=dict)

    def resolved_config(self) -> dict[str, Any]:
        """What the job stores and GetJob returns: every field, defaults filled in, snake_case."""
        return self.config.to_dict()


def _prefixed(err: InvalidArgument, prefix: str) -> InvalidArgument:
    return InvalidArgument(f"{prefix}{err.field}" if err.field else prefix.rstrip("."), err.message)


def rated_dicts(items: Any) -> list[dict[str, Any]]:
    out = []
    for r in items:
        item: dict[str, Any] = {"input": r.input, "output": r.output}
        for name in ("rating", "reward", "success", "propensity"):
            if r.HasField(name):
                item[name] = getattr(r, name)
        if r.HasField("metadata"):
            item["metadata"] = MessageToDict(r.metadata)
        out.append(item)
    return out


def method_of(request: training_service_pb2.StartJobRequest) -> str:
    method = METHODS.get(request.config.method)
    if method is None:
        raise InvalidArgument("config.method", f"unknown training method; expected one of "
                              f"{', '.join(sorted(set(METHODS.values())))}")
    return method


MODULE_EXAMPLES_DEFAULT, MODULE_EXAMPLES_MAX = 200, 10_000


def check_references(request: training_service_pb2.StartJobRequest) -> None:
    """The dataset and base version a job names follow the id rule before anything looks them up
    (a dataset id is recorded on the job and appears in paths: "../../etc/passwd" is refused)."""
    if request.dataset_id:
        resource_id(request.dataset_id, "dataset_id")
    if request.base_version_id:
        version_ref(request.base_version_id, "base_version_id")


def module_source(request: training_service_pb2.StartJobRequest) -> tuple[str, int] | None:
    """(module id, example count) when the job trains on a training module, checked before any
    example is generated."""
    if not request.module_id:
        if request.HasField("module_example_count"):
            raise InvalidArgument("module_example_count", "applies only with module_id")
        return None
    resource_id(request.module_id, "module_id")
    if method_of(request) in ("grpo", "reinforcement"):
        raise InvalidArgument("module_id", "training modules give labelled examples: use a supervised, few_shot "
                              "or transfer job")
    if request.dataset_id:
        raise InvalidArgument("module_id", "give a module_id or a dataset_id, not both")
    count = request.module_example_count if request.HasField("module_example_count") else MODULE_EXAMPLES_DEFAULT
    if not 2 <= count <= MODULE_EXAMPLES_MAX:
        raise InvalidArgument("module_example_count", f"must be between 2 and {MODULE_EXAMPLES_MAX}")
    return request.module_id, count


LABEL_KEY = re.compile(r"^[a-z0-9_.-]{1,64}$")
MAX_LABELS = 32


def job_labels(labels: Any) -> dict[str, str]:
    if len(labels) > MAX_LABELS:
        raise InvalidArgument("labels", f"at most {MAX_LABELS} labels")
    for key, value in labels.items():
        if not LABEL_KEY.match(key):
            raise InvalidArgument(f"labels.{key[:64]}", "keys are 1..64 characters of [a-z0-9_.-]")
        if len(value) > 256:
            raise InvalidArgument(f"labels.{key}", "values are at most 256 characters")
    return dict(sorted(labels.items()))


def parse_start_request(request: training_service_pb2.StartJobRequest,
                        dataset_examples: list[dict[str, Any]] | None) -> JobSpec:
    agent_id = resource_id(request.agent_id, "agent_id")
    method = method_of(request)
    promotion = Policy.of(request.promotion) if request.HasField("promotion") else None
    if promotion is not None and method == "grpo":
        raise InvalidArgument("promotion", "the promotion gate compares classifiers on held-out labelled examples; "
                                           "a GRPO policy is promoted by deploying it after training.evaluate")
    common = dict(agent_id=agent_id, account_id=request.account_id or "default", display_name=request.display_name,
                  method=method, dataset_id=request.dataset_id, base_version_id=request.base_version_id,
                  promotion=promotion, labels=job_labels(request.labels))
    if method == "grpo":
        return _grpo_spec(request, common)
    if method == "reinforcement":
        return _reinforcement_spec(request, common)
    return _classifier_spec(request, dataset_examples, common)


def _parse_config(method: str, raw: dict[str, Any]) -> Any:
    try:
        return parse_config(method, raw)
    except InvalidArgument as err:
        raise _prefixed(err, "config.") from None


def _classifier_spec(request, dataset_examples, common) -> JobSpec:
    method = common["method"]
    if request.module_id:  # the module's examples, then the caller's own
        examples = (dataset_examples or []) + example_dicts(request.examples)
    else:
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
    if method != "transfer" and len({e.expected_output for e in parsed}) < 2:
        raise InvalidArgument("examples", "examples must name at least 2 distinct outputs")
    config = _parse_config(method, config_dict(request.config))
    parsed_validation = parse_examples(validation, "validation_examples") if validation else None
    # "auto" fields are chosen from the data here, so the job records the values it trains with.
    config = resolve_config(config, parsed + (parsed_validation or []), promotion=common["promotion"] is not None)
    train, held_out = split_examples(config, parsed, parsed_validation)
    planned = {"train_examples": len(train), "validation_examples": len(held_out),
               "total_steps": planned_steps(config, train)}
    return JobSpec(**common, config=config,
                   data={"examples": examples, "validation_examples": validation},
                   example_count=len(examples) + len(validation), total_epochs=config.total_epochs,
                   budget_usd=config.max_budget_usd, planned=planned)


def _reinforcement_spec(request, common) -> JobSpec:
    if request.examples:
        raise InvalidArgument("examples", "reinforcement learns from rated_examples (input, output, rating|reward|"
                              "success); labelled examples belong to supervised, few_shot or transfer")
    rated = rated_dicts(request.rated_examples)
    if not rated:
        raise InvalidArgument("rated_examples", "reinforcement needs at least one rated example")
    if len(rated) > MAX_EXAMPLES:
        raise InvalidArgument("rated_examples", f"at most {MAX_EXAMPLES} records per job")
    parse_feedback(rated, "rated_examples")
    config = _parse_config("reinforcement", config_dict(request.config))
    return JobSpec(**common, config=config, data={"examples": rated, "validation_examples": []},
                   example_count=len(rated), total_epochs=config.total_epochs, budget_usd=config.max_budget_usd)


def _grpo_spec(request, common) -> JobSpec:
    queries = query_dicts(request.training_queries)
    if len(queries) < MIN_GRPO_QUERIES:
        raise InvalidArgument("training_queries", f"GRPO needs at least {MIN_GRPO_QUERIES} training queries, "
                              f"got {len(queries)}")
    parse_queries(queries, "training_queries")
    evaluation = query_dicts(request.evaluation_queries)
    if evaluation:
        parse_queries(evaluation, "evaluation_queries")
    try:
        config = GRPOConfig.from_dict(grpo_config_dict(request.config), strict=False)
    except InvalidArgument as err:
        raise _prefixed(err, "config.grpo.") from None
    return JobSpec(**common, config=config,
                   data={"training_queries": queries, "evaluation_queries": evaluation},
                   example_count=len(queries), total_epochs=config.n_iterations, budget_usd=config.max_budget_usd)
