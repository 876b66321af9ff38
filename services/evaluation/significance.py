"""A significance test result (``trainhouse.core.stats``) as the proto every comparison carries."""
from __future__ import annotations

from trainhouse.v1 import evaluation_pb2


def significance_proto(data: dict) -> evaluation_pb2.SignificanceTest:
    """A ``TestResult.as_dict()`` (or a stored copy of one) as the proto every response carries."""
    return evaluation_pb2.SignificanceTest(**{k: v for k, v in data.items()
                                              if k in evaluation_pb2.SignificanceTest.DESCRIPTOR.fields_by_name})
