"""ECS and Lambda as a janitor sees them (images in use), request counting and
faults for their APIs, and regions kept apart. Observed through boto3."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


# -- ECS -----------------------------------------------------------------------

def test_ecs_task_image_digest_resolved_at_start(emu):
    old = emu.push_image("app", ["live"])
    sidecar = emu.push_image("sidecar", ["v1"])
    uri = emu.image_uri("app", "live")
    assert uri == f"{REGISTRY}/app:live"
    task = emu.ecs_run_task("prod", [uri, emu.image_uri("sidecar", digest=sidecar), "public.ecr.aws/nginx/nginx:1"])
    new = emu.push_image("app", ["live"])  # the tag moves after the task started
    later = emu.ecs_run_task("prod", uri)

    ecs = emu.client(service="ecs")
    tasks = {t["taskArn"]: t for t in ecs.describe_tasks(cluster="prod", tasks=[task, later])["tasks"]}
    containers = tasks[task]["containers"]
    assert [(c["image"], c.get("imageDigest")) for c in containers] == [
        (uri, old), (f"{REGISTRY}/sidecar@{sidecar}", sidecar), ("public.ecr.aws/nginx/nginx:1", None)]
    assert {c["taskArn"] for c in containers} == {task}
    assert all(c["containerArn"].startswith("arn:aws:ecs:us-east-1:123456789012:container/prod/") for c in containers)
    assert [c["imageDigest"] for c in tasks[later]["containers"]] == [new]
    assert sorted(emu.ecs_task_images("prod")) == sorted([
        (uri, old), (f"{REGISTRY}/sidecar@{sidecar}", sidecar), ("public.ecr.aws/nginx/nginx:1", None), (uri, new)])


def test_ecs_image_of_missing_tag_has_no_digest(emu):
    emu.create_repository("app")
    task = emu.ecs_run_task("prod", emu.image_uri("app", "gone"))
    container = emu.client(service="ecs").describe_tasks(cluster="prod", tasks=[task])["tasks"][0]["containers"][0]
    assert container["image"] == f"{REGISTRY}/app:gone"
    assert "imageDigest" not in container


def test_ecs_service_and_task_definition(emu):
    emu.push_image("web", ["v3"])
    uri = emu.image_uri("web", "v3")
    service_arn = emu.ecs_service("prod", "web", uri)
    ecs = emu.client(service="ecs")
    assert ecs.list_services(cluster="prod")["serviceArns"] == [service_arn]
    service = ecs.describe_services(cluster="prod", services=["web"])["services"][0]
    task_definition = service["deployments"][0]["taskDefinition"]
    assert task_definition == "arn:aws:ecs:us-east-1:123456789012:task-definition/web:1"
    assert service["taskDefinition"] == task_definition
    described = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    assert [c["image"] for c in described["containerDefinitions"]] == [uri]


def test_ecs_lists_paginate(emu):
    emu.push_image("web", ["v1"])
    uri = emu.image_uri("web", "v1")
    arns = {emu.ecs_service("big", f"svc-{i:02d}", uri) for i in range(12)}
    ecs = emu.client(service="ecs")
    first = ecs.list_services(cluster="big")
    assert len(first["serviceArns"]) == 10 and first.get("nextToken")  # ECS's default page
    rest = ecs.list_services(cluster="big", nextToken=first["nextToken"])
    assert "nextToken" not in rest
    assert set(first["serviceArns"]) | set(rest["serviceArns"]) == arns
    paged = [a for p in ecs.get_paginator("list_services").paginate(cluster="big", PaginationConfig={"PageSize": 5})
             for a in p["serviceArns"]]
    assert sorted(paged) == sorted(arns) and len(paged) == 12
    with pytest.raises(ClientError) as err:
        ecs.list_services(cluster="big", maxResults=101)
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as err:
        ecs.describe_services(cluster="big", services=[f"svc-{i:02d}" for i in range(11)])
    assert err.value.response["Error"]["Code"] == "InvalidParameterException"

    definitions = ecs.list_task_definitions(maxResults=5)
    assert definitions["taskDefinitionArns"] == [
        f"arn:aws:ecs:us-east-1:123456789012:task-definition/svc-{i:02d}:1" for i in range(5)]
    newest = ecs.list_task_definitions(sort="DESC", maxResults=2)
    assert [a.rsplit("/", 1)[1] for a in newest["taskDefinitionArns"]] == ["svc-11:1", "svc-10:1"]
    after = ecs.list_task_definitions(sort="DESC", maxResults=2, nextToken=newest["nextToken"])
    assert [a.rsplit("/", 1)[1] for a in after["taskDefinitionArns"]] == ["svc-09:1", "svc-08:1"]

    emu.ecs_cluster("other")
    clusters = ecs.list_clusters(maxResults=1)
    assert len(clusters["clusterArns"]) == 1 and clusters.get("nextToken")


def test_ecs_list_tasks_running_only_and_exact_cluster(emu):
    emu.push_image("app", ["v1"])
    uri = emu.image_uri("app", "v1")
    running = emu.ecs_run_task("a", uri)
    stopped = emu.ecs_run_task("a", uri)
    other = emu.ecs_run_task("ab", uri)
    emu.ecs_stop_task("a", stopped)
    ecs = emu.client(service="ecs")
    assert ecs.list_tasks(cluster="a")["taskArns"] == [running]
    assert ecs.list_tasks(cluster="a", desiredStatus="STOPPED")["taskArns"] == [stopped]
    assert ecs.list_tasks(cluster="ab")["taskArns"] == [other]


# -- Lambda --------------------------------------------------------------------

def test_lambda_resolves_image_at_create_and_update(emu):
    first = emu.push_image("fn", ["live"])
    uri = emu.image_uri("fn", "live")
    arn = emu.lambda_image_function("worker", uri, publish=True)
    assert arn == "arn:aws:lambda:us-east-1:123456789012:function:worker"
    lam = emu.client(service="lambda")

    second = emu.push_image("fn", ["live"])  # the tag moves; Lambda keeps what it resolved
    got = lam.get_function(FunctionName="worker")
    assert got["Code"]["ImageUri"] == uri
    assert got["Code"]["ResolvedImageUri"] == f"{REGISTRY}/fn@{first}"
    assert got["Configuration"]["CodeSha256"] == first.split(":")[1]
    assert got["Configuration"]["PackageType"] == "Image"

    emu.lambda_update_image("worker", uri)
    assert lam.get_function(FunctionName="worker")["Code"]["ResolvedImageUri"] == f"{REGISTRY}/fn@{second}"
    assert lam.get_function(FunctionName="worker", Qualifier="1")["Code"]["ResolvedImageUri"] == f"{REGISTRY}/fn@{first}"
    assert emu.lambda_publish_version("worker") == "2"

    pinned = emu.push_image("fn", ["canary"])
    emu.lambda_update_image("worker", emu.image_uri("fn", digest=pinned))
    assert emu.lambda_publish_version("worker") == "3"
    codes = {q: lam.get_function(FunctionName="worker", Qualifier=q)["Code"] for q in ("1", "2", "3", "$LATEST")}
    assert {q: c["ImageUri"] for q, c in codes.items()} == {
        "1": uri, "2": uri, "3": f"{REGISTRY}/fn@{pinned}", "$LATEST": f"{REGISTRY}/fn@{pinned}"}
    assert {q: c["ResolvedImageUri"] for q, c in codes.items()} == {
        "1": f"{REGISTRY}/fn@{first}", "2": f"{REGISTRY}/fn@{second}",
        "3": f"{REGISTRY}/fn@{pinned}", "$LATEST": f"{REGISTRY}/fn@{pinned}"}
    assert emu.lambda_resolved_image("worker", "2") == f"{REGISTRY}/fn@{second}"


def test_lambda_refuses_images_that_do_not_exist(emu):
    emu.push_image("fn", ["v1"])
    role = emu.lambda_role_arn()
    lam = emu.client(service="lambda")
    for uri in (emu.image_uri("fn", "v2"), emu.image_uri("nope", "v1"), "docker.io/library/nginx:1",
                emu.image_uri("fn", "v1", region="eu-west-1")):
        with pytest.raises(ClientError) as err:
            lam.create_function(FunctionName="bad", Role=role, PackageType="Image", Code={"ImageUri": uri})
        assert err.value.response["Error"]["Code"] == "InvalidParameterValueException", uri
    assert lam.list_functions()["Functions"] == []


def test_lambda_versions_aliases_and_listing(emu):
    emu.push_image("fn", ["v1"])
    emu.lambda_image_function("img", emu.image_uri("fn", "v1"))
    emu.lambda_zip_function("zip")
    assert emu.lambda_publish_version("img") == "1"
    emu.push_image("fn", ["v1"])
    emu.lambda_update_image("img", emu.image_uri("fn", "v1"), publish=True)
    alias_arn = emu.lambda_alias("img", "live", "2", extra_weights={"1": 0.25})
    assert alias_arn == "arn:aws:lambda:us-east-1:123456789012:function:img:live"
    emu.lambda_alias("img", "old", "1")

    lam = emu.client(service="lambda")
    functions = {f["FunctionName"]: f for f in lam.list_functions()["Functions"]}
    assert {n: f["PackageType"] for n, f in functions.items()} == {"img": "Image", "zip": "Zip"}
    versions = lam.list_versions_by_function(FunctionName="img")["Versions"]
    assert [v["Version"] for v in versions] == ["$LATEST", "1", "2"]
    assert versions[0]["CodeSha256"] == versions[2]["CodeSha256"] != versions[1]["CodeSha256"]
    aliases = lam.list_aliases(FunctionName="img")["Aliases"]
    assert [(a["Name"], a["FunctionVersion"]) for a in aliases] == [("live", "2"), ("old", "1")]
    assert aliases[0]["RoutingConfig"] == {"AdditionalVersionWeights": {"1": 0.25}}
    assert [a["Name"] for a in lam.list_aliases(FunctionName="img", FunctionVersion="1")["Aliases"]] == ["old"]
    with pytest.raises(ClientError) as err:
        lam.create_alias(FunctionName="img", Name="bad", FunctionVersion="2",
                         RoutingConfig={"AdditionalVersionWeights": {"7": 0.5}})
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"


def test_lambda_lists_paginate(emu):
    emu.push_image("fn", ["v1"])
    uri = emu.image_uri("fn", "v1")
    names = {f"fn-{i:02d}" for i in range(53)}
    for name in names:
        emu.lambda_image_function(name, uri)
    lam = emu.client(service="lambda")
    first = lam.list_functions(MaxItems=1000)
    assert len(first["Functions"]) == 50 and first.get("NextMarker")  # at most 50 a page, as in AWS
    listed = [f["FunctionName"] for p in lam.get_paginator("list_functions").paginate() for f in p["Functions"]]
    assert sorted(listed) == sorted(names) and len(listed) == 53
    for _ in range(3):
        emu.lambda_update_image("fn-00", uri, publish=True)
        emu.push_image("fn", ["v1"])
    page = lam.list_versions_by_function(FunctionName="fn-00", MaxItems=2)
    assert [v["Version"] for v in page["Versions"]] == ["$LATEST", "1"]
    rest = lam.list_versions_by_function(FunctionName="fn-00", Marker=page["NextMarker"])
    assert [v["Version"] for v in rest["Versions"]] == ["2", "3"] and "NextMarker" not in rest
    with pytest.raises(ClientError) as err:
        lam.list_functions(Marker="garbage")
    assert err.value.response["Error"]["Code"] == "InvalidParameterValueException"


# -- counting and faults ---------------------------------------------------------

def test_ecs_and_lambda_requests_are_counted_by_action(emu):
    emu.push_image("app", ["v1"])
    uri = emu.image_uri("app", "v1")
    task = emu.ecs_run_task("prod", uri)
    emu.lambda_image_function("fn", uri, publish=True)
    emu.lambda_alias("fn", "live", "1")
    assert emu.request_counts() == {}  # seeding helpers are not counted

    ecs, lam = emu.client(service="ecs"), emu.client(service="lambda")
    ecs.list_tasks(cluster="prod")
    ecs.describe_tasks(cluster="prod", tasks=[task])
    lam.list_functions()
    lam.list_versions_by_function(FunctionName="fn")
    lam.get_function(FunctionName="fn", Qualifier="1")
    lam.get_function(FunctionName="fn")
    lam.list_aliases(FunctionName="fn")
    emu.client().describe_repositories()
    assert emu.request_counts() == {"ListTasks": 1, "DescribeTasks": 1, "ListFunctions": 1,
                                    "ListVersionsByFunction": 1, "GetFunction": 2, "ListAliases": 1,
                                    "DescribeRepositories": 1}
    assert emu.request_counts("lambda") == {"ListFunctions": 1, "ListVersionsByFunction": 1,
                                            "GetFunction": 2, "ListAliases": 1}
    assert emu.request_counts("ecs") == {"ListTasks": 1, "DescribeTasks": 1}
    assert [(r.service, r.region) for r in emu.request_log()][:2] == [("ecs", "us-east-1")] * 2


def test_faults_for_one_action_of_ecs_and_lambda(emu):
    emu.push_image("app", ["v1"])
    emu.lambda_image_function("fn", emu.image_uri("app", "v1"))
    emu.ecs_cluster("prod")
    ecs, lam = emu.client(service="ecs"), emu.client(service="lambda")
    emu.inject_fault("ListFunctions", times=1, status=429, code="TooManyRequestsException", message="slow down")
    emu.inject_fault("ecs:ListTasks", times=1, code="ThrottlingException")
    with pytest.raises(ClientError) as err:
        lam.list_functions()
    assert err.value.response["Error"]["Code"] == "TooManyRequestsException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert [f["FunctionName"] for f in lam.list_functions()["Functions"]] == ["fn"]
    with pytest.raises(ClientError) as err:
        ecs.list_tasks(cluster="prod")
    assert err.value.response["Error"]["Code"] == "ThrottlingException"
    assert ecs.list_tasks(cluster="prod")["taskArns"] == []
    assert emu.pending_faults() == 0


def test_fail_service_fails_every_call_of_that_service_only(emu):
    emu.push_image("app", ["v1"])
    emu.lambda_image_function("fn", emu.image_uri("app", "v1"))
    emu.fail_service("ecs")
    emu.inject_fault("lambda:*", times=2, code="AccessDeniedException", status=403)
    ecs, lam, ecr = emu.client(service="ecs"), emu.client(service="lambda"), emu.client()
    for call in (ecs.list_clusters, lambda: ecs.list_services(cluster="x"), lambda: ecs.describe_tasks(tasks=["t"])):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDeniedException"
    for call in (lam.list_functions, lambda: lam.get_function(FunctionName="fn")):
        with pytest.raises(ClientError) as err:
            call()
        assert err.value.response["Error"]["Code"] == "AccessDeniedException"
        assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert len(lam.list_functions()["Functions"]) == 1  # only 2 Lambda faults
    assert len(ecr.describe_images(repositoryName="app")["imageDetails"]) == 1  # ECR untouched
    with pytest.raises(ClientError):
        ecs.list_clusters()  # still failing
    emu.clear_faults()
    assert ecs.list_clusters()["clusterArns"] == []


# -- regions ---------------------------------------------------------------------

def test_regions_stay_apart(emu):
    east = emu.push_image("shared/name", ["v1"])
    west = emu.push_image("shared/name", ["v1"], region="eu-west-1")
    assert east != west
    assert emu.snapshot() == {"shared/name": {east: {"v1"}}}
    assert emu.snapshot(region="eu-west-1") == {"shared/name": {west: {"v1"}}}
    assert emu.digests("shared/name", region="eu-west-1") == {west}
    eu = emu.client(region="eu-west-1")
    assert [d["imageDigest"] for d in eu.describe_images(repositoryName="shared/name")["imageDetails"]] == [west]
    assert emu.repository_arn("shared/name", region="eu-west-1") == \
        "arn:aws:ecr:eu-west-1:123456789012:repository/shared/name"
    assert emu.repositories(region="ap-south-1") == []

    index = emu.push_index("multi", ["v1"], region="eu-west-1")
    assert "multi" not in emu.snapshot()
    resp = eu.batch_delete_image(repositoryName="multi", imageIds=[{"imageDigest": index.children[0]}])
    assert [f["failureCode"] for f in resp["failures"]] == ["ImageReferencedByManifestList"]

    # Lambda resolves in its own region; ECS tasks may pull from any region.
    eu_uri = emu.image_uri("shared/name", "v1", region="eu-west-1")
    emu.lambda_image_function("fn", eu_uri, region="eu-west-1")
    assert emu.lambda_resolved_image("fn", region="eu-west-1") == \
        f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/shared/name@{west}"
    assert emu.client(service="lambda").list_functions()["Functions"] == []
    emu.ecs_run_task("prod", emu.image_uri("shared/name", "v1"), region="eu-west-1")
    assert emu.ecs_task_images("prod", region="eu-west-1") == [(emu.image_uri("shared/name", "v1"), east)]
    assert emu.client(service="ecs").list_clusters()["clusterArns"] == []


def test_region_scoped_faults_hooks_and_protection(emu):
    east = emu.push_image("app")
    west = emu.push_image("app", region="eu-west-1")
    emu.tag_after_listing("app", west, "late", region="eu-west-1")
    emu.inject_fault("DescribeImages", region="eu-west-1")
    emu.protect_image("app", east, code="ImageReferencedByManifestList", reason="pinned")
    us, eu = emu.client(), emu.client(region="eu-west-1")
    us.describe_images(repositoryName="app")  # neither the fault nor the hook is for us-east-1
    assert emu.pending_faults() == 1 and emu.pending_listing_hooks() == 1
    with pytest.raises(ClientError):
        eu.describe_images(repositoryName="app")
    eu.describe_images(repositoryName="app")
    assert emu.snapshot(region="eu-west-1") == {"app": {west: {"late"}}}
    assert [r.region for r in emu.request_log()] == ["us-east-1", "eu-west-1", "eu-west-1"]
    # protect_image was for us-east-1 only
    assert eu.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": west}])["failures"] == []
    assert us.batch_delete_image(repositoryName="app", imageIds=[{"imageDigest": east}])["failures"][0][
        "failureReason"] == "pinned"
    emu.reset()
    assert emu.snapshot(region="eu-west-1") == {}
    assert emu.client(service="lambda", region="eu-west-1").list_functions()["Functions"] == []
