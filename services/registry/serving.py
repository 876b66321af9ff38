"""Warm ONNX Runtime sessions per model version, so Predict does not reload a file per call."""
from __future__ import annotations

import threading
from collections import OrderedDict

from services.common.onnx_model import OnnxModel


class SessionCache:
    def __init__(self, capacity: int = 32):
        self.capacity = capacity
        self._models: OrderedDict[str, OnnxModel] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, path: str) -> OnnxModel:
        with self._lock:
            model = self._models.get(key)
            if model is not None:
                self._models.move_to_end(key)
                return model
        model = OnnxModel.from_path(path)  # loaded outside the lock: other versions keep serving
        with self._lock:
            self._models[key] = model
            self._models.move_to_end(key)
            while len(self._models) > self.capacity:
                self._models.popitem(last=False)
        return model
