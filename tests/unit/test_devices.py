"""The `device` key: resolving names (one-line ConfigErrors) and moving batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import pytest
import torch

from emergelab.devices import check_device_name, device_label, resolve_device, to_device
from emergelab.errors import ConfigError

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
CPU_ONLY = not torch.cuda.is_available() and not torch.backends.mps.is_available()


def one_line_config_error(name, match):
    with pytest.raises(ConfigError, match=match) as info:
        resolve_device(name)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_auto_and_cpu_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(" CPU ") == torch.device("cpu")  # case and spaces, as typed in a YAML file
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    auto = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert auto.type == expected and resolve_device("Auto") == auto


@no_cuda
@pytest.mark.parametrize("name", ["cuda", "cuda:0", "CUDA:1"])
def test_cuda_without_cuda_is_a_one_line_config_error(name):
    msg = one_line_config_error(name, "CUDA is not available on this machine")
    assert msg.startswith(f"device: '{name}'") and "'auto' or 'cpu'" in msg
    with pytest.raises(ConfigError):
        resolve_device(torch.device("cuda"))  # a torch.device gets the same check


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_index_beyond_the_machine_is_a_config_error():
    one_line_config_error(f"cuda:{torch.cuda.device_count()}", "CUDA device")


@pytest.mark.parametrize("name", ["gpu0", "gpu", "", "cuda:-1", "cuda:0:1", "cpu 0"])
def test_nonsense_is_a_one_line_config_error_listing_the_choices(name):
    msg = one_line_config_error(name, "is not a device")
    assert "'auto'" in msg and "'cuda:N'" in msg


@pytest.mark.parametrize("name", ["xpu", "meta", "hip:0"])
def test_torch_devices_we_do_not_support(name):
    one_line_config_error(name, "is not supported")


def test_a_non_string_is_a_config_error():
    one_line_config_error(0, "is not a device name")  # torch.device(0) would silently mean cuda:0


@pytest.mark.skipif(not CPU_ONLY, reason="needs a machine without GPU")
def test_check_device_name_and_label():
    check_device_name("cpu")
    check_device_name("auto")
    with pytest.raises(ConfigError):
        check_device_name("cuda")
    assert device_label(torch.device("cpu")) == "cpu"


@dataclass(frozen=True)
class Batch:
    x: torch.Tensor
    meta: dict
    note: str = "n"


class Pair(NamedTuple):
    a: torch.Tensor
    b: list


def test_to_device_moves_nested_tensors_and_keeps_the_rest():
    x, y, z = torch.ones(2, 3), torch.zeros(4, dtype=torch.long), torch.arange(3)
    batch = {"b": Batch(x, {"y": y}), "p": Pair(z, [z, 7]), "t": (x, "s"), "n": None}
    moved = to_device(batch, torch.device("cpu"))
    assert isinstance(moved["b"], Batch) and isinstance(moved["p"], Pair) and isinstance(moved["t"], tuple)
    # on the CPU, CPU tensors come back themselves: no copies, so CPU runs are untouched
    assert moved["b"].x is x and moved["b"].meta["y"] is y and moved["p"].a is z and moved["p"].b[0] is z
    assert moved["p"].b[1] == 7 and moved["t"] == (x, "s") and moved["n"] is None and moved["b"].note == "n"
    assert to_device(x, torch.device("cpu")) is x


@pytest.mark.skipif(CPU_ONLY, reason="needs a GPU")
def test_to_device_on_a_gpu():
    dev = resolve_device("auto")
    moved = to_device(Pair(torch.ones(2), [torch.zeros(1)]), dev)
    assert moved.a.device.type == dev.type and moved.b[0].device.type == dev.type
