"""The run event: with EVENT_BUS_NAME set, every run puts one `ecr-janitor` event on that
bus. A rule on a custom bus in the emulator routes it to an SQS queue, where the test reads
it back and compares it with the run's report and the shipped sample's keys."""

from __future__ import annotations

import json
from pathlib import Path

from ecr_emulator import days_ago
from e2e_helpers import repo_entry, sweep_checked

EVENTS = Path(__file__).resolve().parents[2] / "events"
BUS = "platform-events"


def route_to_queue(emu, bus=BUS):
    events = emu.client(counted=False, service="events")
    sqs = emu.client(counted=False, service="sqs")
    events.create_event_bus(Name=bus)
    url = sqs.create_queue(QueueName="janitor-runs")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="janitor-runs", EventBusName=bus, EventPattern=json.dumps({"source": ["ecr-janitor"]}))
    events.put_targets(Rule="janitor-runs", EventBusName=bus, Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, url


def received(sqs, url):
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def shape(value):
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return None


def test_a_run_puts_one_event_whose_detail_matches_the_report(janitor, emu):
    sqs, url = route_to_queue(emu)
    emu.push_image("api/orders", pushed_at=days_ago(30))
    emu.push_image("api/orders", ["v1"], pushed_at=days_ago(30))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "EVENT_BUS_NAME": BUS})
    assert report["eventPublished"] is True
    [event] = received(sqs, url)
    assert (event["source"], event["detail-type"]) == ("ecr-janitor", "ECR Janitor Run Completed")
    detail = event["detail"]
    for key in ("dryRun", "complete", "startedAt", "durationMs", "totals"):
        assert detail[key] == report[key], key
    [repo] = detail["repositories"]
    entry = repo_entry(report, "api/orders")
    assert repo["name"] == "api/orders" and repo["region"] == "us-east-1"
    assert (repo["expired"], repo["deleted"]) == (len(entry["expired"]), entry["deleted"]) == (1, 1)
    assert "imageDigest" not in json.dumps(detail), "no per-image lists"
    sample = json.loads((EVENTS / "run-completed.json").read_text())
    assert set(event) >= set(sample), set(sample) - set(event)
    assert shape(detail) == shape(sample["detail"]), "events/run-completed.json has the emitted keys"


def test_a_failed_run_is_a_run_failed_event(janitor, emu):
    sqs, url = route_to_queue(emu)
    emu.push_image("api/orders", pushed_at=days_ago(30))
    emu.fail_service("ecs")  # the in-use lookup fails: a safety stop
    run = janitor.sweep(env={"DRY_RUN": "false", "EVENT_BUS_NAME": BUS})
    assert run.code == 1, run.describe()
    [event] = received(sqs, url)
    assert event["detail-type"] == "ECR Janitor Run Failed"
    assert event["detail"]["safetyStop"] is True


def test_nothing_is_published_without_a_bus(janitor, emu):
    route_to_queue(emu)
    emu.push_image("api/orders", pushed_at=days_ago(30))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false"})
    assert "eventPublished" not in report
    assert emu.request_counts("events") == {}


def test_a_refused_publish_never_fails_a_good_cleanup(janitor, emu):
    emu.push_image("api/orders", pushed_at=days_ago(30))
    report = sweep_checked(janitor, emu, env={"DRY_RUN": "false", "EVENT_BUS_NAME": "no-such-bus"})
    assert report["eventPublished"] is False
    assert report["totals"]["deleted"] == 1
