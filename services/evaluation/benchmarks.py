"""Built-in benchmark suites for an agent whose learned part maps a text to one output of its catalog.

What they are, plainly: every suite is a set of *classifier probes*. Texts are built from seed
examples (by default the held-out split of the job that trained the version) and answered by
ModelRegistry.Predict with the version pinned; a probe is right when the answer (or the ranking
of the catalog) matches the probe's expected output. The suite names say which property of that
classifier a family of probes looks at; "standard-reasoning" or "multi-step-planning" do not test
free-form reasoning or planning, and "helpfulness" or "coherence" involve no human or LLM judge.

Every suite is versioned and deterministic: its probes are derived from the model's catalog and
the seed examples, in a canonical order, with a generator seeded by the suite's name and version.
A suite's score is 100 times the weighted mean of its component scores (each in 0..1); a
component that cannot be measured (for example AUROC when every answer is right) is left out and
the weights of the rest renormalised. Seed examples are capped at ``PER_OUTPUT`` per output.

standard-reasoning (v1) — does the model decide by what the request is about?
  base         0.25  held-out inputs as they are -> their expected output
  composition  0.25  two held-out inputs of the same output joined ("A. Also, B") -> that output
  filler       0.25  a held-out input wrapped in meaning-neutral filler (greetings, thanks) -> its output
  negation     0.25  "This is not about <input of another output>. <input>" -> the second input's output

tool-usage (v1) — the catalog outputs are the tools; is the right tool chosen, decisively?
  tool_choice   0.5  balanced accuracy: mean over tools of the share of its inputs routed to it
  ranking       0.3  the right tool among the two highest-scored ones
  decisiveness  0.2  correct choices whose probability beats the runner-up by >= 0.2

multi-step-planning (v1) — chains of 2 and 3 requests for different outputs:
  step_accuracy 0.4  each step, prefixed with the previous step as context ("After <prev>, <cur>"),
                     answered with the current step's output
  plan_success  0.4  chains with every step right
  coverage      0.2  the whole plan as one text ("First, A. Then, B. Finally, C"): every step's
                     output among the k highest-scored outputs, k = number of steps

coherence (v1) — is confidence coherent with correctness, and the decision with itself?
  calibration    1/3  1 - expected calibration error (10 bins) on held-out inputs
  discrimination 1/3  AUROC of the confidence for telling right answers from wrong ones
  repetition     1/3  the input written twice ("A A") gets the same answer as "A"

consistency (v1) — stability under meaning-preserving perturbations (casing, punctuation, typos,
word order; services/evaluation/perturbations.py):
  agreement          0.7  perturbed inputs answered as the original
  perturbed_accuracy 0.3  perturbed inputs answered with the expected output

helpfulness (v1) — does the user get the output they need?
  accuracy        0.3  held-out inputs answered with the expected output
  balanced_recall 0.5  mean over outputs of their recall (rare needs count as much as common ones)
  shortlist       0.2  expected output among the three highest-scored outputs

Percentile: the same probes are answered, in the same run, by a reference ladder (majority
class, nearest neighbour over the version's training examples, the untrained architecture, the
agent's earlier versions; see reference_ladder.py) and every member is scored by the same suite.
The percentile ranks the model's score within that ladder; once at least 5 other models (agent,
version) have been benchmarked on the same suite version in the caller's account (every account's
for an admin), their newest scores join the population too. percentile = 100 * (members below + 0.5 * members equal) / members; the
result names the population and its size and lists the ladder's scores.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from google.protobuf import struct_pb2

from trainhouse.core.errors import FailedPrecondition, InvalidArgument, TrainhouseError
from trainhouse.common.timeutil import now, to_timestamp
from trainhouse.evaluation import perturbations
from trainhouse.evaluation.advice import grade
from trainhouse.evaluation.evaluator import split_feedback, validated_examples
from trainhouse.evaluation.metrics import expected_calibration_error
from trainhouse.evaluation.peers import Peers
from trainhouse.evaluation.reference_ladder import (PLATFORM_MIN_MODELS, Answerer, Ladder, Member,
                                                     build_ladder, percentile)
from trainhouse.evaluation.store import EvaluationStore
from trainhouse.v1 import benchmark_pb2, evaluation_service_pb2, model_version_pb2
from trainhouse.core.ids import random_id

PER_OUTPUT = 20
FILLERS = (("Hi there, ", ". Thanks in advance!"), ("Sorry to bother you, ", "."), ("Quick question: ", "?"),
           ("Hello! ", ". Have a nice day."), ("Hope you are well. ", ". Cheers"))
DECISIVE_MARGIN = 0.2


@dataclass
class SuiteDef:
    name: str
    version: str
    description: str
    weights: dict[str, float]
    run: Callable[["Context"], tuple[dict[str, float], dict[str, Any], int]]
    advice: dict[str, str]


@dataclass
class Context:
    """One predictor's view of the probes: the model (through Predict) or a ladder member.

    The probes depend only on the seeds, the suite and its seeded generator, so every predictor
    given the same seeds answers exactly the same texts."""

    answerer: Answerer
    labels: list[str]
    seeds: list[dict[str, Any]]
    suite: str = ""
    _cache: dict[str, dict[str, float]] = field(default_factory=dict)

    def rng(self) -> random.Random:
        return random.Random(f"benchmark:{self.suite}")

    def answer(self, texts: list[str]) -> list[dict[str, float]]:
        """Full distributions for texts (each distinct text answered once per run)."""
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            self._cache.update(zip(missing, self.answerer(missing)))
        return [self._cache[t] for t in texts]

    @property
    def inputs(self) -> list[str]:
        return [e["input"] for e in self.seeds]

    @property
    def expected(self) -> list[str]:
        return [e["expected_output"] for e in self.seeds]

    def by_output(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for e in self.seeds:
            out.setdefault(e["expected_output"], []).append(e["input"])
        return out


def top(dist: dict[str, float]) -> str:
    return max(sorted(dist), key=lambda k: dist[k])


def ranked(dist: dict[str, float]) -> list[str]:
    return sorted(dist, key=lambda k: (-dist[k], k))


def _sentence(text: str) -> str:
    return text.strip().rstrip(".!?")


def _balanced_recall(expected: list[str], predicted: list[str]) -> tuple[float, dict[str, float]]:
    per: dict[str, list[bool]] = {}
    for e, p in zip(expected, predicted):
        per.setdefault(e, []).append(e == p)
    recalls = {k: float(np.mean(v)) for k, v in sorted(per.items())}
    return float(np.mean(list(recalls.values()))) if recalls else 0.0, recalls


# --- suites ------------------------------------------------------------------------------------
def standard_reasoning(ctx: Context) -> tuple[dict[str, float], dict[str, Any], int]:
    rng = ctx.rng()
    groups = ctx.by_output()
    outputs = sorted(groups)
    base_probes = list(zip(ctx.inputs, ctx.expected))
    composition, filler, negation = [], [], []
    for i, (text, out) in enumerate(base_probes):
        same = [t for t in groups[out] if t != text]
        if same:
            composition.append((f"{_sentence(text)}. Also, {_sentence(rng.choice(same))}", out))
        pre, post = FILLERS[i % len(FILLERS)]
        filler.append((f"{pre}{_sentence(text)}{post}", out))
        others = [o for o in outputs if o != out]
        if others:
            other_text = rng.choice(groups[rng.choice(others)])
            negation.append((f"This is not about {_sentence(other_text).lower()}. {text}", out))
    families = {"base": base_probes, "composition": composition, "filler": filler, "negation": negation}
    scores, details, count = {}, {}, 0
    for name, probes in families.items():
        if not probes:
            continue
        answers = ctx.answer([p[0] for p in probes])
        right = [top(a) == p[1] for a, p in zip(answers, probes)]
        scores[name] = float(np.mean(right))
        failed = [p[0] for p, r in zip(probes, right) if not r][:3]
        details[name] = {"probes": len(probes), "correct": int(sum(right)), "failed_examples": failed}
        count += len(probes)
    return scores, details, count


def tool_usage(ctx: Context) -> tuple[dict[str, float], dict[str, Any], int]:
    answers = ctx.answer(ctx.inputs)
    predicted = [top(a) for a in answers]
    balanced, recalls = _balanced_recall(ctx.expected, predicted)
    k = min(2, len(ctx.labels))
    in_top = [e in ranked(a)[:k] for a, e in zip(answers, ctx.expected)]
    decisive = []
    for a, e, p in zip(answers, ctx.expected, predicted):
        if p == e:
            order = ranked(a)
            runner = a[order[1]] if len(order) > 1 else 0.0
            decisive.append(a[p] - runner >= DECISIVE_MARGIN)
        else:
            decisive.append(False)
    confusions: dict[str, int] = {}
    for e, p in zip(ctx.expected, predicted):
        if e != p:
            confusions[f"{e} -> {p}"] = confusions.get(f"{e} -> {p}", 0) + 1
    worst = sorted(confusions.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    details = {"per_tool_recall": recalls, "most_confused": [{"pair": k_, "count": v} for k_, v in worst],
               "ranking_k": k}
    return ({"tool_choice": balanced, "ranking": float(np.mean(in_top)), "decisiveness": float(np.mean(decisive))},
            details, len(answers))


def multi_step_planning(ctx: Context) -> tuple[dict[str, float], dict[str, Any], int]:
    rng = ctx.rng()
    groups = ctx.by_output()
    outputs = sorted(groups)
    if len(outputs) < 2:
        raise FailedPrecondition("multi-step-planning needs held-out examples of at least 2 outputs",
                                 field="suites")
    chains: list[list[tuple[str, str]]] = []
    for length in (2, 3):
        for _ in range(20):
            picked = rng.sample(outputs, min(length, len(outputs)))
            chains.append([(rng.choice(groups[o]), o) for o in picked])
    step_probes: list[tuple[str, str]] = []
    for chain in chains:
        for j, (text, out) in enumerate(chain):
            step_probes.append((text if j == 0 else f"After {_sentence(chain[j - 1][0]).lower()}, {text}", out))
    answers = ctx.answer([p[0] for p in step_probes])
    right = [top(a) == p[1] for a, p in zip(answers, step_probes)]
    success, pos = [], 0
    for chain in chains:
        success.append(all(right[pos:pos + len(chain)]))
        pos += len(chain)
    whole = []
    for chain in chains:
        words = ("First", "Then") if len(chain) == 2 else ("First", "Then", "Finally")
        whole.append(" ".join(f"{w}, {_sentence(t).lower()}." for w, (t, _) in zip(words, chain)))
    whole_answers = ctx.answer(whole)
    covered = [set(o for _, o in chain) <= set(ranked(a)[:len(chain)]) for a, chain in zip(whole_answers, chains)]
    details = {"chains": len(chains), "steps": len(step_probes),
               "plan_success_by_length": {str(n): float(np.mean([s for s, c in zip(success, chains) if len(c) == n]))
                                          for n in sorted({len(c) for c in chains})}}
    return ({"step_accuracy": float(np.mean(right)), "plan_success": float(np.mean(success)),
             "coverage": float(np.mean(covered))}, details, len(step_probes) + len(whole))


def coherence(ctx: Context) -> tuple[dict[str, float], dict[str, Any], int]:
    answers = ctx.answer(ctx.inputs)
    predicted = [top(a) for a in answers]
    confidence = np.array([a[p] for a, p in zip(answers, predicted)])
    correct = np.array([p == e for p, e in zip(predicted, ctx.expected)], dtype=float)
    scores = {"calibration": 1.0 - expected_calibration_error(confidence, correct)}
    details: dict[str, Any] = {"accuracy": float(correct.mean())}
    if 0 < correct.sum() < len(correct):
        from scipy import stats as sps  # imported on first use: slow to import

        u = sps.mannwhitneyu(confidence[correct == 1], confidence[correct == 0], alternative="two-sided").statistic
        scores["discrimination"] = float(u / (correct.sum() * (len(correct) - correct.sum())))
    else:
        details["discrimination"] = "not measurable: every answer was " + ("right" if correct.all() else "wrong")
    doubled = ctx.answer([f"{_sentence(t)}. {t}" for t in ctx.inputs])
    scores["repetition"] = float(np.mean([top(d) == p for d, p in zip(doubled, predicted)]))
    return scores, details, 2 * len(answers)


def consistency(ctx: Context) -> tuple[dict[str, float], dict[str, Any], int]:
    base = [top(a) for a in ctx.answer(ctx.inputs)]
    variants = perturbations.variants(ctx.inputs, seed=0)
    if not variants:
        return {"agreement": 1.0}, {"note": "no input could be perturbed"}, 0
    answers = [top(a) for a in ctx.answer([v[2] for v in variants])]
    agree = np.array([answers[j] == base[i] for j, (i, _, _) in enumerate(variants)])
    right = np.array([answers[j] == ctx.expected[i] for j, (i, _, _) in enumerate(variants)])
    by_kind = {k: float(agree[[v[1] == k for v in variants]].mean()) for k in perturbations.KINDS
               if any(v[1] == k for v in variants)}
    return ({"agreement": float(agree.mean()), "perturbed_accuracy": float(right.mean())},
            {"agreement_by_kind": by_kind, "perturbed_inputs": len(variants)}, len(variants))


def helpfulness(ctx: Context) -> tuple[dict[str, float], dict[str, Any], int]:
    answers = ctx.answer(ctx.inputs)
    predicted = [top(a) for a in answers]
    balanced, recalls = _balanced_recall(ctx.expected, predicted)
    shortlist = [e in ranked(a)[:3] for a, e in zip(answers, ctx.expected)]
    return ({"accuracy": float(np.mean([p == e for p, e in zip(predicted, ctx.expected)])),
             "balanced_recall": balanced, "shortlist": float(np.mean(shortlist))},
            {"recall_by_output": recalls}, len(answers))


SUITES: dict[str, SuiteDef] = {s.name: s for s in (
    SuiteDef("standard-reasoning", "1", "Classifier probes, not open-ended reasoning: is the output the request is "
             "about chosen for plain held-out inputs, two inputs with the same need joined, inputs wrapped in "
             "neutral filler, and inputs preceded by an explicitly dismissed other need?",
             {"base": 0.25, "composition": 0.25, "filler": 0.25, "negation": 0.25},
             standard_reasoning,
             {"base": "add training examples for the outputs it misses",
              "composition": "train on longer inputs that combine several sentences about the same need",
              "filler": "add examples with greetings and filler text around the request",
              "negation": "add examples that mention and dismiss another need ('not X, but Y')"}),
    SuiteDef("tool-usage", "1", "Classifier probes with the catalog's outputs read as tools (no tool is "
             "called): is the expected output chosen (balanced over outputs), ranked among the top two, and "
             "chosen by a clear margin?", {"tool_choice": 0.5, "ranking": 0.3, "decisiveness": 0.2},
             tool_usage,
             {"tool_choice": "add examples for the tools with the lowest recall",
              "ranking": "add examples that separate the most confused tool pairs",
              "decisiveness": "train longer or add examples so the right tool wins by a clear margin"}),
    SuiteDef("multi-step-planning", "1", "Classifier probes on chained requests (no plan is generated or "
             "executed): is each step of a 2- or 3-step chain answered with its output when the previous step "
             "precedes it, is every step of a chain right, and does a chain written as one text rank every "
             "step's output among the top k?",
             {"step_accuracy": 0.4, "plan_success": 0.4, "coverage": 0.2}, multi_step_planning,
             {"step_accuracy": "add multi-sentence examples where an earlier step precedes the current request",
              "plan_success": "raise per-step accuracy: plan success compounds each step's errors",
              "coverage": "add examples that combine several needs in one request"}),
    SuiteDef("coherence", "1", "Classifier probes on the version's confidence (no text is generated): "
             "calibration of the top probability on held-out inputs, AUROC of that probability for right versus "
             "wrong answers, and the same answer for a request written twice.",
             {"calibration": 1 / 3, "discrimination": 1 / 3, "repetition": 1 / 3}, coherence,
             {"calibration": "retrain with early stopping on more validation data to calibrate confidence",
              "discrimination": "add examples near the decision boundaries so confidence separates right from wrong",
              "repetition": "add longer examples so input length does not change the decision"}),
    SuiteDef("consistency", "1", "Classifier probes under casing, punctuation, typo and word-order "
             "changes: the same answer as for the unchanged input, and the expected one.",
             {"agreement": 0.7, "perturbed_accuracy": 0.3}, consistency,
             {"agreement": "augment the training data with perturbed variants of existing examples",
              "perturbed_accuracy": "augment the training data with perturbed variants of existing examples"}),
    SuiteDef("helpfulness", "1", "Classifier probes on held-out inputs (no human or LLM judgement): "
             "accuracy, recall balanced over outputs, and the expected output among the top three.",
             {"accuracy": 0.3, "balanced_recall": 0.5, "shortlist": 0.2},
             helpfulness,
             {"accuracy": "add training examples for the outputs it misses",
              "balanced_recall": "add examples for rare outputs (low recall)",
              "shortlist": "add examples that separate the most confused outputs"}),
)}


def suite_protos() -> list[evaluation_service_pb2.BenchmarkSuite]:
    return [evaluation_service_pb2.BenchmarkSuite(name=s.name, version=s.version, description=s.description,
                                                  component_weights=s.weights) for s in SUITES.values()]


def validate_suites(names: list[str]) -> list[str]:
    if not names:
        return list(SUITES)
    out = []
    for i, raw in enumerate(names):
        name = raw.strip().lower()
        if name not in SUITES:
            raise InvalidArgument(f"suites[{i}]", f"unknown benchmark suite '{raw}'; valid suites: "
                                  + ", ".join(SUITES), metadata={"valid": ",".join(SUITES)})
        if name not in out:
            out.append(name)
    return out


def weighted_score(weights: dict[str, float], components: dict[str, float]) -> float:
    used = {k: w for k, w in weights.items() if k in components}
    total = sum(used.values())
    return 100.0 * sum(components[k] * w for k, w in used.items()) / total if total else 0.0


def canonical_seeds(examples: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Positives in canonical order, at most PER_OUTPUT per output (a seeded, order-free choice)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in sorted(examples, key=lambda e: (e["expected_output"], e["input"])):
        groups.setdefault(e["expected_output"], []).append(e)
    out = []
    for output in sorted(groups):
        items = groups[output]
        if len(items) > PER_OUTPUT:
            items = random.Random(f"benchmark-seeds:{output}").sample(items, PER_OUTPUT)
            items.sort(key=lambda e: e["input"])
        out.extend(items)
    return out


def data_statement(seeds: list[dict[str, Any]], seed_job: str, reference_source: str) -> str:
    """Which data the probes (and the ladder's baselines) came from, in one sentence."""
    outputs = len({e["expected_output"] for e in seeds})
    origin = (f"held-out (validation) examples of {seed_job}" if seed_job
              else "examples given with the request")
    return (f"Probes built from {len(seeds)} {origin} (at most {PER_OUTPUT} per output, {outputs} outputs); "
            f"ladder baselines built from {reference_source}.")


@dataclass
class Rung:
    """A ladder member with its own answer cache, so each distinct text is answered once per run."""

    member: Member
    ctx: Context
    failed: str = ""


class Benchmarks:
    def __init__(self, store: EvaluationStore, peers: Peers):
        self.store = store
        self.peers = peers

    def _seeds(self, version: model_version_pb2.ModelVersion, examples: list[dict[str, Any]]
               ) -> tuple[list[dict[str, Any]], str]:
        """The probes' seed examples and the job they came from ("" when given inline)."""
        if examples:
            items = validated_examples(examples, "examples")
            seed_job = ""
        else:
            if not version.job_id:
                raise FailedPrecondition(f"version {version.version_id} was not trained by a job here: pass "
                                         "seed examples", field="examples")
            items = self.peers.job_examples(version.job_id, "validation")
            seed_job = version.job_id
            if not items:
                raise FailedPrecondition(f"job '{version.job_id}' held out no examples: pass seed examples",
                                         field="examples")
        seeds = canonical_seeds(split_feedback(items)[0])
        if not seeds:
            raise InvalidArgument("examples", "no examples with an expected output")
        return seeds, seed_job

    def run(self, agent_id: str, version_id: str, suites: list[str], examples: list[dict[str, Any]]
            ) -> benchmark_pb2.BenchmarkRun:
        if not agent_id:
            raise InvalidArgument("agent_id", "is required")
        names = validate_suites(suites)
        version = self.peers.serving_version(agent_id, version_id)
        seeds, seed_job = self._seeds(version, examples)
        labels = list(version.labels)

        def model_answer(texts: list[str]) -> list[dict[str, float]]:
            return self.peers.predict(agent_id, version.version_id, texts, len(labels)).distributions

        ctx = Context(model_answer, labels, seeds)
        ladder = build_ladder(self.peers, agent_id, version, seeds)
        rungs = [Rung(m, Context(m.answer, labels, seeds)) for m in ladder.members]
        data = data_statement(seeds, seed_job, ladder.reference_source)
        run = benchmark_pb2.BenchmarkRun(benchmark_id=random_id("bench", 12), agent_id=agent_id,
                                         version_id=version.version_id, create_time=to_timestamp(now()),
                                         seed_job_id=seed_job, seed_examples=len(seeds))
        recommendations = []
        for name in names:
            suite = SUITES[name]
            components, details, probes = self._score(suite, ctx)
            score = round(weighted_score(suite.weights, components), 2)
            result = benchmark_pb2.SuiteResult(suite=name, suite_version=suite.version, score=score,
                                               component_scores=components, probe_count=probes, grade=grade(score),
                                               measured=suite.description, data=data)
            struct = struct_pb2.Struct()
            struct.update(details)
            result.details.CopyFrom(struct)
            self._rank(result, suite, rungs, ladder, (agent_id, version.version_id))
            run.results.append(result)
            if score < 80 and components:
                weakest = min(components, key=lambda k: (components[k], k))
                recommendations.append((score, f"Improve {name} (score {score:.0f}): {suite.advice[weakest]} "
                                               f"(weakest probe family '{weakest}' at {components[weakest]:.2f})"))
        run.overall_score = round(float(np.mean([r.score for r in run.results])), 2)
        run.overall_rank = grade(run.overall_score)
        run.recommendations.extend(text for _, text in sorted(recommendations))
        self.store.add_benchmark_run(run)
        return run

    @staticmethod
    def _score(suite: SuiteDef, ctx: Context) -> tuple[dict[str, float], dict[str, Any], int]:
        ctx.suite = f"{suite.name}@{suite.version}"
        return suite.run(ctx)

    def _rank(self, result: benchmark_pb2.SuiteResult, suite: SuiteDef, rungs: list[Rung], ladder: Ladder,
              model: tuple[str, str]) -> None:
        """Score every ladder member on the suite's probes, then place the model's score among them
        (and among the caller's account's other models once there are PLATFORM_MIN_MODELS)."""
        population = result.population
        population.not_measured.extend(ladder.not_measured)
        scores: list[float] = []
        for rung in rungs:
            if rung.failed:
                population.not_measured.append(f"{rung.member.name}: {rung.failed}")
                continue
            try:
                components, _, _ = self._score(suite, rung.ctx)
            except TrainhouseError as exc:  # e.g. an earlier version that no longer serves
                rung.failed = exc.message
                population.not_measured.append(f"{rung.member.name}: {exc.message}")
                continue
            score = round(weighted_score(suite.weights, components), 2)
            scores.append(score)
            result.ladder.append(benchmark_pb2.LadderScore(
                name=rung.member.name, kind=rung.member.kind, score=score, component_scores=components,
                description=rung.member.description))
        others = self.store.suite_scores(suite.name, suite.version)
        others.pop(model, None)
        population.ladder_members = len(scores)
        population.platform_models_available = len(others)
        population.kind = "reference_ladder"
        if len(others) >= PLATFORM_MIN_MODELS:
            scores += list(others.values())
            population.platform_models = len(others)
            population.kind = "reference_ladder+platform"
        population.size = len(scores)
        result.percentile = round(percentile(result.score, scores), 1)
