import psutil
import pytest
import torch

import finscale.train.device as device_module
from finscale.config import TrainConfig
from finscale.errors import InputError
from finscale.model import estimate_flops
from finscale.train.device import (
    CPU_BF16_MIN_FLOPS_PER_SAMPLE,
    MemoryLimit,
    clear_hardware_cache,
    cpu_flags,
    cpu_has_bf16,
    cpu_peak_flops,
    cuda_peak_flops,
    default_memory_limit,
    measure_matmul_flops,
    peak_flops,
    resolve_device,
    resolve_hardware,
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
    assert info.value.where == "train.device"


def test_cuda_is_checked_against_the_machine():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(InputError, match="use device cpu"):
            resolve_device("cuda")


def test_auto_precision_on_cpu_follows_the_cpu_flags():
    precision = resolve_precision("auto", torch.device("cpu"))
    has_bf16 = bool(cpu_flags() & {"avx512_bf16", "amx_bf16"})
    assert cpu_has_bf16() is has_bf16
    assert precision.dtype == ("bf16" if has_bf16 else "fp32")
    assert precision.reason.startswith("auto:")


def test_auto_keeps_small_models_in_fp32_on_a_cpu_with_bf16_units(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(device_module, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    cpu, threshold = torch.device("cpu"), CPU_BF16_MIN_FLOPS_PER_SAMPLE
    small = resolve_precision("auto", cpu, threshold - 1)
    assert small.dtype == "fp32"
    assert "trains faster in fp32" in small.reason and "avx512_bf16" in small.reason
    assert resolve_precision("auto", cpu, threshold).dtype == "bf16"
    assert resolve_precision("auto", cpu).dtype == "bf16"  # size unknown: as before
    # Asked for, bf16 is bf16 whatever the size.
    assert resolve_precision("bf16", cpu, 1).dtype == "bf16"


def test_the_threshold_splits_the_quick_grids_as_measured():
    """The 20K grid is below it (fp32 faster there), the 200K grid above."""
    from finscale.config import load_study_config
    from finscale.model.grid import build_grid

    model = load_study_config("quick").model
    median = {b: build_grid(b, model, 25, 60).median_flops_per_sample for b in (20_000, 200_000)}
    assert median[20_000] < CPU_BF16_MIN_FLOPS_PER_SAMPLE < median[200_000]
    grid = build_grid(20_000, model, 25, 60)
    flops = sorted(estimate_flops(a.config) for a in grid.architectures)
    assert flops[0] <= grid.median_flops_per_sample <= flops[-1]


def test_hardware_of_a_small_model_and_of_unknown_size_differ_only_in_precision(monkeypatch):
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: True)
    monkeypatch.setattr(device_module, "cpu_peak_flops", lambda dtype: 1e11)  # not measured
    clear_hardware_cache()
    try:
        config = TrainConfig(device="cpu", dtype="auto", memory_limit_bytes=2**30)
        small = resolve_hardware(config, 500_000)
        large = resolve_hardware(config, 50_000_000)
        assert (small.dtype, large.dtype) == ("fp32", "bf16")
        assert resolve_hardware(config) is large  # one entry for every large model
        assert small.memory_limit == large.memory_limit
    finally:
        clear_hardware_cache()


def test_explicit_precision_is_kept_and_unknown_is_refused():
    assert resolve_precision("fp32", torch.device("cpu")).dtype == "fp32"
    assert resolve_precision("bf16", torch.device("cpu")).dtype == "bf16"
    with pytest.raises(InputError):
        resolve_precision("fp16", torch.device("cpu"))


def test_default_cpu_memory_limit_is_a_share_of_available_ram():
    limit = default_memory_limit(torch.device("cpu"))
    assert 0 < limit.bytes < psutil.virtual_memory().total
    assert "available RAM" in limit.source


# ---------------------------------------------------------------- peaks and Hardware


@pytest.fixture
def fresh_caches():
    """Forget resolved hardware and measured peaks before and after: a test that fakes
    them must not leak its figures into later tests."""
    clear_hardware_cache()
    cpu_peak_flops.cache_clear()
    yield
    clear_hardware_cache()
    cpu_peak_flops.cache_clear()


@pytest.mark.parametrize(
    ("name", "dtype", "peak"),
    [
        ("NVIDIA H100 80GB HBM3", "bf16", 989.4e12),
        ("NVIDIA H100 PCIe", "bf16", 756e12),
        ("NVIDIA H100 PCIe", "fp32", 51.2e12),
        ("NVIDIA H200", "bf16", 989.4e12),
        ("NVIDIA GH200 480GB", "fp32", 66.9e12),
        ("NVIDIA A100-SXM4-80GB", "bf16", 312e12),
        ("NVIDIA A100-PCIE-40GB", "fp32", 19.5e12),
        ("NVIDIA L40S", "fp32", 91.6e12),
        ("NVIDIA L4", "fp32", 30.3e12),
        ("NVIDIA A10", "bf16", 125e12),
        ("Tesla V100-SXM2-16GB", "fp32", 15.7e12),
        ("Tesla V100-SXM2-16GB", "bf16", None),  # no bf16 units
        ("Tesla T4", "bf16", None),
        ("NVIDIA A10G", "bf16", None),  # not in the table
        ("NVIDIA RTX A1000", "fp32", None),
        ("NVIDIA GeForce GTX 1080", "fp32", None),
    ],
)
def test_cuda_peaks_come_from_the_table_by_name(name, dtype, peak):
    assert cuda_peak_flops(name, dtype) == peak


def test_matmul_measurement_leaves_the_global_seed_alone():
    torch.manual_seed(7)
    state = torch.get_rng_state()
    # Between a megaflop and a petaflop per second: any CPU, FLOPs counted as 2 n^3.
    assert 1e6 < measure_matmul_flops("fp32", n=64, repeats=2) < 1e15
    assert torch.equal(torch.get_rng_state(), state)


def test_cpu_peak_is_measured_once_per_process_and_dtype(monkeypatch, fresh_caches):
    calls = []

    def measure(dtype="fp32", n=1024, repeats=3):
        calls.append(dtype)
        return 1e11

    monkeypatch.setattr("finscale.train.device.measure_matmul_flops", measure)
    cpu = torch.device("cpu")
    assert peak_flops(cpu, "fp32") == (1e11, "measured: best fp32 1024x1024 matmul on this CPU")
    assert peak_flops(cpu, "fp32")[0] == cpu_peak_flops("fp32") == 1e11
    peak_flops(cpu, "bf16")
    assert calls == ["fp32", "bf16"]
    assert peak_flops(torch.device("mps"), "fp32") == (None, "unknown: no peak for mps")


def test_hardware_is_resolved_once_per_request(monkeypatch, fresh_caches):
    limits = []

    def default_limit(device):
        limits.append(device)
        return MemoryLimit(2**30, "test share")

    monkeypatch.setattr("finscale.train.device.default_memory_limit", default_limit)
    monkeypatch.setattr("finscale.train.device.measure_matmul_flops", lambda *a, **k: 1e11)
    first = resolve_hardware(TrainConfig(device="cpu", dtype="fp32"))
    again = resolve_hardware(TrainConfig(device="cpu", dtype="fp32", learning_rate=1.0))
    assert again is first and limits == [torch.device("cpu")]
    assert (first.device, first.dtype, first.precision.reason) == (
        torch.device("cpu"),
        "fp32",
        "asked",
    )
    assert (first.memory_limit_bytes, first.memory_limit.source) == (2**30, "test share")
    assert (first.peak_flops_per_second, first.peak_source.split(":")[0]) == (1e11, "measured")

    asked = resolve_hardware(TrainConfig(device="cpu", dtype="fp32", memory_limit_bytes="2GB"))
    assert asked is not first and asked.memory_limit == MemoryLimit(2 * 10**9, "asked")
    assert resolve_hardware(TrainConfig(device="cpu", dtype="bf16")).dtype == "bf16"
    assert len(limits) == 2  # the bf16 request resolved its own default limit, once
    clear_hardware_cache()
    assert resolve_hardware(TrainConfig(device="cpu", dtype="fp32")) is not first


def test_a_bad_hardware_request_is_refused_and_not_cached(fresh_caches):
    with pytest.raises(InputError) as info:
        resolve_hardware(TrainConfig(device="tpu"))
    assert info.value.where == "train.device"
    with pytest.raises(InputError):
        resolve_hardware(TrainConfig(device="tpu"))
