"""A keyword-to-tool heuristic policy: the baseline a trained policy has to beat to be worth it.

``HeuristicPolicy.fit(env, training_queries)`` learns rules from the training queries only:

1. for each training query it tries every tool once (``[tool, finish]`` in the job's real
   environment) and labels the query with the tool whose final state matches the most expected
   fields (no label when no single tool matches any, or several tie);
2. every word of a labelled query votes for its label; a word's vote is smoothed
   (``log((count(word, tool) + 1) / (count(word) + T))``, T = number of tools).

Acting, it calls the tool with the highest total vote over the query's known words (the most
frequent label when no word is known), then ``finish``. So it captures "this kind of wording
needs that tool" and nothing else: no multi-step plans, no reaction to a failed call. That is a
fair, cheap baseline: a policy trained with GRPO should beat it where plans matter, and
``evaluation.compare_with_baselines`` says by how much with a paired test.

It has the rollout interface of ``ToolPolicy`` (``actions``, ``encode_queries``,
``project_queries``, ``action_log_probs``), so ``evaluation.run_evaluation`` rolls it out greedily
in the same environment, on the same queries.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Any, Mapping, Sequence

import numpy as np

from trainhouse.core.grpo.environment import ToolEnvironment, TrainingQuery, matched_fields
from trainhouse.core.grpo.tools import FINISH

_WORD_RE = re.compile(r"[a-z_]+")
_EPS = 1e-6


def keywords(text: str) -> list[str]:
    return _WORD_RE.findall(text.lower())


class HeuristicPolicy:
    def __init__(self, actions: Sequence[str], votes: Mapping[str, Mapping[int, int]], default_tool: int):
        self.actions = list(actions)
        if not self.actions or self.actions[-1] != FINISH:
            raise ValueError("the last action must be finish")
        self.n_tools = len(self.actions) - 1
        self.votes = {w: dict(c) for w, c in votes.items()}
        self.default_tool = int(default_tool)

    @classmethod
    def fit(cls, env: ToolEnvironment, queries: Sequence[TrainingQuery],
            comparisons: Mapping[str, Any] | None = None) -> "HeuristicPolicy":
        labels: list[int | None] = []
        for q in queries:
            scores = []
            for t in range(env.n_tools):
                final = env.run(q.query, [t, env.n_tools]).final_state()
                scores.append(matched_fields(final, q.expected_outcome, comparisons))
            best = max(scores)
            labels.append(scores.index(best) if best > 0 and scores.count(best) == 1 else None)
        votes: dict[str, Counter] = defaultdict(Counter)
        for q, label in zip(queries, labels):
            if label is not None:
                for w in set(keywords(q.query)):
                    votes[w][label] += 1
        counts = Counter(label for label in labels if label is not None)
        default = counts.most_common(1)[0][0] if counts else 0
        return cls(env.names, votes, default)

    def choose(self, text: str) -> int:
        """The tool index the rules pick for ``text``."""
        known = [w for w in set(keywords(text)) if w in self.votes]
        if not known:
            return self.default_tool
        score = np.zeros(self.n_tools)
        for w in known:
            c = self.votes[w]
            total = sum(c.values())
            for t in range(self.n_tools):
                score[t] += math.log((c.get(t, 0) + 1) / (total + self.n_tools))
        return int(np.argmax(score))

    # -- the rollout interface of ToolPolicy ---------------------------------------------------
    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([self.choose(t) for t in texts], dtype=np.int64)

    def project_queries(self, Q: np.ndarray) -> np.ndarray:
        return Q

    def action_log_probs(self, Q: np.ndarray, qidx: np.ndarray, S: np.ndarray,
                         projected: np.ndarray | None = None) -> np.ndarray:
        """Log-probabilities that put (almost) all mass on the rule's tool before any call, on
        ``finish`` after it."""
        chosen = np.asarray(Q)[qidx]
        called = np.asarray(S)[:, self.n_tools:2 * self.n_tools].sum(axis=1) > 0   # a last-tool one-hot is set
        action = np.where(called, self.n_tools, chosen)
        out = np.full((len(qidx), len(self.actions)), math.log(_EPS))
        out[np.arange(len(qidx)), action] = math.log(1 - _EPS * (len(self.actions) - 1))
        return out
