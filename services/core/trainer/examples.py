"""The label map (output catalog) and target encoding of examples for the trainer.

Examples themselves and their validation live in trainhouse.core.examples (DataService and the
gateway-facing services validate them the same way); they are re-exported here for the trainer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from trainhouse.core.abstention import OUT_OF_SCOPE
from trainhouse.core.examples import FEEDBACK_VALUES, PARTIAL_WEIGHT, Example, parse_examples

__all__ = ["OUT_OF_SCOPE", "FEEDBACK_VALUES", "PARTIAL_WEIGHT", "Example", "parse_examples", "LabelMap", "Targets",
           "encode_targets"]


class LabelMap:
    """The ordered output catalog: label <-> column of the softmax.

    Order is first-seen over the examples (including "incorrect" ones, whose outputs must exist
    as columns to be pushed down), so the same data always gives the same columns.
    """

    def __init__(self, labels: Iterable[str] = ()):
        self._labels: list[str] = []
        self._index: dict[str, int] = {}
        self.extend(labels)

    @classmethod
    def from_examples(cls, *example_lists: Iterable[Example]) -> "LabelMap":
        lm = cls()
        for examples in example_lists:
            lm.extend(e.expected_output for e in examples)
        return lm

    def extend(self, labels: Iterable[str]) -> None:
        """Append unseen labels at the end (existing columns never move: transfer relies on it)."""
        for label in labels:
            if label not in self._index:
                self._index[label] = len(self._labels)
                self._labels.append(label)

    def index(self, label: str) -> int:
        return self._index[label]

    def label(self, i: int) -> str:
        return self._labels[i]

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __len__(self) -> int:
        return len(self._labels)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelMap) and self._labels == other._labels

    def __repr__(self) -> str:
        return f"LabelMap({self._labels!r})"

    def to_list(self) -> list[str]:
        return list(self._labels)

    @classmethod
    def from_list(cls, labels: Sequence[str]) -> "LabelMap":
        if len(set(labels)) != len(labels):
            raise ValueError("duplicate labels in label map")
        return cls(labels)


@dataclass
class Targets:
    """Per-example loss targets as arrays: column, loss coefficient, and unlikelihood flag."""

    y: np.ndarray         # int64 column of expected_output
    coef: np.ndarray      # float64: weight * (PARTIAL_WEIGHT if partial else 1)
    negative: np.ndarray  # bool: feedback == "incorrect"

    def take(self, rows: np.ndarray) -> "Targets":
        return Targets(self.y[rows], self.coef[rows], self.negative[rows])

    def __len__(self) -> int:
        return len(self.y)


def encode_targets(examples: Sequence[Example], label_map: LabelMap) -> Targets:
    """Turn feedback semantics into the arrays the loss consumes."""
    y = np.fromiter((label_map.index(e.expected_output) for e in examples), dtype=np.int64, count=len(examples))
    coef = np.fromiter((e.weight * (PARTIAL_WEIGHT if e.feedback == "partial" else 1.0) for e in examples),
                       dtype=np.float64, count=len(examples))
    negative = np.fromiter((e.feedback == "incorrect" for e in examples), dtype=bool, count=len(examples))
    return Targets(y, coef, negative)
