"""REGIONS: one run sweeps every listed region with its own clients; each repository in the
report carries its region; nothing crosses between regions; an image in one region used by
a service in another is protected."""

from __future__ import annotations

from ecr_emulator import days_ago
from e2e_helpers import check_report_shape

EAST, WEST = "us-east-1", "eu-west-1"
LIVE = {"DRY_RUN": "false", "REGIONS": f"{EAST},{WEST}"}


def left(emu, repo, region):
    return set(emu.snapshot(region=region).get(repo, {}))


def test_every_listed_region_is_swept_and_nothing_crosses(janitor, emu):
    east_old = emu.push_image("app", pushed_at=days_ago(30))
    east_new = emu.push_image("app", pushed_at=days_ago(1))
    west_old = emu.push_image("app", pushed_at=days_ago(30), region=WEST)
    west_new = emu.push_image("app", pushed_at=days_ago(1), region=WEST)
    west_only = emu.push_image("west/only", pushed_at=days_ago(40), region=WEST)
    run = janitor.sweep(env=LIVE)
    assert run.code == 0, run.describe()
    report = run.report
    check_report_shape(report)
    entries = {(r["name"], r["region"]): r for r in report["repositories"]}
    assert set(entries) == {("app", EAST), ("app", WEST), ("west/only", WEST)}
    assert [e["imageDigest"] for e in entries[("app", EAST)]["expired"]] == [east_old]
    assert [e["imageDigest"] for e in entries[("app", WEST)]["expired"]] == [west_old]
    assert [e["imageDigest"] for e in entries[("west/only", WEST)]["expired"]] == [west_only]
    assert left(emu, "app", EAST) == {east_new} and left(emu, "app", WEST) == {west_new}
    assert left(emu, "west/only", WEST) == set()
    assert report["totals"]["deleted"] == 3 and report["totals"]["repositories"] == 3


def test_one_region_by_default(janitor, emu):
    east_old = emu.push_image("app", pushed_at=days_ago(30))
    west_old = emu.push_image("app", pushed_at=days_ago(30), region=WEST)
    run = janitor.sweep(env={"DRY_RUN": "false"})
    assert run.code == 0, run.describe()
    assert [(r["name"], r["region"]) for r in run.report["repositories"]] == [("app", EAST)]
    assert left(emu, "app", EAST) == set() and left(emu, "app", WEST) == {west_old}
    assert east_old not in left(emu, "app", EAST)


def test_an_image_used_from_another_region_is_kept(janitor, emu):
    used = emu.push_image("shared", ["v1"], pushed_at=days_ago(30), region=WEST)
    emu.push_image("shared", ["v1"], pushed_at=days_ago(1), region=WEST)  # the tag moves on
    emu.ecs_run_task("prod", emu.image_uri("shared", digest=used, region=WEST), region=EAST)
    run = janitor.sweep(env=LIVE)
    assert run.code == 0, run.describe()
    entry = next(r for r in run.report["repositories"] if r["region"] == WEST)
    assert entry["protectedInUse"] == 1 and entry["expired"] == []
    assert used in left(emu, "shared", WEST)


def test_an_unknown_region_is_a_configuration_error(janitor, emu):
    run = janitor.sweep(env={"REGIONS": "us-east-1,moon-1"})
    assert run.code == 2, run.describe()
    assert "REGIONS" in run.stderr and '"moon-1" is not an AWS region' in run.stderr
    assert emu.request_counts() == {}
