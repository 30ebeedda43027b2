"""Shards: `{"shard": {"index": i, "count": n}}` narrows a run to the repositories whose
stable hash of the name falls in shard i; n shard runs sweep every repository exactly once
and delete exactly what one run would."""

from __future__ import annotations

import pytest

from ecr_emulator import days_ago
from e2e_helpers import expired_digests, remaining, sweep_checked
from seeding import seed_repositories

LIVE = {"DRY_RUN": "false"}
NAMES = [f"team-{t}/svc-{i}" for t in "abc" for i in range(8)]


@pytest.mark.parametrize("count", [1, 3, 7])
def test_n_shards_sweep_every_repository_once_and_delete_what_one_run_would(janitor, emu, count):
    seeded = seed_repositories(emu, NAMES)
    one_run = sweep_checked(janitor, emu)  # a dry run of the whole registry
    visited: list[str] = []
    deleted: set[str] = set()
    for index in range(count):
        report = sweep_checked(janitor, emu, env=LIVE, event={"shard": {"index": index, "count": count}})
        assert report["shard"] == {"index": index, "count": count}
        visited += [r["name"] for r in report["repositories"]]
        deleted |= expired_digests(report)
    assert sorted(visited) == sorted(NAMES), "every repository exactly once"
    assert deleted == expired_digests(one_run) == set().union(*(s.expired for s in seeded.values()))
    for name, s in seeded.items():
        assert remaining(emu, name) == s.kept


def test_a_shard_out_of_range_is_refused_before_any_call(janitor, emu):
    old = emu.push_image("svc", pushed_at=days_ago(40))
    run = janitor.sweep(env=LIVE, event={"shard": {"index": 2, "count": 2}})
    assert run.code == 2, run.describe()
    assert "0 ≤ index < count ≤ 1000" in run.stderr
    assert emu.request_counts() == {}
    assert remaining(emu, "svc") == {old}
