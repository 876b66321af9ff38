"""What validation returns: findings (issues invalidate, warnings do not) and statistics."""
from __future__ import annotations

from dataclasses import dataclass, field

from trainhouse.data.validator.label_issues import LabelIssue

SEVERITIES = ("low", "medium", "high")
MAX_INDEXES = 20


@dataclass
class Finding:
    type: str
    message: str
    severity: str
    suggestion: str = ""
    count: int = 0
    example_indexes: list[int] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        assert self.severity in SEVERITIES, self.severity
        self.example_indexes = sorted(self.example_indexes)[:MAX_INDEXES]


@dataclass
class ValidationReport:
    issues: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)
    total_examples: int = 0
    duplicates: int = 0
    near_duplicates: int = 0
    conflicting_inputs: int = 0
    average_quality: float = 0.0
    class_balance: dict[str, float] = field(default_factory=dict)
    # Label check: every flagged example, most doubtful first; examples checked; flagged / checked.
    label_issues: list[LabelIssue] = field(default_factory=list)
    label_issues_checked: int = 0
    label_noise_rate: float = 0.0

    @property
    def valid(self) -> bool:
        return not self.issues


def share_severity(share: float, medium: float, high: float) -> str:
    """low below ``medium``, medium below ``high``, else high."""
    return "high" if share >= high else ("medium" if share >= medium else "low")


def percent(share: float) -> str:
    """0.123 -> "12%"; small non-zero shares keep one decimal ("0.4%")."""
    value = share * 100
    return f"{value:.0f}%" if value >= 1 or value == 0 else f"{value:.1f}%"
