"""The scaling arithmetic and cost models, on synthetic inputs."""

from __future__ import annotations

import pytest

from pimpi.bench import model


def test_speedup_and_efficiency_are_ratios():
    s = model.speedup(12.0, 4.0)
    assert s == pytest.approx(3.0)
    assert model.efficiency(s, 4) == pytest.approx(0.75)
    with pytest.raises(ValueError, match="positive"):
        model.speedup(1.0, 0.0)


@pytest.mark.parametrize("fraction", [0.0, 0.05, 0.3, 1.0])
def test_amdahl_fit_recovers_the_synthetic_serial_fraction(fraction):
    ranks = [1, 2, 4, 8, 16]
    speedups = [model.amdahl_speedup(fraction, p) for p in ranks]
    assert model.fit_amdahl(ranks, speedups) == pytest.approx(fraction, abs=1e-12)


def test_amdahl_fit_needs_more_than_one_rank():
    assert model.fit_amdahl([1], [1.0]) is None
    with pytest.raises(ValueError, match="speedups"):
        model.fit_amdahl([1, 2], [1.0])


def test_makespan_of_each_schedule():
    costs = [1, 1, 4, 4]
    assert model.makespan(costs, 2, "block") == pytest.approx(8)  # [1, 1] and [4, 4]
    assert model.makespan(costs, 2, "dynamic") == pytest.approx(5)  # longest first: 4+1 each
    assert model.makespan(costs, 2, "static") == pytest.approx(5)  # every frame split in two
    assert model.makespan([3, 3, 2, 2, 2], 2, "dynamic") == pytest.approx(7)  # LPT, not optimal 6
    assert model.makespan(costs, 1) == pytest.approx(sum(costs))
    with pytest.raises(ValueError, match="schedule"):
        model.makespan(costs, 2, "random")


def test_render_time_is_compute_bound_or_network_bound():
    frames = [1.0] * 8
    one = model.render_time(frames, 1000, nodes=1, cores_per_node=4, alpha=1e-4, beta=1e-8)
    assert one["total_s"] == pytest.approx(2.0) and one["network_s"] == 0
    slow_net = model.render_time(frames, 10**9, nodes=2, cores_per_node=4, alpha=0.0, beta=1e-8)
    assert slow_net["bound"] == "network"
    assert slow_net["network_s"] == pytest.approx(4 * 10.0)  # half the frames cross, 10 s each
    assert slow_net["total_s"] == pytest.approx(40.0 + 10.0)


def test_hockney_time():
    assert model.hockney_time(1e-4, 1e-9, 1e6, messages=3) == pytest.approx(3e-4 + 1e-3)
    with pytest.raises(ValueError):
        model.hockney_time(-1.0, 0.0, 1)
