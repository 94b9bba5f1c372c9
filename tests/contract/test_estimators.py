"""Every registered estimator gets these tests by registering: its class provides the classmethod
`contract_example(seed) -> (unfitted estimator, X, y or None)`, small enough to fit in well under a second."""

import importlib
import importlib.util

import numpy as np
import pytest
import torch

import emergelab.models  # noqa: F401  (registers the zoo)
from emergelab.errors import NotFittedError
from emergelab.registry import estimators

# the classic models register on import; import each one that exists, and let a broken one fail loudly
for _module in ("emergelab.models.som", "emergelab.models.rbf"):
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module)

NAMES = estimators.names()


def as_numpy(v):
    return v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)


def same_state(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k, va in a.items():
        vb = b[k]
        if isinstance(va, torch.Tensor | np.ndarray):
            if type(va) is not type(vb) or not np.array_equal(as_numpy(va), as_numpy(vb)):
                return False
        elif va != vb:
            return False
    return True


def example(name, seed=0):
    est, X, y = estimators.get(name).contract_example(seed)
    return est, X, y


def test_the_classic_models_are_registered():
    assert "som" in NAMES


@pytest.mark.parametrize("name", NAMES)
def test_fit_returns_self_and_learned_state_appears_only_after_fit(name):
    est, X, y = example(name)
    assert est.fitted_attributes() == {}
    assert est.fit(X, y) is est
    learned = est.fitted_attributes()
    assert learned and all(k.endswith("_") for k in learned)


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises_not_fitted(name):
    est, X, _ = example(name)
    with pytest.raises(NotFittedError):
        est.predict(X)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_learned_state(name):
    a, X, y = example(name, seed=3)
    b, X2, y2 = example(name, seed=3)
    a.fit(X, y)
    b.fit(X2, y2)
    assert same_state(a.fitted_attributes(), b.fitted_attributes())
    assert np.array_equal(as_numpy(a.predict(X)), as_numpy(b.predict(X)))


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip_gives_identical_predictions(name, tmp_path):
    est, X, y = example(name, seed=1)
    est.fit(X, y)
    back = type(est).load(est.save(tmp_path / f"{name}.safetensors"))
    assert back.get_params() == est.get_params()
    assert same_state(back.fitted_attributes(), est.fitted_attributes())
    assert np.array_equal(as_numpy(back.predict(X)), as_numpy(est.predict(X)))
