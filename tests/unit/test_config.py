from dataclasses import dataclass, field
from typing import Literal

import pytest

from emergelab.config import ConfigError, config_hash, invalid, load_config, parse_override
from emergelab.experiments.induction import InductionConfig


@dataclass
class Inner:
    width: int = 4
    mode: Literal["a", "b"] = "a"

    def __post_init__(self):
        if self.width < 1:
            invalid("width", "must be >= 1")


@dataclass
class Outer:
    seed: int = 0
    lr: float = 1e-3
    flags: list[int] = field(default_factory=lambda: [1, 2])
    inner: Inner = field(default_factory=Inner)


def test_defaults_yaml_and_overrides_layer_in_order(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: 5\ninner:\n  width: 8\n")
    cfg = load_config(Outer, path, ["inner.width=16", "lr=1e-2", "flags=[3, 4]"])
    assert cfg.seed == 5 and cfg.inner.width == 16 and cfg.lr == 0.01 and cfg.flags == [3, 4]
    assert cfg.inner.mode == "a"


def test_unknown_key_suggests_the_close_one():
    with pytest.raises(ConfigError, match=r"Unknown config key 'inner.widht'. Did you mean: inner.width\?"):
        load_config(Outer, overrides=["inner.widht=3"])


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"'seed' expects int, got 'abc'"):
        load_config(Outer, overrides=["seed=abc"])
    with pytest.raises(ConfigError, match=r"'inner.mode' must be one of 'a', 'b'"):
        load_config(Outer, overrides=["inner.mode=c"])
    with pytest.raises(ConfigError, match="expects true or false"):
        load_config(InductionConfig, overrides=["model.layernorm=maybe"])


def test_invalid_value_names_the_full_key():
    with pytest.raises(ConfigError, match=r"^inner.width=0 is invalid: must be >= 1$"):
        load_config(Outer, overrides=["inner.width=0"])
    with pytest.raises(ConfigError, match=r"model.n_heads=5 is invalid: must divide d_model \(48\)"):
        load_config(InductionConfig, overrides=["model.n_heads=5"])
    with pytest.raises(ConfigError, match="train.checkpoint_every=75 is invalid"):
        load_config(InductionConfig, overrides=["train.checkpoint_every=75"])
    with pytest.raises(ConfigError, match="analysis.icl_late"):
        load_config(InductionConfig, overrides=["analysis.icl_late=500"])


def test_section_cannot_be_set_to_a_scalar():
    with pytest.raises(ConfigError, match="is a section"):
        load_config(Outer, overrides=["inner=3"])


def test_bad_yaml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(Outer, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("seed: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(Outer, bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_config(Outer, scalar)


def test_parse_override_and_hash():
    assert parse_override("a.b=1e-3") == ("a.b", "1e-3")  # YAML 1.1; coerced by the field's type
    assert parse_override("x=[1, 2]") == ("x", [1, 2])
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("nonsense")
    assert config_hash(Outer()) == config_hash(load_config(Outer))
    assert config_hash(Outer()) != config_hash(load_config(Outer, overrides=["seed=1"]))


def test_overriding_one_field_keeps_the_experiments_section_defaults(tmp_path):
    default = InductionConfig()
    cfg = load_config(InductionConfig, overrides=["train.steps=10"])
    assert cfg.train.steps == 10
    assert cfg.train.lr == default.train.lr and cfg.train.checkpoint_every == default.train.checkpoint_every
    path = tmp_path / "c.yaml"
    path.write_text("train:\n  batch_size: 8\n")
    cfg = load_config(InductionConfig, path)
    assert cfg.train.batch_size == 8 and cfg.train.lr == default.train.lr
