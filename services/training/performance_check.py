"""Is adaptation needed? The caller's reported metrics next to what the platform measured.

Seed 002's adaptAgentBehavior sends the caller's view of the agent's performance
(``performance_metrics``: success_rate, user_satisfaction, ...). The platform's own measurement
of the version that serves is the share of its judged answers (RecordFeedback) in the window that
were correct. The rule (PerformanceCheck in training_service.proto): adaptation needs answers to
correct; when every judged answer of the serving version was correct, nothing is adapted and the
answer says so next to the reported numbers.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from trainhouse.core.errors import InvalidArgument
from trainhouse.v1 import feedback_pb2, training_service_pb2

NO_ERRORS_TO_CORRECT = "no_errors_to_correct"
# Reported names the measured success rate stands for.
SUCCESS_NAMES = ("success_rate", "accuracy")
MEASURED_AS = "share of the serving version's judged answers in the window that were correct"


def check_reported(reported: Mapping[str, float]) -> None:
    for name, value in reported.items():
        if not name or len(name) > 128:
            raise InvalidArgument("reported_metrics", "metric names are 1 to 128 characters")
        if not math.isfinite(value):
            raise InvalidArgument(f"reported_metrics.{name}", "must be a finite number")


def performance_check(reported: Mapping[str, float], serving_version_id: str,
                      records: Sequence[feedback_pb2.FeedbackRecord]) -> training_service_pb2.PerformanceCheck:
    mine = [r for r in records if serving_version_id and r.version_id == serving_version_id]
    incorrect = sum(1 for r in mine if not r.correct)
    out = training_service_pb2.PerformanceCheck(serving_version_id=serving_version_id, judged=len(mine),
                                                incorrect=incorrect)
    measured = (len(mine) - incorrect) / len(mine) if mine else None
    if measured is not None:
        out.measured_success_rate = measured
    for name, value in sorted(reported.items()):
        item = training_service_pb2.ReportedMetric(metric=name, reported=value)
        if name in SUCCESS_NAMES and measured is not None:
            item.measured, item.measured_as = measured, MEASURED_AS
        elif name in SUCCESS_NAMES:
            item.measured_as = "not measured: the serving version has no judged answers in the window"
        else:
            item.measured_as = "not measured by the platform (it measures success_rate / accuracy from feedback)"
        out.metrics.append(item)
    if not serving_version_id:
        out.adaptation_needed, out.reason = True, "nothing serves the agent: there is no performance to keep"
    elif measured is None:
        out.adaptation_needed = True
        out.reason = (f"no judged answers of the serving version {serving_version_id} in the window to check the "
                      "reported metrics against; adapting on the feedback recorded")
    elif incorrect == 0:
        out.adaptation_needed = False
        out.reason = (f"the serving version {serving_version_id} answered all {len(mine)} judged requests of the "
                      "window correctly: there is nothing to correct")
    else:
        out.adaptation_needed = True
        out.reason = (f"the serving version {serving_version_id} answered {incorrect} of {len(mine)} judged "
                      f"requests incorrectly (measured success rate {measured:.3f})")
    return out
