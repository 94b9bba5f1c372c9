"""`emergelab config` prints each key's comment (from its config class's source) beside its value, and what it
prints loads back as the same config, for every registered experiment."""

import dataclasses
from dataclasses import dataclass, field

import pytest
import yaml

from emergelab import api
from emergelab.config import ConfigError, _type_name, dump_yaml, field_comments, load_config

# Keys with no comment in their config class (none today): every key gets one (its meaning and unit) in the
# file that defines it. A key without a comment that is not listed here fails the test.
UNCOMMENTED: dict[str, set[str]] = {}


def leaf_keys(cfg, prefix=""):
    """(dotted key, has a comment) for every leaf key of a config."""
    notes = field_comments(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            yield from leaf_keys(value, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", f.name in notes


EXPERIMENTS = [name for name, _ in api.list_experiments()]


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_key_has_a_comment_or_is_listed(name):
    missing = {key for key, has in leaf_keys(api.experiment_config(name)) if not has}
    assert missing <= UNCOMMENTED.get(name, set()), f"{name}: keys without a comment: {sorted(missing)}"


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_the_commented_yaml_loads_back_as_the_same_config(name, tmp_path):
    cfg = api.experiment_config(name)
    text = dump_yaml(cfg, comments=True)
    assert yaml.safe_load(text) == yaml.safe_load(dump_yaml(cfg))  # the comments change nothing
    (tmp_path / "c.yaml").write_text(text)
    assert load_config(type(cfg), tmp_path / "c.yaml") == cfg
    commented = [line for line in text.splitlines() if "  # " in line]
    assert len(commented) >= sum(has for _, has in leaf_keys(cfg))


def test_comment_sits_beside_its_value_and_sections_nest():
    text = dump_yaml(api.experiment_config("induction", overrides=["train.steps=500"]), comments=True)
    lines = text.splitlines()
    steps = next(line for line in lines if line.strip().startswith("steps:"))
    assert steps.split("#")[0].split() == ["steps:", "500"] and steps.endswith("# optimizer updates")
    assert lines[lines.index("train:") + 1].startswith("  ")  # a section's keys are indented under it
    d_model = next(line for line in lines if line.startswith("  d_model:"))
    assert d_model.split("#")[0].split() == ["d_model:", "48"] and d_model.endswith("# width of the residual stream "
                                                                                   "(embedding size)")


@dataclass
class Inner:
    """The inner section."""

    rate: float = 0.5  # per second  # noqa: E501
    odd: str = "a # b: c"  # a value that looks like a comment


@dataclass
class Base:
    seed: int = 0  # where randomness starts


@dataclass
class Outer(Base):
    name: str = "x"
    steps: list[int] = field(default_factory=lambda: [1, 2])  # step counts,
    # a comment on a line of its own belongs to no key
    inner: Inner = field(default_factory=Inner)
    mapping: dict[str, float] = field(default_factory=lambda: {"a": 1.0, "b c": float("inf")})  # weights

    def method(self) -> None:
        x: int = 1  # not a field
        del x


def test_comments_come_from_the_class_and_its_bases_and_skip_tool_comments():
    assert field_comments(Outer) == {"seed": "where randomness starts", "steps": "step counts,",
                                     "inner": "The inner section.", "mapping": "weights"}
    assert field_comments(Inner) == {"rate": "per second", "odd": "a value that looks like a comment"}
    cfg = Outer(steps=[3], inner=Inner(odd="x\ny #"))
    text = dump_yaml(cfg, comments=True)
    assert "\nname: x\n" in text  # no comment: no '#'
    assert load_config(Outer, _write(text)) == cfg


def _write(text: str):
    import tempfile
    from pathlib import Path

    path = Path(tempfile.mkdtemp()) / "c.yaml"
    path.write_text(text)
    return path


def test_type_names_read_as_words():
    from typing import Literal

    assert _type_name(list[str]) == "a list of str" and _type_name(str) == "a string"
    assert _type_name(int | None) == "int or null"
    assert _type_name(Literal["grid", "kmeans"]) == "'grid' or 'kmeans'"
    assert _type_name(dict[str, float]) == "a mapping of str to float"
    with pytest.raises(ConfigError, match="expects"):
        load_config(Outer, overrides=["name=[1, 2]"])
