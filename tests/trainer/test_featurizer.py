import hashlib
import os
import subprocess
import sys

import numpy as np
import pytest

from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig, HashingFeaturizer

TEXTS = ["How do I reset my password?", "cancel my order #1234", "ÉCOLE café naïve", "", "   ", "?!",
         "a", "the quick brown fox jumps over the lazy dog " * 3]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _digest(X: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest()


def test_shape_dtype_and_unit_norm():
    X = HashingFeaturizer(FeaturizerConfig(dim=1024)).transform(TEXTS)
    assert X.shape == (len(TEXTS), 1024) and X.dtype == np.float32
    norms = np.linalg.norm(X, axis=1)
    for text, norm in zip(TEXTS, norms):
        if text.strip():
            assert norm == pytest.approx(1.0, abs=1e-6)
        else:
            assert norm == 0.0  # nothing to hash: the zero vector, not NaN


def test_lowercase_and_similarity():
    f = HashingFeaturizer()
    a, b, c = f.transform(["Reset my PASSWORD", "reset my password", "track my parcel"])
    assert np.array_equal(a, b)
    assert float(a @ b) > float(a @ c)
    cased = HashingFeaturizer(FeaturizerConfig(lowercase=False)).transform(["Reset", "reset"])
    assert not np.array_equal(cased[0], cased[1])


def test_sparse_matches_dense():
    f = HashingFeaturizer(FeaturizerConfig(dim=512))
    rows = f.transform_sparse(TEXTS)
    dense = f.transform(TEXTS)
    assert np.array_equal(rows.to_dense(), dense)
    assert np.array_equal(rows.to_dense([5, 0, 5]), dense[[5, 0, 5]])


def test_deterministic_across_processes():
    """The hash must not depend on PYTHONHASHSEED or anything else process-specific."""
    code = ("import hashlib, numpy as np, sys, json;"
            "from trainhouse.core.featurizer import HashingFeaturizer;"
            "X = HashingFeaturizer().transform(json.loads(sys.argv[1]));"
            "print(hashlib.sha256(np.ascontiguousarray(X).tobytes()).hexdigest())")
    import json
    expected = _digest(HashingFeaturizer().transform(TEXTS))
    for hashseed in ("1", "12345"):
        env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=ROOT)
        out = subprocess.run([sys.executable, "-c", code, json.dumps(TEXTS)], env=env, cwd=ROOT,
                             capture_output=True, text=True, check=True)
        assert out.stdout.strip() == expected


def test_config_round_trip_and_validation():
    cfg = FeaturizerConfig(dim=4096, word_ngrams=(1, 3), char_ngrams=(2, 4), lowercase=False)
    assert FeaturizerConfig.from_dict(cfg.to_dict()) == cfg
    assert FeaturizerConfig.from_dict({"dim": 4096.0, "wordNgrams": [1, 3], "charNgrams": [2, 4],
                                       "lowercase": False}) == cfg
    for bad, field in (({"dim": 3}, "featurizer.dim"), ({"dim": True}, "featurizer.dim"),
                       ({"charNgrams": [4, 2]}, "featurizer.charNgrams"),
                       ({"wordNgrams": "1,2"}, "featurizer.wordNgrams")):
        with pytest.raises(InvalidArgument) as err:
            FeaturizerConfig.from_dict(bad)
        assert err.value.field == field
