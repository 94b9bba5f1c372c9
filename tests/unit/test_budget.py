"""Size bounds: configs that cannot fit in memory or time are refused before a run exists, with the estimate;
every experiment's default and tiny configs pass."""

import pytest

import emergelab.experiments  # noqa: F401  (declares the built-in experiments)
from emergelab import api
from emergelab.errors import ConfigError
from emergelab.registry import experiments


@pytest.mark.parametrize("name", experiments.names())
def test_defaults_and_tiny_configs_fit(name):
    exp = experiments.get(name)
    for overrides in ([], list(exp.tiny)):
        cfg = api.experiment_config(name, overrides=overrides)
        if name == "icl-eval":  # its check needs a model folder; the bounds are part of config validation too
            continue
        if name == "inspect" and not overrides:  # its default names no model or text: the tiny config does
            continue
        exp.check(cfg)


@pytest.mark.parametrize(("override", "message"), [
    ("task.vocab_size=100000000", r"task\.vocab_size=100000000 is invalid: the run needs about [\d,]+ GiB of memory"),
    ("train.steps=1000000000000", r"train\.steps=1000000000000 is invalid: the run would take about [\d,]+ years"),
])
def test_induction_refuses_what_cannot_fit(override, message):
    with pytest.raises(ConfigError, match=message):
        experiments.get("induction").check(api.experiment_config("induction", overrides=[override]))
