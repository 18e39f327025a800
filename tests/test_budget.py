"""The one budget (issue 18): core.resources.estimate / check_budget."""

from __future__ import annotations

import pytest

from actspec.core import resources
from actspec.core.errors import ActspecError
from actspec.core.validate import ParameterError


def test_estimate_time_is_flops_over_rate_plus_overheads() -> None:
    est = resources.estimate(flops=4e9, bytes=2**20, seconds=1.5, rate=2e9, efficiency=0.5)
    assert est.seconds == pytest.approx(4e9 / (0.5 * 2e9) + 1.5, rel=1e-15)
    assert est.bytes == 2**20 and est.flops == 4e9 and est.rate == 2e9


def test_estimate_without_flops_does_not_calibrate(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*a: object) -> float:
        raise AssertionError("calibrated")

    monkeypatch.setattr(resources, "matmul_rate", boom)
    est = resources.estimate(bytes=10, seconds=2.0)
    assert (est.seconds, est.bytes, est.rate) == (2.0, 10, 0.0)


def test_calibration_is_cached_per_process() -> None:
    a = resources.matmul_rate("float64", "cpu")
    b = resources.matmul_rate("float64", "cpu")
    assert a == b and a > 1e6  # identical: measured once
    assert resources.matmul_gflops("float64", "cpu") == pytest.approx(a / 1e9, rel=1e-15)


def test_check_budget_passes_what_fits() -> None:
    est = resources.estimate(flops=1e6, bytes=100, rate=1e9)
    assert resources.check_budget(est, what="x", way_out="y", max_bytes=1000,
                                  max_seconds=1.0) is est


def test_check_budget_refuses_memory_with_estimate_and_way_out() -> None:
    est = resources.estimate(bytes=3 * 2**30)
    with pytest.raises(ParameterError) as info:
        resources.check_budget(est, what="G for {-n} 100000", way_out="use a smaller {-n}",
                               max_bytes=2**30)
    err = info.value
    assert isinstance(err, ActspecError)
    text = err.render(lambda p: "--" + p)
    assert text == ("G for --n 100000 needs about 3.0 GiB of memory but only 1.0 GiB is "
                    "available; use a smaller --n")
    assert err.param == "n"


def test_check_budget_refuses_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", "60")
    est = resources.estimate(flops=1e12, rate=1e9, efficiency=1.0)  # 1000 s
    with pytest.raises(ParameterError, match=r"would take about 17 min at the 1 GFLOP/s "
                       r"measured on this machine, over the 60 s budget .*; try less"):
        resources.check_budget(est, what="the run", way_out="try less")
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", "2000")
    assert resources.check_budget(est, what="the run", way_out="try less") is est


def test_default_budgets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACTSPEC_MAX_SECONDS", raising=False)
    assert resources.time_budget() == 6 * 3600.0
    monkeypatch.setenv("ACTSPEC_MAX_SECONDS", "junk")
    assert resources.time_budget() == 6 * 3600.0
    monkeypatch.setattr(resources, "available_memory", lambda: 1000)
    assert resources.memory_budget() == 900


def test_huge_estimates_stay_finite_and_readable() -> None:
    est = resources.estimate(bytes=float("inf"), flops=1e30, rate=1e9)
    assert est.bytes == 2**62
    assert resources.format_seconds(est.seconds).endswith("years")
    assert resources.format_seconds(float("inf")) == "forever"
    assert resources.format_bytes(2**20) == "1 MiB"
    assert resources.format_bytes(15 * 2**30) == "15.0 GiB"
