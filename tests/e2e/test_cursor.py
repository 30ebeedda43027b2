"""The cursor through the Lambda path: the real `bootstrap` binary, invoked with a real
deadline and its real function ARN (runtime_api.py), against the emulator's ECR and Lambda.
A run that the deadline cuts short saves where the next one starts in a tag on the function
itself; successive runs cover the registry in order, each starting where the last stopped."""

from __future__ import annotations

import pytest

from conftest import base_path
from e2e_helpers import remaining
from lambda_runtime import emulator_env
from runtime_api import RuntimeApi
from seeding import seed_repositories

NAMES = [f"svc-{i:02d}" for i in range(10)]
KEY = "ecr-janitor:cursor"
# Each repository costs about three ECR calls (list, re-check, delete) of LATENCY seconds
# each, one repository at a time: the ten take about 9 s, more than a run's 7.5 s (a
# 10-second invocation stops starting repositories a quarter before its deadline).
LATENCY = 0.3
TIMEOUT_SECONDS = 10


def run_order(start: str) -> list[str]:
    """The repositories in the order a run starting at cursor `start` visits them."""
    name = start.split(":", 1)[1]
    first = next(i for i, n in enumerate(NAMES) if n >= name)
    return NAMES[first:] + NAMES[:first]


def rotations() -> list[list[str]]:
    """Every order a run may visit the repositories in."""
    return [NAMES[i:] + NAMES[:i] for i in range(len(NAMES))]


@pytest.fixture
def function(emu, bootstrap_bin, tmp_path):
    """The janitor as a Lambda function the emulator knows (so that it can be tagged),
    served by the real bootstrap."""
    emu.push_image("janitor/self", ["v1"])
    arn = emu.lambda_image_function("ecr-janitor", emu.image_uri("janitor/self", "v1"))
    env = emulator_env(emu.endpoint, base_path()) | {
        "DRY_RUN": "false", "MAX_CONCURRENCY": "1", "INCLUDE_REPOSITORIES": "svc-*"}
    with RuntimeApi(bootstrap_bin, env, arn, tmp_path) as api:
        yield api


def test_runs_cut_short_by_the_deadline_resume_where_the_last_stopped_and_cover_everything(emu, function):
    seeded = seed_repositories(emu, NAMES)
    emu.latency = LATENCY
    reports = []
    visited: set[str] = set()
    while visited != set(NAMES) and len(reports) < len(NAMES):
        report = function.invoke({}, TIMEOUT_SECONDS)
        reports.append(report)
        visited |= {r["name"] for r in report["repositories"]}
    emu.latency = 0

    assert visited == set(NAMES), [r["cursor"] for r in reports]
    first = reports[0]
    assert first["complete"] is False, "the first run could not finish: the test needs a short deadline"
    assert first["cursor"]["startedAt"] is None, "no cursor yet: the rotation"
    for before, report in zip(reports, reports[1:]):
        assert report["cursor"]["startedAt"] == before["cursor"]["next"], "starts where the last stopped"
    covered: list[str] = []
    for report in reports:
        cursor = report["cursor"]
        assert cursor["key"] == KEY and "error" not in cursor, cursor
        swept = {r["name"] for r in report["repositories"]}
        assert swept, "a run visited nothing"
        if cursor["startedAt"] is None:
            # The rotation's start, whichever it was: the visited ones come first in its order.
            orders = [o for o in rotations() if set(o[:len(swept)]) == swept]
            assert orders, f"the first run's repositories are not the start of a run order: {swept}"
            order = orders[0]
        else:
            order = run_order(cursor["startedAt"])
        assert set(order[:len(swept)]) == swept, f"visited in order from {order[0]}: {sorted(swept)}"
        assert sorted(report["notVisited"]) == sorted(order[len(swept):]), "the rest, exactly"
        if not report["complete"]:
            assert cursor["next"] == f"us-east-1:{order[len(swept)]}", "the first not visited"
        if report is not reports[-1]:
            covered += sorted(swept)
    # Until the last run, no repository is visited twice: ⌈n/k⌉ runs for k per run.
    assert len(covered) == len(set(covered)), covered
    assert len(reports) >= 2
    tags = emu._lambda(None).list_tags(Resource=function.function_arn)["Tags"]
    saved = [r["cursor"]["next"] for r in reports if r["cursor"]["next"]]
    assert tags[KEY] == saved[-1], "the tag holds the last cursor saved"
    for name, s in seeded.items():
        assert remaining(emu, name) == s.kept, name
