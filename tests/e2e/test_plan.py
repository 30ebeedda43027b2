"""`ecr-janitor plan`: offline, on `aws ecr describe-images` output."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from e2e_helpers import EXPIRED_KEYS, KEPT_KEYS, assert_names, parse_time, plain

NOW = "2026-11-30T00:00:00Z"
NOW_DT = datetime(2026, 11, 30, tzinfo=timezone.utc)


def digest(n: int) -> str:
    return "sha256:%02x%062x" % (n * 17, n)


def at(days_before_now: float, form: str):
    ts = NOW_DT.timestamp() - days_before_now * 86400
    if form == "epoch":
        return ts
    if form == "epoch-int":
        return int(ts)
    # as the AWS CLI prints it
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat()


def image(n, days, tags=(), size=1000, form="iso"):
    detail = {"registryId": "123456789012", "repositoryName": "web/frontend", "imageDigest": digest(n),
              "imagePushedAt": at(days, form), "imageSizeInBytes": size,
              "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json"}
    if tags:
        detail["imageTags"] = list(tags)
    return detail


def describe_images(form="iso"):
    return {"imageDetails": [
        image(1, 30, size=100_000_000, form=form),   # untagged, old: expired
        image(2, 20, size=50_000_000, form=form),    # untagged, old: expired
        image(3, 2, form=form),                      # untagged, recent: kept
        image(4, 400, tags=["latest"], form=form),   # tagged: kept
        image(5, 10, tags=["release-1"], form=form),
        image(6, 9, tags=["release-2"], form=form),
        image(7, 8, tags=["release-3", "dev-x"], form=form),
        image(8, 12, tags=["dev-a"], form=form),
    ]}


def run_plan(janitor, data, *args, env=None):
    path = janitor.write_json(data)
    run = janitor.plan("--images", str(path), "--now", NOW, *args, env=env)
    return run


def check_plan_shape(plan, all_digests):
    assert set(plan) >= {"expired", "kept"}, plan
    for e in plan["expired"]:
        assert EXPIRED_KEYS <= set(e), e
        assert isinstance(e["appliedRulePriority"], int) and e["reason"]
        parse_time(e["imagePushedAt"])
    for k in plan["kept"]:
        assert KEPT_KEYS <= set(k), k
        assert k["rulePriority"] is None or isinstance(k["rulePriority"], int)
        assert k["reason"]
    expired = [e["imageDigest"] for e in plan["expired"]]
    kept = [k["imageDigest"] for k in plan["kept"]]
    assert sorted(expired + kept) == sorted(all_digests), "every image is either expired or kept, once"


@pytest.mark.parametrize("form", ["iso", "epoch", "epoch-int"])
def test_plan_default_policy(janitor, form):
    data = describe_images(form)
    run = run_plan(janitor, data)
    assert run.code == 0, run.describe()
    plan = run.report
    check_plan_shape(plan, [d["imageDigest"] for d in data["imageDetails"]])
    assert {e["imageDigest"] for e in plan["expired"]} == {digest(1), digest(2)}
    kept = {k["imageDigest"]: k for k in plan["kept"]}
    assert kept[digest(4)]["rulePriority"] is None  # tagged: no default rule selects it
    assert kept[digest(3)]["rulePriority"] is not None  # selected by the untagged rule, within limits
    by_digest = {e["imageDigest"]: e for e in plan["expired"]}
    assert by_digest[digest(1)]["imageSizeInBytes"] == 100_000_000
    assert parse_time(by_digest[digest(1)]["imagePushedAt"]) == datetime.fromtimestamp(
        NOW_DT.timestamp() - 30 * 86400, tz=timezone.utc)
    assert by_digest[digest(1)]["imageTags"] == []


def test_plan_mixed_timestamp_forms(janitor):
    data = {"imageDetails": [image(1, 30, form="iso"), image(2, 30, form="epoch"), image(3, 1, form="epoch-int"),
                             image(4, 1, form="iso")]}
    run = run_plan(janitor, data)
    assert run.code == 0, run.describe()
    assert {e["imageDigest"] for e in run.report["expired"]} == {digest(1), digest(2)}


def test_plan_env_shorthand(janitor):
    run = run_plan(janitor, describe_images(), env={"UNTAGGED_MAX_COUNT": "1", "UNTAGGED_MAX_AGE_DAYS": "off"})
    assert run.code == 0, run.describe()
    assert {e["imageDigest"] for e in run.report["expired"]} == {digest(1), digest(2)}
    run = run_plan(janitor, describe_images(), env={"UNTAGGED_MAX_AGE_DAYS": "25"})
    assert {e["imageDigest"] for e in run.report["expired"]} == {digest(1)}


def test_plan_with_policy_file(janitor):
    policy = {"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"],
                                          "countType": "imageCountMoreThan", "countNumber": 2},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPatternList": ["dev*"],
                                          "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
         "action": {"type": "expire"}},
    ]}
    data = describe_images()
    run = run_plan(janitor, data, "--policy", str(janitor.write_json(policy)))
    assert run.code == 0, run.describe()
    check_plan_shape(run.report, [d["imageDigest"] for d in data["imageDetails"]])
    expired = {e["imageDigest"]: e["appliedRulePriority"] for e in run.report["expired"]}
    # release-1 is beyond the newest 2 releases; dev-a is 12 days old; release-3/dev-x is kept
    # by rule 1 so rule 2 cannot expire it; untagged images have no rule here.
    assert expired == {digest(5): 1, digest(8): 2}
    kept = {k["imageDigest"]: k["rulePriority"] for k in run.report["kept"]}
    assert kept[digest(7)] == 1 and kept[digest(6)] == 1
    assert kept[digest(1)] is None and kept[digest(4)] is None


def test_plan_policy_file_invalid(janitor):
    bad = {"rules": [{"rulePriority": 1, "selection": {"tagStatus": "tagged", "countType": "imageCountMoreThan",
                                                        "countNumber": 2}, "action": {"type": "expire"}}]}
    run = run_plan(janitor, describe_images(), "--policy", str(janitor.write_json(bad)))
    assert run.code == 2, run.describe()
    assert plain(run.stderr).strip()


def test_plan_images_file_invalid(janitor):
    for data in ("not json", {"images": []}, {"imageDetails": [{"imageDigest": digest(1)}]}):
        run = run_plan(janitor, data)
        assert run.code == 2, run.describe()


def test_plan_table(janitor):
    data = describe_images()
    run = run_plan(janitor, data, "--format", "table")
    assert run.code == 0, run.describe()
    text = plain(run.stdout)
    assert text.strip() and not text.lstrip().startswith("{"), text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) >= len(data["imageDetails"]) + 1, text  # a header and a line per image
    for d in data["imageDetails"]:
        short = d["imageDigest"].split(":")[1][:12]
        assert sum(short in line for line in lines) == 1, f"{short} not on exactly one line:\n{text}"
    assert "latest" in text and "release-3" in text
    line_of = {n: next(line for line in lines if digest(n).split(":")[1][:12] in line) for n in range(1, 9)}
    assert "expire" in line_of[1].lower() and "expire" in line_of[2].lower()
    assert "expire" not in line_of[4].lower()


def test_plan_makes_no_aws_calls(janitor, emu):
    run = run_plan(janitor, describe_images())
    assert run.code == 0
    assert emu.request_counts() == {}


def test_plan_with_cli_output_verbatim(janitor):
    """The shape `aws ecr describe-images --output json` prints (extra fields included)."""
    text = json.dumps({"imageDetails": [{
        "registryId": "123456789012", "repositoryName": "api/orders", "imageDigest": digest(9),
        "imageTags": ["sha-4f2a9c1"], "imageSizeInBytes": 73400320,
        "imagePushedAt": "2026-09-01T12:34:56.789000+02:00",
        "imageManifestMediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactMediaType": "application/vnd.oci.image.config.v1+json",
        "lastRecordedPullTime": "2026-11-01T00:00:00+00:00",
    }, {
        "registryId": "123456789012", "repositoryName": "api/orders", "imageDigest": digest(10),
        "imageSizeInBytes": 73400320, "imagePushedAt": "2026-09-01T12:34:56.789000+02:00",
        "imageScanStatus": {"status": "COMPLETE", "description": "ok"},
    }]}, indent=4)
    run = run_plan(janitor, text)
    assert run.code == 0, run.describe()
    assert [e["imageDigest"] for e in run.report["expired"]] == [digest(10)]
    assert [k["imageDigest"] for k in run.report["kept"]] == [digest(9)]


def test_plan_prints_the_policy_result_and_notes_the_tagged_brake(janitor):
    """`plan` shows what ECR would compute; a sweep would hold this repository back because
    the plan deletes 2 of 5 tagged images, more than MAX_TAGGED_DELETE_PERCENT=30."""
    policy = {"rules": [
        {"rulePriority": 1, "selection": {"tagStatus": "tagged", "tagPrefixList": ["release"],
                                          "countType": "imageCountMoreThan", "countNumber": 2},
         "action": {"type": "expire"}},
        {"rulePriority": 2, "selection": {"tagStatus": "tagged", "tagPatternList": ["dev*"],
                                          "countType": "sinceImagePushed", "countUnit": "days", "countNumber": 7},
         "action": {"type": "expire"}},
    ]}
    data = describe_images()
    policy_file = str(janitor.write_json(policy))
    run = run_plan(janitor, data, "--policy", policy_file, env={"MAX_TAGGED_DELETE_PERCENT": "30"})
    assert run.code == 0, run.describe()
    assert {e["imageDigest"] for e in run.report["expired"]} == {digest(5), digest(8)}
    assert run.report["notes"] == [
        "a sweep would hold this repository back: the plan would delete 2 of 5 tagged images (40%), "
        "more than MAX_TAGGED_DELETE_PERCENT=30; rule 1 expires most of them; nothing deleted in "
        "this repository"]
    table = run_plan(janitor, data, "--policy", policy_file, "--format", "table",
                     env={"MAX_TAGGED_DELETE_PERCENT": "30"})
    assert table.stdout.rstrip().splitlines()[-1].startswith("note: a sweep would hold this repository back")
    calm = run_plan(janitor, data, "--policy", policy_file)  # the default 50%
    assert "notes" not in calm.report
