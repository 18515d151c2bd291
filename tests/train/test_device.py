import psutil
import pytest
import torch

from finscale.errors import InputError
from finscale.train.device import (
    cpu_flags,
    cpu_has_bf16,
    default_memory_limit,
    resolve_device,
    resolve_precision,
)


def test_auto_device_is_the_best_available():
    expected = (
        "cuda"
        if torch.cuda.is_available()
        else ("mps" if torch.backends.mps.is_available() else "cpu")
    )
    assert resolve_device("auto").type == expected


def test_cpu_is_always_available():
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "tpu"])
def test_unknown_device_is_an_input_error(name):
    with pytest.raises(InputError) as info:
        resolve_device(name)
    assert info.value.where == "--device"


def test_cuda_is_checked_against_the_machine():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(InputError, match="use --device cpu"):
            resolve_device("cuda")


def test_auto_precision_on_cpu_follows_the_cpu_flags():
    precision = resolve_precision("auto", torch.device("cpu"))
    has_bf16 = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    assert cpu_has_bf16() is has_bf16
    assert precision.dtype == ("bf16" if has_bf16 else "fp32")
    assert precision.reason.startswith("auto:")


def test_explicit_precision_is_kept_and_unknown_is_refused():
    assert resolve_precision("fp32", torch.device("cpu")).dtype == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")).dtype == "bf16"
    with pytest.raises(InputError):
        resolve_precision("fp16", torch.device("cpu"))


def test_default_cpu_memory_limit_is_a_share_of_available_ram():
    limit = default_memory_limit(torch.device("cpu"))
    assert 0 < limit.bytes < psutil.virtual_memory().total
    assert "available RAM" in limit.source
