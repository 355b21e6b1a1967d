"""bf16 autocast only where the CPU has bf16 instructions: elsewhere PyTorch emulates it, many times slower."""

from __future__ import annotations

import pytest

from models import hardware


@pytest.fixture(autouse=True)
def _fresh_caches() -> None:
    hardware.cpu_flags.cache_clear()
    hardware._cpu_has_bf16.cache_clear()


def test_bf16_is_refused_on_a_cpu_without_bf16_instructions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert hardware.bf16_pays("cpu") is False
    assert hardware.bf16_pays("cpu", wanted=False) is False


def test_bf16_is_kept_where_the_cpu_has_it_or_on_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset({"avx2", "avx512_bf16"}))
    assert hardware.bf16_pays("cpu") is True
    monkeypatch.setattr(hardware, "cpu_flags", lambda: frozenset())
    assert hardware.bf16_pays("cuda") is True, "a GPU has bf16 whatever the CPU"
    assert hardware.bf16_pays("cuda", wanted=False) is False


def test_cpu_flags_are_read_from_this_machine() -> None:
    flags = hardware.cpu_flags()
    assert isinstance(flags, frozenset)
    assert not flags or any(f.startswith(("sse", "neon", "asimd", "fp")) for f in flags), flags
