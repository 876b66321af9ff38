"""Stubs on the shared stack, one channel per module."""
from __future__ import annotations

import pytest

from trainhouse.v1 import data_service_pb2_grpc, model_registry_pb2_grpc, training_service_pb2_grpc


@pytest.fixture(scope="module")
def training(stack):
    with stack.channel("training") as ch:
        yield training_service_pb2_grpc.TrainingServiceStub(ch)


@pytest.fixture(scope="module")
def registry(stack):
    with stack.channel("registry") as ch:
        yield model_registry_pb2_grpc.ModelRegistryStub(ch)


@pytest.fixture(scope="module")
def data(stack):
    with stack.channel("data") as ch:
        yield data_service_pb2_grpc.DataServiceStub(ch)
