"""Checks that each patch to moto makes the emulator behave like real ECR,
observed through boto3 over HTTP."""

from __future__ import annotations

import http.client
import json
import time
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

import ecr_emulator
from ecr_emulator import days_ago, manifest_digest


def test_serves_on_loopback_only(emu):
    assert emu.endpoint.startswith("http://127.0.0.1:")
    assert emu.client().describe_repositories()["repositories"] == []


def _ecr_call(connection, action, body, headers=None):
    """One ECR call on ``connection`` (http.client: it shows whether the socket is kept)."""
    connection.request("POST", "/", json.dumps(body), {
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": f"AmazonEC2ContainerRegistry_V20150921.{action}",
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20261201/us-east-1/ecr/aws4_request, "
                         "SignedHeaders=host, Signature=0",
        **(headers or {}),
    })
    response = connection.getresponse()
    return response, json.loads(response.read())


def test_a_connection_stays_open_for_the_next_call_as_ecrs_do(emu):
    emu.push_image("team/app", tags=["v1"])
    connection = http.client.HTTPConnection(emu.host, emu.port, timeout=5)
    first, repositories = _ecr_call(connection, "DescribeRepositories", {})
    kept = connection.sock
    # Sent as soon as the first answer is read: werkzeug would have read and dropped it.
    second, images = _ecr_call(connection, "DescribeImages", {"repositoryName": "team/app"})
    assert [r["repositoryName"] for r in repositories["repositories"]] == ["team/app"]
    assert [i["imageTags"] for i in images["imageDetails"]] == [["v1"]]
    assert (first.getheader("Connection"), first.will_close) == (None, False)
    assert connection.sock is kept
    assert emu.request_counts() == {"DescribeRepositories": 1, "DescribeImages": 1}
    connection.close()


def test_calls_on_a_kept_connection_wait_for_no_acknowledgement(emu):
    connection = http.client.HTTPConnection(emu.host, emu.port, timeout=5)
    start = time.monotonic()
    for _ in range(20):
        _ecr_call(connection, "DescribeRepositories", {})
    elapsed = time.monotonic() - start
    connection.close()
    # Nagle's algorithm held each answer's body for the client's delayed acknowledgement
    # of its header: about 40 ms a call. Served at once, a call takes a few ms.
    assert elapsed < 0.4, f"20 calls took {elapsed:.2f} s"


def test_a_client_that_asks_to_close_the_connection_has_it_closed(emu):
    connection = http.client.HTTPConnection(emu.host, emu.port, timeout=5)
    response, _ = _ecr_call(connection, "DescribeRepositories", {}, {"Connection": "close"})
    assert (response.getheader("Connection"), response.will_close) == ("close", True)
    assert connection.sock is None


def test_stopping_closes_the_connections_kept_open():
    own = ecr_emulator.Emulator().start()
    connection = http.client.HTTPConnection(own.host, own.port, timeout=5)
    try:
        first, _ = _ecr_call(connection, "DescribeRepositories", {})
        assert first.status == 200 and connection.sock is not None
        own.stop()
        with pytest.raises((ConnectionError, http.client.HTTPException)):
            _ecr_call(connection, "DescribeRepositories", {})
    finally:
        connection.close()
        own.stop()


def test_describe_repositories_paginates(emu):
    names = [f"team-{i:04d}/svc" for i in range(1001)]
    start = time.monotonic()
    emu.create_repositories(names)
    assert time.monotonic() - start < 30, "seeding 1,001 repositories must be fast"
    client = emu.client()

    first = client.describe_repositories()
    assert len(first["repositories"]) == 100  # default maxResults
    assert first.get("nextToken")

    seen, pages, token = [], 0, None
    while True:
        kwargs = {"maxResults": 1000}
        if token:
            kwargs["nextToken"] = token
        page = client.describe_repositories(**kwargs)
        pages += 1
        seen.extend(r["repositoryName"] for r in page["repositories"])
        token = page.get("nextToken")
        if not token:
            break
    assert pages == 2
    assert sorted(seen) == sorted(names) and len(seen) == len(set(seen))
    # Not sorted by name: callers must sort themselves.
    assert seen != sorted(seen)

    via_paginator = [r["repositoryName"] for p in client.get_paginator("describe_repositories").paginate()
                     for r in p["repositories"]]
    assert sorted(via_paginator) == sorted(names)


def test_pagination_rejects_bad_arguments(emu):
    emu.push_image("repo-r")
    client = emu.client()
    with pytest.raises(ClientError) as err:
        client.describe_images(repositoryName="repo-r", nextToken="garbage")
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as err:
        client.describe_images(repositoryName="repo-r", maxResults=1001)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as err:
        client.describe_repositories(nextToken="garbage")
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"


def test_describe_images_paginates_1100_images(emu):
    start = time.monotonic()
    expected = {emu.push_image("big", pushed_at=days_ago(40)) for _ in range(1100)}
    assert time.monotonic() - start < 30, "seeding 1,100 images must be fast"
    client = emu.client()

    page = client.describe_images(repositoryName="big")
    assert len(page["imageDetails"]) == 100 and page.get("nextToken")

    got, pages = [], 0
    for page in client.get_paginator("describe_images").paginate(
            repositoryName="big", PaginationConfig={"PageSize": 1000}):
        pages += 1
        got.extend(d["imageDigest"] for d in page["imageDetails"])
    assert pages == 2
    assert len(got) == 1100 and set(got) == expected

    ids = [i for p in client.get_paginator("list_images").paginate(repositoryName="big") for i in p["imageIds"]]
    assert {i["imageDigest"] for i in ids} == expected


def test_pagination_survives_deletes_between_pages(emu):
    digests = {emu.push_image("repo-r") for _ in range(30)}
    client = emu.client()
    first = client.describe_images(repositoryName="repo-r", maxResults=10)
    seen = [d["imageDigest"] for d in first["imageDetails"]]
    # Delete what was listed so far, then continue with the token.
    client.batch_delete_image(repositoryName="repo-r", imageIds=[{"imageDigest": d} for d in seen])
    token = first["nextToken"]
    while token:
        page = client.describe_images(repositoryName="repo-r", maxResults=10, nextToken=token)
        seen.extend(d["imageDigest"] for d in page["imageDetails"])
        token = page.get("nextToken")
    assert set(seen) == digests and len(seen) == 30


def test_describe_images_tag_status_filter(emu):
    tagged = {emu.push_image("repo-r", ["v1"]), emu.push_image("repo-r", ["v2", "latest"])}
    untagged = {emu.push_image("repo-r") for _ in range(3)}
    client = emu.client()

    def listed(status=None, page_size=None):
        kwargs = {"repositoryName": "repo-r"}
        if status:
            kwargs["filter"] = {"tagStatus": status}
        config = {"PageSize": page_size} if page_size else {}
        return {d["imageDigest"]: d for p in client.get_paginator("describe_images").paginate(
            PaginationConfig=config, **kwargs) for d in p["imageDetails"]}

    assert set(listed("TAGGED")) == tagged
    assert set(listed("UNTAGGED")) == untagged
    assert set(listed("UNTAGGED", page_size=1)) == untagged
    assert set(listed("ANY")) == tagged | untagged
    assert set(listed()) == tagged | untagged
    assert all("imageTags" not in d for d in listed("UNTAGGED").values())
    with pytest.raises(ClientError):
        client.describe_images(repositoryName="repo-r", filter={"tagStatus": "SOMETIMES"})


def test_back_dated_push_and_size_visible(emu):
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    digest = emu.push_image("repo-r", ["old"], pushed_at=when, size=123_456_789)
    fresh = emu.push_image("repo-r")
    details = emu.images("repo-r")
    assert details[digest]["imagePushedAt"] == when
    assert details[digest]["imageSizeInBytes"] == 123_456_789
    age = datetime.now(timezone.utc) - details[fresh]["imagePushedAt"]
    assert timedelta(0) <= age < timedelta(minutes=5)

    emu.set_pushed_at("repo-r", fresh, timedelta(days=20))
    age = datetime.now(timezone.utc) - emu.images("repo-r")[fresh]["imagePushedAt"]
    assert timedelta(days=20) - timedelta(minutes=1) < age < timedelta(days=20, minutes=1)
    emu.set_size("repo-r", fresh, 42)
    assert emu.images("repo-r")[fresh]["imageSizeInBytes"] == 42


@pytest.mark.parametrize("via_api", [False, True])
def test_retag_leaves_old_image_untagged(emu, via_api):
    old = emu.push_image("repo-r", ["latest"], pushed_at=days_ago(30), via_api=via_api)
    multi = emu.push_image("repo-r", ["stable", "v1"], via_api=via_api)
    new = emu.push_image("repo-r", ["latest", "v1"], via_api=via_api)
    details = emu.images("repo-r")
    assert set(details) == {old, multi, new}
    assert "imageTags" not in details[old]
    assert details[old]["imagePushedAt"] < datetime.now(timezone.utc) - timedelta(days=29)
    assert set(details[multi]["imageTags"]) == {"stable"}
    assert set(details[new]["imageTags"]) == {"latest", "v1"}
    untagged = emu.client().describe_images(repositoryName="repo-r", filter={"tagStatus": "UNTAGGED"})
    assert [d["imageDigest"] for d in untagged["imageDetails"]] == [old]


def test_digest_is_sha256_of_manifest(emu):
    digest = emu.push_image("repo-r", ["a"], via_api=True)
    client = emu.client()
    image = client.batch_get_image(repositoryName="repo-r", imageIds=[{"imageDigest": digest}])["images"][0]
    assert manifest_digest(image["imageManifest"]) == digest
    manifest = emu.make_manifest()
    put = client.put_image(repositoryName="repo-r", imageManifest=manifest, imageTag="b")
    assert put["image"]["imageId"]["imageDigest"] == manifest_digest(manifest)
    with pytest.raises(ClientError):
        client.put_image(repositoryName="repo-r", imageManifest=emu.make_manifest(),
                         imageDigest="sha256:" + "0" * 64)


def test_batch_delete_image_reports_deleted_ids(emu):
    untagged = emu.push_image("repo-r")
    tagged = emu.push_image("repo-r", ["a", "b"])
    keep = emu.push_image("repo-r", ["keep"])
    client = emu.client()
    missing = "sha256:" + "f" * 64
    resp = client.batch_delete_image(repositoryName="repo-r", imageIds=[
        {"imageDigest": untagged}, {"imageDigest": tagged}, {"imageDigest": missing}])
    assert {"imageDigest": untagged} in resp["imageIds"]
    assert {"imageDigest": tagged, "imageTag": "a"} in resp["imageIds"]
    assert {"imageDigest": tagged, "imageTag": "b"} in resp["imageIds"]
    assert len(resp["imageIds"]) == 3
    assert resp["failures"] == [{"imageId": {"imageDigest": missing}, "failureCode": "ImageNotFound",
                                 "failureReason": "Requested image not found"}]
    assert emu.digests("repo-r") == {keep}

    with pytest.raises(ClientError) as err:
        client.batch_delete_image(repositoryName="repo-r", imageIds=[
            {"imageDigest": "sha256:%064x" % i} for i in range(101)])
    assert err.value.response["Error"]["Code"] in ("ValidationException", "InvalidParameterException")


def test_batch_delete_by_tag_untags_until_last(emu):
    digest = emu.push_image("repo-r", ["a", "b"])
    client = emu.client()
    resp = client.batch_delete_image(repositoryName="repo-r", imageIds=[{"imageTag": "a"}])
    assert resp["imageIds"] == [{"imageDigest": digest, "imageTag": "a"}]
    assert emu.tags_of("repo-r", digest) == {"b"}
    client.batch_delete_image(repositoryName="repo-r", imageIds=[{"imageTag": "b"}])
    assert emu.digests("repo-r") == set()


def test_protected_and_vanishing_images(emu):
    protected = emu.push_image("repo-r")
    vanishing = emu.push_image("repo-r")
    normal = emu.push_image("repo-r")
    emu.protect_image("repo-r", protected)
    emu.vanish_before_delete("repo-r", vanishing)
    resp = emu.client().batch_delete_image(repositoryName="repo-r", imageIds=[
        {"imageDigest": d} for d in (protected, vanishing, normal)])
    assert resp["imageIds"] == [{"imageDigest": normal}]
    codes = {f["imageId"]["imageDigest"]: f["failureCode"] for f in resp["failures"]}
    assert codes == {protected: "ImageReferencedByManifestList", vanishing: "ImageNotFound"}
    assert emu.digests("repo-r") == {protected}


def test_throttling_injection_and_request_counts(emu):
    emu.push_image("repo-r")
    emu.push_image("repo-s")
    client = emu.client()  # no retries
    emu.inject_fault("DescribeImages", times=2)
    for _ in range(2):
        with pytest.raises(ClientError) as err:
            client.describe_images(repositoryName="repo-r")
        assert err.value.response["Error"]["Code"] == "ThrottlingException"
        assert err.value.response["Error"]["Message"] == "Rate exceeded"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert len(client.describe_images(repositoryName="repo-r")["imageDetails"]) == 1
    client.describe_repositories()
    assert emu.request_counts() == {"DescribeImages": 3, "DescribeRepositories": 1}
    # The harness's own reads are not counted.
    emu.digests("repo-r")
    assert emu.request_counts() == {"DescribeImages": 3, "DescribeRepositories": 1}


def test_fault_for_one_repository_and_custom_status(emu):
    emu.push_image("repo-r")
    emu.push_image("repo-s")
    client = emu.client()
    emu.inject_fault("DescribeImages", times=5, status=500, code="ServerException",
                     message="boom", repository="repo-s")
    assert len(client.describe_images(repositoryName="repo-r")["imageDetails"]) == 1
    with pytest.raises(ClientError) as err:
        client.describe_images(repositoryName="repo-s")
    assert err.value.response["Error"]["Code"] == "ServerException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    assert emu.pending_faults() == 4
    log = emu.request_log()
    assert [(r.action, r.repository, r.faulted) for r in log] == [
        ("DescribeImages", "repo-r", False), ("DescribeImages", "repo-s", True)]


def test_boto3_retries_through_throttling(emu):
    import boto3
    from botocore.config import Config

    digest = emu.push_image("repo-r")
    client = boto3.client("ecr", region_name="us-east-1", endpoint_url=emu.endpoint,
                          aws_access_key_id="test", aws_secret_access_key="test",
                          config=Config(retries={"mode": "standard", "total_max_attempts": 4}))
    emu.inject_fault("BatchDeleteImage", times=2)
    resp = client.batch_delete_image(repositoryName="repo-r", imageIds=[{"imageDigest": digest}])
    assert resp["imageIds"] == [{"imageDigest": digest}]
    assert emu.request_counts() == {"BatchDeleteImage": 3}


def test_reset_empties_everything(emu):
    emu.push_image("repo-r", ["x"])
    emu.inject_fault("DescribeImages", 3)
    emu.client().describe_repositories()
    emu.reset()
    assert emu.request_counts() == {}
    assert emu.pending_faults() == 0
    assert emu.repositories() == []


def test_repository_tags_visible(emu):
    arn = emu.create_repository("tagged/repo", tags={"ecr-janitor:skip": "true"})
    tags = emu.client().list_tags_for_resource(resourceArn=arn)["tags"]
    assert tags == [{"Key": "ecr-janitor:skip", "Value": "true"}]
    assert arn == emu.repository_arn("tagged/repo")


def test_aws_env_points_at_loopback(emu):
    env = emu.aws_env()
    assert env["AWS_ENDPOINT_URL"] == emu.endpoint
    assert env["AWS_REGION"] == ecr_emulator.REGION


def test_latency_and_max_in_flight(emu):
    from concurrent.futures import ThreadPoolExecutor

    for i in range(6):
        emu.push_image(f"repo-{i}")
    emu.latency = 0.2
    client = emu.client()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: client.describe_images(repositoryName=f"repo-{i}"), range(6)))
    assert 2 <= emu.max_in_flight() <= 4
    emu.clear_request_counts()
    for i in range(3):
        client.describe_images(repositoryName=f"repo-{i}")
    assert emu.max_in_flight() == 1
    emu.reset()
    assert emu.latency == 0


def test_a_fault_rate_fails_that_share_of_calls_the_same_way_every_time(emu):
    emu.push_image("repo-r")
    client = emu.client()  # no retries

    def outcomes():
        seen = []
        for _ in range(200):
            try:
                client.describe_images(repositoryName="repo-r")
                seen.append(True)
            except ClientError as e:
                assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 503
                seen.append(False)
        return seen

    emu.inject_fault("ecr:*", times=10**6, status=503, code="ServiceUnavailableException",
                     message="Service unavailable", rate=0.1)
    first = outcomes()
    assert 10 <= first.count(False) <= 35, first.count(False)
    emu.reset()
    emu.push_image("repo-r")
    emu.inject_fault("ecr:*", times=10**6, status=503, code="ServiceUnavailableException",
                     message="Service unavailable", rate=0.1)
    assert outcomes() == first, "a seeded RNG: the same calls fail after a reset"


def test_an_outage_starts_after_some_calls_and_ends(emu):
    emu.push_image("repo-r")
    client = emu.client()
    emu.inject_fault("ecr:*", times=3, after=2, code="AccessDeniedException", message="refused")
    results = []
    for _ in range(7):
        try:
            client.describe_images(repositoryName="repo-r")
            results.append("ok")
        except ClientError as e:
            results.append(e.response["Error"]["Code"])
    assert results == ["ok", "ok"] + ["AccessDeniedException"] * 3 + ["ok", "ok"]


def test_eventbridge_delivers_events_with_account_and_iso_time(emu):
    import json

    events = emu.client(counted=False, service="events")
    sqs = emu.client(counted=False, service="sqs")
    events.create_event_bus(Name="bus")
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="r", EventBusName="bus", EventPattern=json.dumps({"source": ["test"]}))
    events.put_targets(Rule="r", EventBusName="bus", Targets=[{"Id": "q", "Arn": arn}])
    events.put_events(Entries=[{"Source": "test", "DetailType": "t", "Detail": '{"a": 1}', "EventBusName": "bus"}])
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"]
    event = json.loads(message["Body"])
    assert event["account"] == "123456789012"
    assert event["detail"] == {"a": 1} and event["detail-type"] == "t"
    assert event["time"].endswith("Z") and event["time"][4] == "-", event["time"]
