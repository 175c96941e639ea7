"""The arithmetic of the harvest bench's floor and steady state: the ratio to the floor, writes between two
readings of Elasticsearch's counters, what counts as a data write, and the command's switches."""

from __future__ import annotations

from typer.testing import CliRunner

from bench.harvest_floor import counters_delta, cpu_delta, over_floor, steady_state_figures
from sas_cli.bench import app


def test_harvest_over_floor_is_the_sweep_rate_over_the_floor_rate():
    assert over_floor(12_000.0, {"slots_per_s": 20_000.0}) == 0.6
    assert over_floor(12_000.0, None) is None
    assert over_floor(12_000.0, {"slots_per_s": 0.0}) is None


def test_counters_delta_keeps_only_indices_and_operations_that_moved():
    before = {"slots": {"index": 10, "delete": 2, "noop_update": 0}, "harvest_runs": {"index": 3, "delete": 0}}
    after = {"slots": {"index": 10, "delete": 5, "noop_update": 1}, "harvest_runs": {"index": 7, "delete": 0},
             "offers": {"index": 1, "delete": 0}}
    assert counters_delta(before, after) == {"slots": {"delete": 3, "noop_update": 1}, "harvest_runs": {"index": 4},
                                             "offers": {"index": 1}}
    assert counters_delta(after, after) == {}


def test_cpu_delta_leaves_out_groups_that_could_not_be_read():
    assert cpu_delta({"harvester": 1.0, "elasticsearch": None}, {"harvester": 3.5, "elasticsearch": 9.0}) == {
        "harvester": 2.5}


def _runs(unchanged: int) -> list[dict]:
    return [{"vendor": "a", "status": "success", "read": unchanged, "unchanged": unchanged, "upserted": 0,
             "deleted": 0, "stale_marked": 0}]


def test_steady_state_counts_run_records_apart_from_data_writes():
    figures = steady_state_figures(runs=_runs(1000), seconds=1.0, cpu_s={"harvester": 0.01, "elasticsearch": 0.02},
                                   writes={"harvest_runs": {"index": 2}}, taken=(0, 0), cold_slots=1000,
                                   load=[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    assert figures["data_writes"] == 0 and figures["run_record_writes"] == 2
    assert figures["harvester_cpu_us_per_slot"] == 10.0 and figures["elasticsearch_cpu_us_per_slot"] == 20.0
    written = steady_state_figures(runs=_runs(1000), seconds=1.0, cpu_s={}, taken=(0, 0), cold_slots=1000, load=[],
                                   writes={"harvest_runs": {"index": 2}, "slots": {"index": 3, "noop_update": 4},
                                           "offers": {"index_failed": 1}})
    assert written["data_writes"] == 8 and written["harvester_cpu_us_per_slot"] is None


def test_the_harvest_command_switches_floor_and_steady_state():
    result = CliRunner().invoke(app, ["harvest", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0
    for switch in ("--floor", "--no-floor", "--steady-state", "--no-steady-state"):
        assert switch in result.output


def test_every_pair_of_the_run_and_their_median():
    from bench.harvest import _all_pairs

    durability = {"harvest_over_floor": {"async": [0.61, 0.55], "request": [0.63, 0.66]}}
    figures = _all_pairs(0.48, durability, log=lambda *_: None)
    assert figures == {"harvest_over_floor_pairs": [0.48, 0.61, 0.63, 0.55, 0.66], "median_harvest_over_floor": 0.61}
    assert _all_pairs(None, None, log=lambda *_: None) == {}
    assert _all_pairs(0.5, None, log=lambda *_: None)["median_harvest_over_floor"] == 0.5
