"""The reference ladder a benchmark score is ranked against: simple predictors answering the same
probes as the model, in the same run, scored by the same suite.

Why a ladder: a percentile among the platform's other models says nothing on a fresh platform,
and those models answered other probes (built from their own held-out data). Predictors measured
on the model's own probes say what its score is worth: does it beat always giving the most common
output, looking up the most similar training example, and its own architecture before training?

Members (each answers a text with a distribution over outputs):

- ``majority_class`` — every text gets the output frequencies of the reference examples (its
  answer: the most frequent output, ties broken by name).
- ``nearest_neighbour`` — the version's featurizer (hashed word and character n-grams, unit L2
  norm) over the reference examples. Per output, the highest cosine similarity between the text
  and one of that output's reference examples (negative similarity counts as 0); the
  distribution is those similarities normalised to sum 1 (uniform when all are 0), so its answer
  is the output of the single nearest reference example (1-NN).
- ``untrained`` — the version's own architecture (featurizer, hidden sizes, catalog, read from
  its registered ONNX artifact) with the weights the supervised trainer starts from: He-normal,
  zero biases, drawn with ``numpy.random.default_rng([seed, 1])`` where seed is the version's
  training seed (0 when it has none). Run in NumPy here: it was never registered, so it has no
  serving path.
- ``version:<id>`` — the agent's earlier versions (created before this one; the newest
  ``MAX_EARLIER_VERSIONS``), answered by ModelRegistry.Predict pinned to that version.

Reference examples are what the model itself learned from: the training split of the job that
trained the version (positives, at most ``REFERENCE_CAP``, a seeded choice). A version with no job
here has no training side: then ``majority_class`` uses the seed examples' output frequencies (and
says so) and ``nearest_neighbour`` is not built, because looking up the probes' own source texts
would not be a baseline.
"""
from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf.json_format import MessageToDict
from scipy import sparse

from trainhouse.core.errors import TrainhouseError
from trainhouse.core.featurizer import HashingFeaturizer, SparseRows
from trainhouse.core.trainer.mlp import MLP, TrainedModel
from trainhouse.core.trainer.onnx_export import load_trained_model
from trainhouse.evaluation.evaluator import split_feedback
from trainhouse.evaluation.peers import Peers
from trainhouse.v1 import model_version_pb2

# A text -> a distribution over outputs, for a batch of texts.
Answerer = Callable[[list[str]], list[dict[str, float]]]

REFERENCE_CAP = 5000
MAX_EARLIER_VERSIONS = 5
PLATFORM_MIN_MODELS = 5


@dataclass
class Member:
    """One rung of the ladder: how it answers, and what it is (shown with its score)."""

    name: str
    kind: str  # "baseline" | "earlier_version"
    description: str
    answer: Answerer


@dataclass
class Ladder:
    members: list[Member]
    # Where the baselines' examples came from, e.g. "the 90 training examples of job-...".
    reference_source: str
    # Members that could not be built, each "name: reason".
    not_measured: list[str] = field(default_factory=list)


@dataclass
class Reference:
    """The examples the baselines are built from, and how to say where they came from."""

    examples: list[dict[str, Any]]
    source: str  # e.g. "the 90 training examples of job-..."
    is_training_side: bool


def reference_examples(peers: Peers, version: model_version_pb2.ModelVersion,
                       seeds: list[dict[str, Any]]) -> Reference:
    """The version's job's training split (capped, seeded), else the seed examples."""
    if version.job_id:
        train = split_feedback(peers.job_examples(version.job_id, "train"))[0]
        if train:
            total = len(train)
            train = sorted(train, key=lambda e: (e["expected_output"], e["input"]))
            if total > REFERENCE_CAP:
                train = sorted(random.Random(f"benchmark-reference:{version.job_id}").sample(train, REFERENCE_CAP),
                               key=lambda e: (e["expected_output"], e["input"]))
            kept = f"{len(train)} of the {total}" if total > len(train) else f"the {total}"
            return Reference(train, f"{kept} training examples of {version.job_id}", True)
    return Reference(seeds, f"the {len(seeds)} seed examples (the version has no training job here)", False)


def majority_class(reference: Reference, labels: list[str]) -> Member:
    counts = Counter(e["expected_output"] for e in reference.examples)
    total = sum(counts.values())
    prior = {label: counts.get(label, 0) / total for label in labels}
    for label, n in counts.items():  # a reference output outside the catalog still counts
        prior.setdefault(label, n / total)
    top = max(sorted(prior), key=lambda k: prior[k])
    return Member("majority_class", "baseline",
                  f"answers every input with the output frequencies of {reference.source} "
                  f"(always '{top}', {100 * prior[top]:.0f}% of them)",
                  lambda texts: [dict(prior) for _ in texts])


def _csr(rows: SparseRows) -> sparse.csr_matrix:
    return sparse.csr_matrix((rows.values, rows.indices, rows.indptr), shape=(len(rows), rows.dim))


def nearest_neighbour(reference: Reference, labels: list[str], featurizer: HashingFeaturizer) -> Member:
    outputs = sorted({e["expected_output"] for e in reference.examples} | set(labels))
    column = {o: i for i, o in enumerate(outputs)}
    ref = _csr(featurizer.transform_sparse([e["input"] for e in reference.examples])).T.tocsc()
    owner = np.array([column[e["expected_output"]] for e in reference.examples])
    members_of = [np.flatnonzero(owner == j) for j in range(len(outputs))]

    def answer(texts: list[str]) -> list[dict[str, float]]:
        sims = np.asarray((_csr(featurizer.transform_sparse(texts)) @ ref).todense())
        best = np.zeros((len(texts), len(outputs)))
        for j, idx in enumerate(members_of):
            if len(idx):
                best[:, j] = np.maximum(sims[:, idx].max(axis=1), 0.0)
        out = []
        for row in best:
            total = row.sum()
            probs = row / total if total > 0 else np.full(len(outputs), 1.0 / len(outputs))
            out.append({o: float(p) for o, p in zip(outputs, probs)})
        return out

    return Member("nearest_neighbour", "baseline",
                  f"answers with the output of the most similar of {reference.source} (cosine similarity "
                  "of the version's hashed n-gram features; 1-NN)", answer)


def untrained(model: TrainedModel, seed: int) -> Member:
    labels = [model.label_map.label(i) for i in range(len(model.label_map))]
    init = MLP.init(model.featurizer_config.dim, model.hidden_sizes, len(labels), np.random.default_rng([seed, 1]))
    blank = TrainedModel(params=init.params, label_map=model.label_map, featurizer_config=model.featurizer_config,
                         hidden_sizes=model.hidden_sizes)

    def answer(texts: list[str]) -> list[dict[str, float]]:
        return [{label: float(p) for label, p in zip(labels, row)} for row in blank.predict_proba(texts)]

    hidden = list(model.hidden_sizes) or "none"
    return Member("untrained", "baseline",
                  f"the same architecture (featurizer dim {model.featurizer_config.dim}, hidden sizes {hidden}, "
                  f"{len(labels)} outputs) with the trainer's initial weights (He-normal, seed [{seed}, 1]), "
                  "before any training step", answer)


def earlier_version(peers: Peers, agent_id: str, version: model_version_pb2.ModelVersion) -> Member:
    def answer(texts: list[str]) -> list[dict[str, float]]:
        return peers.predict(agent_id, version.version_id, texts, len(version.labels)).distributions

    created = version.create_time.ToJsonString() if version.HasField("create_time") else "earlier"
    return Member(f"version:{version.version_id}", "earlier_version",
                  f"the agent's earlier version {version.version_id} ({version.method or 'unknown method'}, "
                  f"created {created}), answered by ModelRegistry.Predict", answer)


def _training_seed(version: model_version_pb2.ModelVersion) -> int:
    seed = MessageToDict(version.training_config).get("seed", 0)
    return int(seed) if isinstance(seed, (int, float)) and not isinstance(seed, bool) else 0


def build_ladder(peers: Peers, agent_id: str, version: model_version_pb2.ModelVersion,
                 seeds: list[dict[str, Any]]) -> Ladder:
    """Every member that can be built for this version; the others are listed with the reason."""
    labels = list(version.labels)
    reference = reference_examples(peers, version, seeds)
    ladder = Ladder([majority_class(reference, labels)], reference.source)
    model: TrainedModel | None = None
    try:
        _, artifact = peers.version_artifact(agent_id, version.version_id)
        model = load_trained_model(artifact)
    except (TrainhouseError, ValueError) as exc:
        reason = f"the version's artifact is not a trainhouse classifier MLP ({exc})"
        ladder.not_measured += [f"nearest_neighbour: {reason}", f"untrained: {reason}"]
    if model is not None:
        if reference.is_training_side:
            ladder.members.append(nearest_neighbour(reference, labels, HashingFeaturizer(model.featurizer_config)))
        else:
            ladder.not_measured.append("nearest_neighbour: the version was not trained by a job here, so there "
                                       "are no training examples to look up")
        ladder.members.append(untrained(model, _training_seed(version)))
    mine = version.create_time.ToDatetime()
    earlier = [v for v in peers.versions(agent_id)
               if v.version_id != version.version_id and v.create_time.ToDatetime() < mine]
    earlier.sort(key=lambda v: v.create_time.ToDatetime(), reverse=True)
    ladder.members += [earlier_version(peers, agent_id, v) for v in earlier[:MAX_EARLIER_VERSIONS]]
    if len(earlier) > MAX_EARLIER_VERSIONS:
        ladder.not_measured.append(f"{len(earlier) - MAX_EARLIER_VERSIONS} older version(s): only the newest "
                                   f"{MAX_EARLIER_VERSIONS} earlier versions are run")
    return ladder


def percentile(score: float, population: list[float]) -> float:
    """Percentile rank 0..100 of ``score`` within ``population`` (which does not include it):
    100 * (members below + 0.5 * members equal) / members."""
    if not population:
        raise ValueError("an empty population has no percentile")
    below = sum(1 for s in population if s < score)
    equal = sum(1 for s in population if s == score)
    return 100.0 * (below + 0.5 * equal) / len(population)
