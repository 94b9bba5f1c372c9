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


def test_task_split_and_metrics_are_what_training_and_analysis_share():
    from emergelab.tasks.digits import check_digits_task, load_digits_task, split_digits, test_metrics

    task = load_digits_task(max_samples=300, seed=0)
    assert task.X.shape == (300, 64) and task.classes == [str(i) for i in range(10)] and task.shape == (8, 8)
    check_digits_task(task)
    a, b = split_digits(task, 0.25, 3.0, 1), split_digits(task, 0.25, 3.0, 1)
    assert np.array_equal(a.X_train, b.X_train) and a.X_test.shape == (75, 64)
    assert a.X_train.dtype == np.float32 and np.abs(a.X_train).max() <= 3.0
    assert np.bincount(a.y_test, minlength=10).min() >= 6  # stratified
    back = a.to_pixels(a.scaler.transform(a.X_test_raw))
    assert np.allclose(back, a.X_test_raw, atol=1e-4)
    perfect = np.eye(10)[a.y_test]
    assert test_metrics(a.y_test, perfect) == {"test_accuracy": 1.0, "macro_recall": 1.0, "macro_f1": 1.0,
                                                 "roc_auc_ovr": 1.0}
    with pytest.raises(DataError, match="at least 2 examples"):
        task.y[:] = 0
        task.y[0] = 1
        check_digits_task(task)


def test_epoch_batches_are_shuffled_epochs_and_a_pure_function_of_the_step():
    import torch

    from emergelab.tasks.digits import epoch_batches
    from emergelab.train.loop import step_generator

    X, y = torch.arange(10.0)[:, None].repeat(1, 3), torch.arange(10)
    fn = epoch_batches(X, y, batch_size=4, noise=0.0, seed=0)  # 3 batches per epoch: 4 + 4 + 2
    epoch0 = [fn(s, step_generator(0, s))[1] for s in range(3)]
    assert [len(b) for b in epoch0] == [4, 4, 2] and sorted(torch.cat(epoch0).tolist()) == list(range(10))
    epoch1 = torch.cat([fn(s, step_generator(0, s))[1] for s in range(3, 6)])
    assert sorted(epoch1.tolist()) == list(range(10)) and not torch.equal(epoch1, torch.cat(epoch0))
    fresh = epoch_batches(X, y, batch_size=4, noise=0.5, seed=0)  # a resumed run starts mid-way
    again = epoch_batches(X, y, batch_size=4, noise=0.5, seed=0)
    xb, yb = fresh(4, step_generator(0, 4))
    for s in range(5):
        again(s, step_generator(0, s))
    xb2, yb2 = again(4, step_generator(0, 4))
    assert torch.equal(xb, xb2) and torch.equal(yb, yb2) and torch.equal(yb, epoch1[4:8])
    assert not torch.equal(xb, X[yb])  # noise was added
