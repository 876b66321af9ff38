"""Field types shared by several configs: one declaration of each rule (range, strictness, help
text), reused by the classifier paradigms and GRPO; a config sets only its own default."""
from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema

from trainhouse.core.configs.base import Int, Number, from_domain
from trainhouse.core.errors import InvalidArgument
from trainhouse.core.featurizer import FeaturizerConfig

MAX_EPOCHS = 10000
MAX_LAYERS = 8
MAX_LAYER_WIDTH = 4096

LearningRate = Annotated[Number, Field(gt=0, le=1, description=(
    "Peak learning rate, 0 < lr <= 1 (0 would train nothing)."))]
HiddenSizes = Annotated[tuple[Annotated[Int, Field(ge=1, le=MAX_LAYER_WIDTH)], ...], Field(
    max_length=MAX_LAYERS, description="Widths of the hidden ReLU layers, each 1..4096, at most 8 layers; empty = "
                                       "a linear softmax model.")]
Seed = Annotated[Int, Field(ge=0, le=2 ** 63 - 1, description=(
    "Seed of every random choice: same seed + data = same model."))]
GradNorm = Annotated[Number, Field(gt=0)]


def _featurizer(value: Any) -> FeaturizerConfig:
    if isinstance(value, FeaturizerConfig):
        return value
    try:
        return FeaturizerConfig.from_dict(value)
    except InvalidArgument as err:
        raise from_domain(err, "featurizer") from None


# FeaturizerConfig keeps its own checks (featurizer.py); here it becomes a field with a JSON form.
Featurizer = Annotated[
    FeaturizerConfig,
    PlainValidator(_featurizer),
    PlainSerializer(lambda f: f.to_dict()),
    WithJsonSchema({"type": "object", "description": "Hashed n-gram featurizer settings (featurizer.py).",
                    "properties": {"dim": {"type": "integer", "description": "Hash buckets"},
                                   "wordNgrams": {"type": "array", "items": {"type": "integer"},
                                                  "description": "[min, max] word n-gram lengths; [0, 0] = none"},
                                   "charNgrams": {"type": "array", "items": {"type": "integer"},
                                                  "description": "[min, max] character n-gram lengths; [0, 0] = none"},
                                   "lowercase": {"type": "boolean"},
                                   "normalize": {"type": "string", "enum": ["joint", "per_family"],
                                                 "description": "'joint': one L2 norm over all n-grams; "
                                                                "'per_family': word and character n-grams "
                                                                "weigh the same"}}}),
    Field(description="Hashed n-gram featurizer settings (dim, wordNgrams, charNgrams, lowercase, normalize)."),
]
