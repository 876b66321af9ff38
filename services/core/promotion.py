"""A promotion policy: what a job asks of the registry's promotion gate, validated once.

TrainingService validates it when a job is started (so a bad tolerance fails the StartJob call,
not the job's registration hours later) and the registry validates it again at its own edge,
both with this one definition.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from trainhouse.core.errors import InvalidArgument

DEFAULT_TOLERANCE = 0.01
DEFAULT_MIN_EXAMPLES = 20


@dataclass(frozen=True)
class Policy:
    requested_by: str
    accuracy_tolerance: float = DEFAULT_TOLERANCE
    min_examples: int = DEFAULT_MIN_EXAMPLES

    @staticmethod
    def of(message: Any, prefix: str = "promotion.") -> "Policy":
        """From a PromotionPolicy message; INVALID_ARGUMENT names the field under `prefix`."""
        requested_by = message.requested_by.strip()
        if not requested_by or len(requested_by) > 64:
            raise InvalidArgument(f"{prefix}requested_by", "1 to 64 characters: what asked for the promotion")
        tolerance = message.accuracy_tolerance if message.HasField("accuracy_tolerance") else DEFAULT_TOLERANCE
        if not 0.0 <= tolerance <= 1.0:
            raise InvalidArgument(f"{prefix}accuracy_tolerance", "must be between 0 and 1")
        minimum = message.min_examples if message.HasField("min_examples") else DEFAULT_MIN_EXAMPLES
        if not 1 <= minimum <= 1_000_000:
            raise InvalidArgument(f"{prefix}min_examples", "must be between 1 and 1000000")
        return Policy(requested_by, float(tolerance), int(minimum))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
