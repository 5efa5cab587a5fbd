"""Scaling analysis, predict's arithmetic and tune's rules, on synthetic measurements."""

from __future__ import annotations

import pytest

from pimpi.bench import model, predict, schema, scaling, tune


def test_scaling_speedups_are_time_ratios_and_amdahl_is_refitted():
    fraction, t1 = 0.1, 8.0
    ranks = [1, 2, 4, 8]
    seconds = {p: [t1 / model.amdahl_speedup(fraction, p) * k for k in (1.0, 1.1, 0.95)] for p in ranks}
    result = scaling.analyse(ranks, seconds, serial=[8.2, 8.1], pool=[4.5], pool_processes=2,
                             frames=16, pixels=100, slots=8)
    base = sorted(seconds[1])[1]
    for row in result["rows"]:
        median = sorted(seconds[row["ranks"]])[1]
        assert row["seconds"]["median"] == median
        assert row["speedup"] == pytest.approx(base / median)
        assert row["efficiency"] == pytest.approx(row["speedup"] / row["ranks"])
        assert row["vs_pool"] == pytest.approx(4.5 / median)
        assert row["frames_per_s"] == pytest.approx(16 / median)
        assert row["pixels_per_s"] == pytest.approx(1600 / median)
    assert result["amdahl"]["serial_fraction"] == pytest.approx(fraction)
    assert result["speedup_base"] == "1 rank"


def test_scaling_leaves_oversubscribed_rows_out_of_the_fit():
    seconds = {1: [4.0], 2: [2.0], 4: [2.0]}
    result = scaling.analyse([1, 2, 4], seconds, serial=[4.0], pool=[2.0], pool_processes=2,
                             frames=4, pixels=1, slots=2)
    assert [r["oversubscribed"] for r in result["rows"]] == [False, False, True]
    assert result["amdahl"]["fitted_on"] == [1, 2]
    assert result["amdahl"]["serial_fraction"] == pytest.approx(0.0)


def test_scaling_without_one_rank_compares_with_serial():
    result = scaling.analyse([2], {2: [3.0]}, serial=[6.0], pool=[3.0], pool_processes=2,
                             frames=1, pixels=1, slots=2)
    assert result["speedup_base"] == "serial" and result["rows"][0]["speedup"] == pytest.approx(2.0)


def test_collective_times_price_messages_and_bytes():
    def cost(op, alg, nbytes, p):
        return (p - 1, nbytes) if alg == "flat" else (2, 2 * nbytes)

    rows = predict.collective_times(["gather", "bcast"], [100], 4, 1e-3, 1e-6, cost,
                                    {"gather": ["flat", "tree"], "bcast": ["flat", "tree"]})
    gather, bcast = rows
    # gather's benchmark size is one rank's block: cost() sees all 4 blocks
    assert gather["algorithms"]["flat"]["bytes"] == 400
    assert gather["algorithms"]["flat"]["seconds"] == pytest.approx(3e-3 + 400e-6)
    assert bcast["algorithms"]["tree"]["seconds"] == pytest.approx(2e-3 + 200e-6)
    assert bcast["best"] == "tree" and bcast["best_seconds"] == pytest.approx(2.2e-3)


def test_predict_render_speedup_on_synthetic_frames():
    frames = [0.5] * 32
    rows = predict.predict_render(frames, 1000, [1, 2, 4], 4, alpha=0.0, beta=0.0)
    assert [r["ranks"] for r in rows] == [4, 8, 16]
    for row in rows:
        assert row["speedup"] == pytest.approx(sum(frames) / row["total_s"])
        assert row["efficiency"] == pytest.approx(row["speedup"] / row["ranks"])
    assert rows[2]["speedup"] == pytest.approx(16.0)  # free network, equal frames: ideal
    assert rows[2]["vs_one_node"] == pytest.approx(4.0)
    uneven = [8.0] + [0.5] * 16
    framed = predict.predict_render(uneven, 1000, [4], 4, alpha=0.0, beta=0.0)[0]
    tiled = predict.predict_render(uneven, 1000, [4], 4, alpha=0.0, beta=0.0, tiles=8)[0]
    assert framed["total_s"] == pytest.approx(8.0)  # the slow frame bounds the job
    assert tiled["total_s"] == pytest.approx(16.0 / 16)  # 144 equal-ish tiles spread over 16 ranks


def test_a_measured_pingpong_file_is_a_profile(tmp_path):
    doc = schema.document("pingpong", {"hostname": "here"},
                          {"hockney": {"alpha_s": 2e-6, "beta_s_per_byte": 1e-9, "bandwidth_bps": 8e9}})
    path = tmp_path / "pp.json"
    schema.write_json(path, doc)
    prof = predict.load_profile(str(path))
    assert prof["alpha_s"] == 2e-6 and prof["beta_s_per_byte"] == 1e-9
    assert prof["core_speed_relative"] is None
    schema.write_json(path, schema.document("scaling", {}, {}))
    with pytest.raises(ValueError, match="pingpong or pingmatrix"):
        predict.load_profile(str(path))


def test_shipped_profiles_give_alpha_beta():
    pi4 = predict.load_profile("pi4")
    assert pi4["alpha_s"] > 0 and pi4["beta_s_per_byte"] == pytest.approx(8 / 940e6)
    with pytest.raises(ValueError, match="unshaped"):
        predict.load_profile("lan")
    with pytest.raises(ValueError, match="unknown profile"):
        predict.load_profile("pi9")


def test_tune_rules_merge_neighbours_and_cover_larger_sizes():
    winners = [(4, "a"), (64, "a"), (1024, "b"), (65536, "c"), (1 << 20, "c")]
    rules = tune.rules_for(winners, 4)
    assert rules == [
        {"max_bytes": 64, "min_size": 4, "max_size": 4, "algorithm": "a"},
        {"max_bytes": 1024, "min_size": 4, "max_size": 4, "algorithm": "b"},
        {"min_size": 4, "max_size": 4, "algorithm": "c"},
    ]
    old = [{"min_size": 4, "max_size": 4, "algorithm": "z"}, {"algorithm": "y"}]
    assert tune.merge_rules(old, rules, 4) == rules + [{"algorithm": "y"}]


def test_cpu_share_says_how_much_of_their_cores_the_ranks_got():
    job = {"seconds": 4.0, "report": {"per_rank": [{"cpu": 4.0}, {"cpu": 2.0}]}}
    assert scaling.cpu_share(job) == pytest.approx(0.75)
    assert scaling.cpu_share({"seconds": 4.0, "report": {"per_rank": [{"cpu": None}]}}) is None
    assert scaling.cpu_share({"seconds": 4.0}) is None
