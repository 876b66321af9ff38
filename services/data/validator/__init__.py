"""Dataset validation (seed 000 `/validate-data`): duplicates, quality, label issues, balance and bias checks."""
from trainhouse.data.validator.report import Finding, ValidationReport
from trainhouse.data.validator.validator import ValidationConfig, validate

__all__ = ["Finding", "ValidationConfig", "ValidationReport", "validate"]
