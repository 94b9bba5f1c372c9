import numpy as np
import pytest

from emergelab.errors import DataError
from emergelab.tasks.digits import load_digits_data, read_idx, write_idx


def test_sklearn_digits_are_the_default():
    X, y, shape = load_digits_data()
    assert X.shape == (1797, 64) and y.shape == (1797,) and shape == (8, 8)
    assert X.dtype == np.float32 and set(np.unique(y)) == set(range(10))


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip_and_folder_loading(tmp_path, suffix):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 5, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=12, dtype=np.uint8)
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels)
    assert np.array_equal(read_idx(tmp_path / f"train-images-idx3-ubyte{suffix}"), images)
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images[:3])
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels[:3])
    X, y, shape = load_digits_data(tmp_path)
    assert shape == (5, 4) and X.shape == (15, 20) and y.tolist() == labels.tolist() + labels[:3].tolist()
    assert np.array_equal(X[0].reshape(5, 4), images[0].astype(np.float32))


def test_empty_corrupt_and_missing_idx_files_give_clear_errors(tmp_path):
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(DataError, match="empty or truncated"):
        read_idx(tmp_path / "empty")
    (tmp_path / "bad").write_bytes(b"\x12\x34\x56\x78" + b"\x00" * 20)
    with pytest.raises(DataError, match="bad header"):
        read_idx(tmp_path / "bad")
    good = write_idx(tmp_path / "short", np.zeros((4, 3, 3), dtype=np.uint8))
    good.write_bytes(good.read_bytes()[:-5])
    with pytest.raises(DataError, match=r"declares shape \(4, 3, 3\)"):
        read_idx(good)
    (tmp_path / "x.gz").write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="not valid gzip"):
        read_idx(tmp_path / "x.gz")
    with pytest.raises(DataError, match="does not exist"):
        load_digits_data(tmp_path / "nope")
    with pytest.raises(DataError, match="holds no train-images"):
        load_digits_data(tmp_path)
    write_idx(tmp_path / "train-images-idx3-ubyte", np.zeros((2, 3, 3), dtype=np.uint8))
    with pytest.raises(DataError, match="only one of"):
        load_digits_data(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match="do not match"):
        load_digits_data(tmp_path)
