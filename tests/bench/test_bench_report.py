"""From runs to the issue's cells: cold against cold and warm against warm, the targets that apply to
each cell, and by how much one is missed."""

from pathlib import Path
from typing import Any

from tests.bench.compare import _views
from tests.bench.datagen import Built, Spec
from tests.bench.report import cell_targets, cells, summarise, targets

MiB = 2**20


def archive(megabytes: int, members: int) -> Built:
    spec = Spec(megabytes, members)
    sizes = [megabytes * MiB // members] * members
    listed = [{"name": f"m{index}", "size": size} for index, size in enumerate(sizes)]
    return Built(spec, Path("unused.zip"), megabytes * MiB // 7, "0" * 64, listed)


def run(pipeline: str, round_index: int, wall: float, cpu: float, **more: Any) -> dict[str, Any]:
    return {
        "profile": "loopback",
        "archive": "a",
        "pipeline": pipeline,
        "round": round_index,
        "ok": True,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mib": 80.0,
        "disk_write_bytes": 0,
        "oci_calls": {"put_object": 2},
        "zip_bytes": 100,
        "fusion": {"bytes_read_to_send": 100, "once": True},
        **more,
    }


def test_the_blog_is_seen_cold_as_its_whole_process_and_warm_as_its_work_alone():
    # Given one run of the blog's process: 3 s and 1.5 CPU-s in all, 2 s and 1 CPU-s of work
    figures = {"process_wall_s": 3.0, "process_cpu_s": 1.5, "wall_s": 2.0, "cpu_s": 1.0, "ok": True}

    # When it is recorded
    cold, warm = _views("blog", figures)

    # Then cold counts the start-up and imports, warm does not
    assert (cold["pipeline"], cold["wall_s"], cold["cpu_s"]) == ("blog_cold", 3.0, 1.5)
    assert (warm["pipeline"], warm["wall_s"], warm["cpu_s"]) == ("blog_warm", 2.0, 1.0)
    assert _views("ours_cold", figures) == [{"pipeline": "ours_cold", **figures}]


def test_ours_cold_is_compared_with_the_blog_cold_and_ours_warm_with_the_blog_warm():
    # Given two rounds of each, cold slower than warm for both
    records = [
        run("ours_cold", 0, wall=6.0, cpu=3.0),
        run("ours_cold", 1, wall=6.0, cpu=3.0),
        run("blog_cold", 0, wall=5.0, cpu=2.5),
        run("blog_cold", 1, wall=5.0, cpu=2.5),
        run("ours_warm", 0, wall=2.0, cpu=1.0),
        run("ours_warm", 1, wall=2.0, cpu=1.0),
        run("blog_warm", 0, wall=4.0, cpu=2.0),
        run("blog_warm", 1, wall=4.0, cpu=2.0),
    ]

    # When they are summarised
    (entry,) = summarise(records, {"a": archive(100, 1)})

    # Then each mode has its own ratios
    ratios = entry["ratios"]
    assert (ratios["cold_wall_ours_over_blog"], ratios["cold_cpu_ours_over_blog"]) == (1.2, 1.2)
    assert (ratios["warm_wall_ours_over_blog"], ratios["warm_cpu_ours_over_blog"]) == (0.5, 0.5)
    assert entry["pipelines"]["ours_cold"]["fusion_read_per_byte"] == 1.0


def test_each_cell_carries_the_issues_targets_for_its_link_size_and_shape():
    def bounds(profile: str, megabytes: int, members: int) -> dict[str, float]:
        entry = {"profile": profile, "megabytes": megabytes, "members": members}
        return {key: round(bound, 2) for _name, key, bound in cell_targets(entry)}

    # CPU: 0.8x for one member from 500 MiB, 1.0x for 100 MiB and for many members
    assert bounds("loopback", 500, 1)["cold_cpu_ours_over_blog"] == 0.8
    assert bounds("loopback", 2048, 1)["warm_cpu_ours_over_blog"] == 0.8
    assert bounds("loopback", 100, 1)["warm_cpu_ours_over_blog"] == 1.0
    assert bounds("loopback", 500, 200)["cold_cpu_ours_over_blog"] == 1.0
    # Loopback wall: never slower warm; 1.2x cold only for 100 MiB
    assert bounds("loopback", 100, 200)["warm_wall_ours_over_blog"] == 1.0
    assert bounds("loopback", 100, 200)["cold_wall_ours_over_blog"] == 1.2
    assert "cold_wall_ours_over_blog" not in bounds("loopback", 500, 1)
    # 40 MB/s: 1.5x faster from 500 MiB, cold and warm; nothing on the wall below
    assert bounds("wan40", 500, 200)["cold_wall_ours_over_blog"] == 0.67
    assert bounds("wan40", 500, 200)["warm_wall_ours_over_blog"] == 0.67
    assert "warm_wall_ours_over_blog" not in bounds("wan40", 100, 1)
    # 5 MB/s: within 1.15x of the download alone
    assert bounds("wan5", 500, 1)["cold_wall_ours_over_download"] == 1.15
    assert bounds("wan5", 100, 1)["warm_wall_ours_over_download"] == 1.15


def test_a_missed_target_says_by_how_much_and_the_cell_row_names_it():
    # Given a 500 MiB one-member cell whose CPU ratio is 1.2 cold and 0.6 warm
    ours = {
        "cpu_s_per_gb": 2.0,
        "peak_rss_mib": 90.0,
        "disk_write_bytes": 0,
        "fusion_read_per_byte": 1.0,
        "calls_per_member": 3.0,
    }
    entry = {
        "profile": "loopback",
        "megabytes": 500,
        "members": 1,
        "ratios": {"cold_cpu_ours_over_blog": 1.2, "warm_cpu_ours_over_blog": 0.6},
        "pipelines": {"ours_cold": ours, "ours_warm": ours, "blog_warm": {"calls_per_member": 1.0}},
    }
    document: dict[str, Any] = {"transfer": [entry]}

    # When the targets are checked
    document["targets"] = targets(document)

    # Then the cold CPU target is missed by 50 %, the warm one met
    by_name = {t["target"]: t for t in document["targets"]}
    cold = by_name["CPU/GB ours/blog <= 0.8, cold"]
    assert (cold["met"], cold["missed_by"]) == (False, "50% over")
    assert by_name["CPU/GB ours/blog <= 0.8, warm"]["met"] is True
    assert by_name["peak RSS <= 128 MiB, cold"]["met"] is True
    # And the cell's row shows both ratios and names the missed target
    row = cells(document).splitlines()[2]
    assert row.startswith("| loopback | 500 MiB x1 | 1.2 / 0.6 |")
    assert row.endswith("| CPU/GB ours/blog <= 0.8, cold (50% over) |")


def test_the_any_size_part_holds_its_instance_to_the_memory_bound_and_to_no_disk():
    # Given the any-size part's records: one instance peaked at 144 MiB, the other at 119 MiB and wrote 4 KiB
    anysize = {"megabytes": 500, "budget_s": 3.0, "landed_complete": True, "fusion": {"once": True}}
    document: dict[str, Any] = {
        "anysize": [
            {**anysize, "members": 1, "peak_rss_mib": 144.0, "disk_write_bytes": 0},
            {**anysize, "members": 200, "peak_rss_mib": 119.0, "disk_write_bytes": 4096},
        ]
    }

    # When the targets are checked
    found = {(t["target"], t["where"]): t for t in targets(document)}

    # Then the first misses the 128 MiB bound by 12 %, the second meets it but not the disk target
    memory, disk = "any size: peak RSS <= 128 MiB (its instance)", "any size: bytes to disk == 0"
    one, many = "500MiB x1 budget 3s", "500MiB x200 budget 3s"
    assert (found[memory, one]["met"], found[memory, one]["missed_by"]) == (False, "12% over")
    assert (found[memory, many]["met"], found[disk, one]["met"]) == (True, True)
    assert (found[disk, many]["met"], found[disk, many]["missed_by"]) == (False, "4096 against 0")
