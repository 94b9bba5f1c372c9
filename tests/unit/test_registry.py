import pytest

from emergelab.errors import RegistryError
from emergelab.registry import Registry, experiments


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(RegistryError) as e:
        experiments.get("inductoin")
    assert str(e.value) == "Unknown experiment 'inductoin'. Did you mean: induction, lm-induction?"


def test_no_close_match_lists_choices_and_duplicates_are_refused():
    reg: Registry = Registry("widget")
    reg.register("alpha", "first")(1)
    reg.register("beta", "second")(2)
    with pytest.raises(RegistryError, match=r"Unknown widget 'zzz'. Choices: alpha, beta."):
        reg.get("zzz")
    with pytest.raises(ValueError, match="already registered"):
        reg.register("alpha")(3)
    assert reg.get("beta") == 2 and reg.names() == ["alpha", "beta"] and "alpha" in reg
    assert [e.description for e in reg] == ["first", "second"]
