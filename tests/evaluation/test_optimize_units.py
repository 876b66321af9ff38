"""The optimizer's suggestions speak the training config's language: its names, defaults, ranges."""
from __future__ import annotations

from trainhouse.core.configs import SupervisedConfig, field_bounds
from trainhouse.evaluation.optimize import DEFAULTS, TUNABLE, _more_epochs, _published


def test_suggested_changes_use_the_published_names() -> None:
    changes = _published({"learning_rate": 0.01, "hidden_sizes": [32], "dropout": 0.3, "featurizer": {"dim": 8192}})
    assert changes == {"learningRate": 0.01, "hiddenSizes": [32], "dropout": 0.3, "featurizer": {"dim": 8192}}
    # every name a suggestion may carry is one StartJob accepts
    # (DEFAULTS is the resolved small-data config; fields outside TUNABLE, e.g. the featurizer, stay "auto")
    parsed = SupervisedConfig.from_dict(_published({name: getattr(DEFAULTS, name) for name in TUNABLE}))
    assert {name: getattr(parsed, name) for name in TUNABLE} == {name: getattr(DEFAULTS, name) for name in TUNABLE}


def test_more_epochs_stays_a_value_startjob_accepts() -> None:
    top = field_bounds(SupervisedConfig, "epochs")["le"]
    assert _more_epochs(DEFAULTS.epochs) == round(DEFAULTS.epochs * 1.5)
    assert _more_epochs(1) == 2
    assert _more_epochs(top - 1) == top
    SupervisedConfig(epochs=_more_epochs(top))  # does not raise
