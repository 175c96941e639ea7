"""``sas bench harvest`` at a tiny size, end to end on the real node and the simulator in its own process: the
floor after each cold sweep (the same documents bulk-indexed by Elasticsearch alone) and the steady-state sweep
(nothing changed at the vendors: no write, CPU per unchanged slot), with the figures in the JSON."""

from __future__ import annotations

import json

import pytest

from bench.harvest import BenchConfig, run_bench


@pytest.mark.timeout(150)
def test_floor_and_steady_state_figures_in_the_result(settings, es, tmp_path):
    output = tmp_path / "harvest.json"
    config = BenchConfig(places=300, practitioners=40, sos_places=0, vendors=2, interval_s=2.0, rounds=0,
                         takes_per_round=0, parallel_vendors=2, worker_processes=1, durability_rounds=1,
                         output=output)
    result = run_bench(settings=settings, config=config, log=lambda *_: None)
    assert json.loads(output.read_text(encoding="utf-8"))["harvest_over_floor"] == result["harvest_over_floor"]

    # Every output key quoted before is still there.
    for key in ("slots", "seconds", "slots_per_s", "slots_in_index", "full_sweep_cpu_s", "full_sweep_cpu_us_per_slot",
                "load_average_1m", "taken_to_gone_p95_s", "durability_comparison"):
        assert key in result
    assert result["slots"] > 1000

    # The floor: the very documents of the sweep, written again by Elasticsearch alone.
    floor = result["floor"]
    assert floor["slots"] == result["slots_in_index"] == result["slots"]
    assert result["floor_slots_per_s"] == floor["slots_per_s"] > 0
    assert result["harvest_over_floor"] == pytest.approx(result["slots_per_s"] / floor["slots_per_s"], abs=1e-3)
    assert floor["cpu_us_per_slot"]["elasticsearch"] > 0 and floor["cpu_us_per_slot"]["harvester"] > 0
    assert result["cpu_us_per_slot"]["sweep"]["harvester"] > 0
    assert len(result["load_average"]) == 2 and len(result["load_average"][0]) == 3
    # The floor's index is gone: only the platform's indices remain under the bench prefix.
    assert not es.indices.exists(index=f"{settings.index_prefix}-bench-floor-slots")

    # The steady state: every slot of the cold sweep read again unchanged, no slot written.
    steady = result["steady_state"]
    assert steady["failed_vendors"] == []
    # Each vendor's run at the instant of its cold run: the same window, the clock moved no edge.
    assert steady["vendor_runs_at_cold_instant"] == steady["vendor_runs"] == 2
    assert steady["unchanged"] == steady["slots"] == result["slots"]
    assert steady["upserted"] == steady["deleted"] == 0
    assert steady["data_writes"] == 0 and "slots" not in steady["writes"]
    # The runs' own records are counted (one when each run starts, one when it ends): writes are seen.
    assert steady["run_record_writes"] == 2 * steady["vendor_runs"] == 4
    assert steady["harvester_cpu_us_per_slot"] > 0 and steady["elasticsearch_cpu_us_per_slot"] > 0
    assert steady["slots_taken_at_vendors"] == {"before": 0, "after": 0}
    # Then the polls the tiers repeat: one learns the answers, the measured ones write nothing.
    polls = steady["incremental_polls"]
    assert len(polls["polls"]) == len(polls["harvester_cpu_us_per_slot_each"]) == 3
    for poll in [polls["learning_poll"], *polls["polls"]]:
        assert poll["mode"] == "incremental" and poll["failed_vendors"] == []
        assert poll["vendor_runs_at_cold_instant"] == poll["vendor_runs"] == 2
        assert 0 < poll["slots"] == poll["unchanged"] < steady["slots"]   # 48 h of the 7 days
        assert poll["upserted"] == poll["deleted"] == poll["data_writes"] == 0
    assert polls["data_writes"] == 0

    # Durability rounds: each sweep followed by its floor.
    durability = result["durability_comparison"]
    for mode in ("async", "request"):
        assert len(durability["floor_slots_per_s"][mode]) == 1 and durability["floor_slots_per_s"][mode][0] > 0
        assert durability["harvest_over_floor"][mode][0] == pytest.approx(
            durability["slots_per_s"][mode][0] / durability["floor_slots_per_s"][mode][0], abs=2e-3)
    # Every pair of the run in the order measured (cold sweep, then async / request), and their median.
    pairs = result["harvest_over_floor_pairs"]
    assert pairs == [round(result["harvest_over_floor"], 3), round(durability["harvest_over_floor"]["async"][0], 3),
                     round(durability["harvest_over_floor"]["request"][0], 3)]
    assert result["median_harvest_over_floor"] == sorted(pairs)[1]
