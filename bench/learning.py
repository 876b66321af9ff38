"""Learning quality of the default settings on a real intent set, next to scikit-learn in the same run.

    .venv/bin/python bench/learning.py [--data DIR] [--unknown K] [--skip-oos]

Starts a throw-away stack (every service + the gateway), then:

1. **Defaults.** Trains an agent on ``hwu64_train.jsonl`` through the gateway
   (``POST /api/v1/training/train-agent`` with ``{"method": "supervised"}`` and nothing else: every
   setting is the "auto" default), scores ``hwu64_test.jsonl`` with Predict
   (``POST /api/v1/agents/{id}/predict``, the served calibrated probabilities) and prints accuracy,
   macro F1, ECE (15 bins, top label) and training time (the job's start to end time) next to
   scikit-learn TF-IDF (word 1-2 + char_wb 2-5, sublinear tf) + LogisticRegression(C=10) fitted in
   this run on the same split (fit time = vectorizer fit + model fit).
2. **Out of scope, no OOS data** (lines ``[no OOS data]``). ``--unknown K`` intents (every
   64/K-th of the sorted intents, default 8) are left out of training; a second default job trains
   on the rest. Its test set is the in-scope test examples plus the left-out intents' test examples
   (the unseen unknowns). Prints out-of-scope recall and precision of the version's abstention
   (``outOfScope``) and in-scope accuracy with abstention (an abstaining in-scope example counts
   wrong) against without (the top output).
3. **Out of scope with OOS training data** (lines ``[K other intents trained as __out_of_scope__]``,
   Larson et al. 2019's "oos-train"). The same K unseen intents are left out; a second, disjoint
   group of K intents (the ones halfway between them in sorted order) is relabelled
   ``__out_of_scope__`` and trained on as an output (its held-out share chooses the threshold). The
   test set is the remaining in-scope intents' test examples plus the unseen intents' ones (the
   relabelled intents' test examples are dropped: they are not unseen). Recall and precision are
   on the unseen intents only; the drop is with vs without abstention of that same version.

Targets (issue #19): default accuracy >= scikit-learn's, train time <= its fit time, ECE <= 0.05,
OOS recall >= 50% with an in-scope accuracy drop <= 1.5 points. Lines start ``RESULT |``.

Last run (2 cores): accuracy 0.8846 (sklearn 0.8831), macro F1 0.8857 (0.8861), ECE 0.0172
(0.0732), 39.5 s (43.1 s). Out of scope, 8 unseen intents (164 test examples): no OOS data recall
0.207, precision 0.415, drop 1.43 points; 8 other intents trained as ``__out_of_scope__`` recall
0.274, precision 0.495, drop 2.26 points. The OOS target is met under neither protocol.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import temp_stack  # noqa: E402

import httpx  # noqa: E402
import numpy as np  # noqa: E402

OOS = "__out_of_scope__"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def load(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def ece(conf: np.ndarray, right: np.ndarray, bins: int = 15) -> float:
    which = np.minimum((conf * bins).astype(int), bins - 1)
    return float(sum(abs(right[which == b].mean() - conf[which == b].mean()) * (which == b).sum()
                     for b in range(bins) if (which == b).any()) / len(conf))


def macro_f1(expected: list[str], predicted: list[str]) -> float:
    from sklearn.metrics import f1_score
    return float(f1_score(expected, predicted, average="macro", labels=sorted(set(expected))))


def _seconds(start: str, end: str) -> float:
    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))
    return (parse(end) - parse(start)).total_seconds()


def train(api: httpx.Client, agent: str, examples: list[dict[str, str]]) -> dict[str, Any]:
    r = api.post("/api/v1/training/train-agent", json={"agentId": agent, "config": {"method": "supervised"},
                                                       "examples": examples})
    r.raise_for_status()
    job_id = r.json()["data"]["trainingJobId"]
    deadline = time.monotonic() + 3600
    while True:
        status = api.get(f"/api/v1/training/train-agent/{job_id}").json()["data"]
        if status["status"] in ("completed", "failed", "cancelled"):
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} not done after an hour")
        time.sleep(1.0)
    if status["status"] != "completed":
        raise RuntimeError(f"job {job_id} {status['status']}: {status.get('error')}")
    job = api.get(f"/api/v1/training/train-agent/{job_id}/metrics").json()["data"]
    return {"job_id": job_id, "status": status, "seconds": _seconds(status["startTime"], status["endTime"]),
            "version": status.get("modelVersion"), "metrics": job}


def predict(api: httpx.Client, agent: str, texts: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(texts), 500):
        r = api.post(f"/api/v1/agents/{agent}/predict", json={"inputs": texts[start:start + 500],
                                                               "versionId": "latest", "topK": 1})
        r.raise_for_status()
        out.extend(r.json()["data"]["predictions"])
    return out


def sklearn_baseline(train_rows: list[dict[str, str]], test_rows: list[dict[str, str]]) -> dict[str, float]:
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    x_text, y = [e["input"] for e in train_rows], [e["expected_output"] for e in train_rows]
    started = time.perf_counter()
    word = TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True)
    char = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True)
    x = hstack([word.fit_transform(x_text), char.fit_transform(x_text)]).tocsr()
    clf = LogisticRegression(C=10, max_iter=1000).fit(x, y)
    seconds = time.perf_counter() - started
    t_text, t_y = [e["input"] for e in test_rows], [e["expected_output"] for e in test_rows]
    probs = clf.predict_proba(hstack([word.transform(t_text), char.transform(t_text)]).tocsr())
    pred = clf.classes_[probs.argmax(axis=1)]
    right = pred == np.asarray(t_y)
    return {"accuracy": float(right.mean()), "macro_f1": macro_f1(t_y, list(pred)),
            "ece": ece(probs.max(axis=1), right), "seconds": seconds}


def line(name: str, ours: float, unit: str, theirs: float | None, baseline: str, target: str) -> None:
    other = f"{baseline}: {theirs:,.4f} {unit}" if theirs is not None else baseline
    print(f"RESULT | {name} | {ours:,.4f} {unit} | {other} | target {target}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--unknown", type=int, default=8, help="intents left out of training as unknown")
    parser.add_argument("--skip-oos", action="store_true")
    args = parser.parse_args()
    train_rows, test_rows = load(args.data / "hwu64_train.jsonl"), load(args.data / "hwu64_test.jsonl")
    print(f"data: {len(train_rows)} train, {len(test_rows)} test, "
          f"{len({e['expected_output'] for e in train_rows})} intents", flush=True)
    base = sklearn_baseline(train_rows, test_rows)
    print(f"sklearn: {base}", flush=True)
    with temp_stack() as stack:
        token = stack.admin_token_file.read_text().strip()
        with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"},
                          timeout=600) as api:
            agent = f"bench-learning-{uuid.uuid4().hex[:6]}"
            job = train(api, agent, train_rows)
            config = api.get(f"/api/v1/training/train-agent/{job['job_id']}").json()["data"]
            print(f"job {job['job_id']}: {job['seconds']:.1f} s, status {json.dumps(config)[:400]}", flush=True)
            preds = predict(api, agent, [e["input"] for e in test_rows])
            expected = [e["expected_output"] for e in test_rows]
            top = [p["top"][0]["output"] for p in preds]
            conf = np.asarray([p["top"][0]["probability"] for p in preds])
            right = np.asarray(top) == np.asarray(expected)
            line("hwu64 test accuracy (defaults)", float(right.mean()), "", base["accuracy"], "sklearn tfidf+LR C=10",
                 ">= sklearn")
            line("hwu64 test macro F1 (defaults)", macro_f1(expected, top), "", base["macro_f1"], "sklearn tfidf+LR C=10",
                 ">= sklearn")
            line("hwu64 test ECE (calibrated)", ece(conf, right), "", base["ece"], "sklearn tfidf+LR C=10", "<= 0.05")
            line("hwu64 training time (job start to end)", job["seconds"], "s", base["seconds"],
                 "sklearn vectorize+fit", "<= sklearn")
            if args.skip_oos:
                return
            intents = sorted({e["expected_output"] for e in train_rows})
            step = max(1, len(intents) // max(1, args.unknown))
            unknown = set(intents[::step][:args.unknown])
            exp = np.asarray(expected)
            # Protocol A (no OOS data): the unknown intents are left out of training entirely.
            agent2 = f"bench-oos-{uuid.uuid4().hex[:6]}"
            job2 = train(api, agent2, [e for e in train_rows if e["expected_output"] not in unknown])
            oos_report(api, agent2, job2, test_rows, exp, unknown, set(), "no OOS data")
            # Protocol B (OOS training data, Larson et al.'s oos-train): a second, disjoint group of
            # K intents (the ones halfway between the unknowns) is relabelled __out_of_scope__ and
            # trained on; the unknowns stay unseen. Their test examples are the ones scored as OOS.
            marked = set(intents[step // 2::step][:args.unknown]) - unknown
            data = [e if e["expected_output"] not in marked else {**e, "expected_output": OOS}
                    for e in train_rows if e["expected_output"] not in unknown]
            agent3 = f"bench-oostrain-{uuid.uuid4().hex[:6]}"
            job3 = train(api, agent3, data)
            oos_report(api, agent3, job3, test_rows, exp, unknown, marked,
                       f"{len(marked)} other intents trained as {OOS}")


def oos_report(api: httpx.Client, agent: str, job: dict[str, Any], test_rows: list[dict[str, str]], exp: np.ndarray,
               unknown: set[str], marked: set[str], protocol: str) -> None:
    """Score the test set minus the ``marked`` intents' examples (trained as OOS: not unseen) and print
    recall / precision of ``outOfScope`` on the ``unknown`` intents and the in-scope accuracy drop."""
    keep = np.asarray([e["expected_output"] not in marked for e in test_rows])
    preds = predict(api, agent, [e["input"] for e, k in zip(test_rows, keep) if k])
    exp = exp[keep]
    is_oos = np.asarray([e in unknown for e in exp])
    abstain = np.asarray([bool(p.get("outOfScope")) for p in preds])
    top = np.asarray([p["top"][0]["output"] for p in preds])
    assert OOS not in set(top), "Predict's top lists catalogue outputs only"
    threshold = preds[0].get("outOfScopeThreshold", 0.0)
    recall = float(abstain[is_oos].mean())
    precision = float(abstain[is_oos].sum() / abstain.sum()) if abstain.any() else 0.0
    acc_without = float((top[~is_oos] == exp[~is_oos]).mean())
    acc_with = float(((top[~is_oos] == exp[~is_oos]) & ~abstain[~is_oos]).mean())
    print(f"[{protocol}] job {job['job_id']}: {job['seconds']:.1f} s; unseen intents {sorted(unknown)}; "
          f"trained as OOS {sorted(marked)}; {int(is_oos.sum())} unseen and {int((~is_oos).sum())} in-scope test "
          f"examples; threshold {threshold:.4f}", flush=True)
    line(f"[{protocol}] OOS recall ({len(unknown)} unseen intents)", recall, "", None, f"threshold {threshold:.4f}",
         ">= 0.50")
    line(f"[{protocol}] OOS precision ({len(unknown)} unseen intents)", precision, "", None,
         f"threshold {threshold:.4f}", "report")
    line(f"[{protocol}] in-scope accuracy with abstention", acc_with, "", acc_without, "without abstention",
         "drop <= 0.015")

if __name__ == "__main__":
    main()
