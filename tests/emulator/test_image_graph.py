"""The image graph as ECR shows it: image indexes and their children,
attestations, referrers and cosign signatures; BatchGetImage; DescribeImages
with explicit ids; the race hooks. Observed through boto3 over HTTP."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

import image_graph
from ecr_emulator import DOCKER_CONFIG_V1, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST_V2, OCI_INDEX, OCI_MANIFEST, manifest_digest

MISSING = "sha256:" + "1" * 64


def test_describe_images_shows_artifact_type_and_subject(emu):
    docker = emu.push_image("graph", ["plain"])
    index = emu.push_index("graph", ["v1"])
    signature = emu.push_referrer("graph", index.digest)
    sbom = emu.push_referrer("graph", index.platforms["linux/amd64"], artifact_type="application/spdx+json")
    legacy = emu.push_cosign_legacy("graph", index.digest)
    details = {d["imageDigest"]: d for d in emu.client().describe_images(repositoryName="graph")["imageDetails"]}
    assert len(details) == 2 + 4 + 3  # docker, index, 2 platforms, 2 attestations, 2 referrers, legacy

    assert details[docker]["imageManifestMediaType"] == DOCKER_MANIFEST_V2
    assert details[docker]["artifactMediaType"] == DOCKER_CONFIG_V1
    assert "subjectManifestDigest" not in details[docker]

    assert details[index.digest]["imageManifestMediaType"] == OCI_INDEX
    assert "artifactMediaType" not in details[index.digest]
    assert "subjectManifestDigest" not in details[index.digest]

    amd64 = details[index.platforms["linux/amd64"]]
    assert amd64["imageManifestMediaType"] == OCI_MANIFEST
    assert amd64["artifactMediaType"] == image_graph.OCI_CONFIG
    assert "imageTags" not in amd64

    assert details[signature]["artifactMediaType"] == "application/vnd.dev.cosign.artifact.sig.v1+json"
    assert details[signature]["subjectManifestDigest"] == index.digest
    assert details[sbom]["artifactMediaType"] == "application/spdx+json"
    assert details[sbom]["subjectManifestDigest"] == index.platforms["linux/amd64"]
    assert "subjectManifestDigest" not in details[legacy]


def test_put_image_api_sets_artifact_type_and_subject(emu):
    subject = emu.push_image("graph", ["app"])
    client = emu.client()
    manifest = image_graph.referrer_manifest(subject, DOCKER_MANIFEST_V2, 528, "application/vnd.cncf.notary.signature")
    digest = client.put_image(repositoryName="graph", imageManifest=manifest)["image"]["imageId"]["imageDigest"]
    assert digest == manifest_digest(manifest)
    detail = client.describe_images(repositoryName="graph", imageIds=[{"imageDigest": digest}])["imageDetails"][0]
    assert detail["artifactMediaType"] == "application/vnd.cncf.notary.signature"
    assert detail["subjectManifestDigest"] == subject
    assert detail["imageManifestMediaType"] == OCI_MANIFEST
    assert detail["imageSizeInBytes"] == 512  # the layers' total, as ECR counts it


def test_push_index_is_buildx_shaped(emu):
    index = emu.push_index("multi", ["v1", "latest"], platforms=("linux/amd64", "linux/arm64/v8"))
    assert set(index.platforms) == {"linux/amd64", "linux/arm64/v8"}
    assert len(index.attestations) == 2
    assert index.children == [index.platforms["linux/amd64"], index.platforms["linux/arm64/v8"], *index.attestations]

    client = emu.client()
    got = client.batch_get_image(repositoryName="multi", imageIds=[{"imageTag": "v1"}])["images"][0]
    assert got["imageId"] == {"imageDigest": index.digest, "imageTag": "v1"}
    assert got["imageManifestMediaType"] == OCI_INDEX
    assert manifest_digest(got["imageManifest"]) == index.digest
    manifest = json.loads(got["imageManifest"])
    assert manifest["mediaType"] == OCI_INDEX
    entries = manifest["manifests"]
    assert [e["digest"] for e in entries] == index.children
    assert entries[1]["platform"] == {"architecture": "arm64", "os": "linux", "variant": "v8"}
    attestation = entries[2]
    assert attestation["platform"] == {"architecture": "unknown", "os": "unknown"}
    assert attestation["annotations"] == {"vnd.docker.reference.digest": index.platforms["linux/amd64"],
                                          "vnd.docker.reference.type": "attestation-manifest"}

    children = client.batch_get_image(repositoryName="multi",
                                      imageIds=[{"imageDigest": d} for d in index.children])["images"]
    assert [c["imageId"] for c in children] == [{"imageDigest": d} for d in index.children]
    for child, entry in zip(children, entries):
        assert manifest_digest(child["imageManifest"]) == entry["digest"]
        assert len(child["imageManifest"].encode()) == entry["size"]
    att_layers = json.loads(children[2]["imageManifest"])["layers"]
    assert [layer["mediaType"] for layer in att_layers] == ["application/vnd.in-toto+json"]
    assert emu.snapshot()["multi"] == {index.digest: {"v1", "latest"}, **{d: set() for d in index.children}}


def test_push_index_docker_manifest_list_and_explicit_children(emu):
    listed = emu.push_index("multi", ["docker"], media_type=DOCKER_MANIFEST_LIST, attestation=False,
                            platforms=("linux/amd64",))
    details = emu.images("multi")
    assert details[listed.digest]["imageManifestMediaType"] == DOCKER_MANIFEST_LIST
    assert details[listed.platforms["linux/amd64"]]["imageManifestMediaType"] == DOCKER_MANIFEST_V2
    assert listed.attestations == []

    plain = emu.push_image("multi")
    outer = emu.push_index("multi", ["outer"], children=[listed.digest, plain])
    assert outer.children == [listed.digest, plain]
    assert outer.platforms == {} and outer.attestations == []
    manifest = json.loads(emu.client().batch_get_image(
        repositoryName="multi", imageIds=[{"imageDigest": outer.digest}])["images"][0]["imageManifest"])
    assert [(e["mediaType"], e["digest"]) for e in manifest["manifests"]] == [
        (DOCKER_MANIFEST_LIST, listed.digest), (DOCKER_MANIFEST_V2, plain)]


def test_put_index_refuses_missing_children(emu):
    emu.create_repository("multi")
    index = image_graph.index_manifest(OCI_INDEX, [{"mediaType": OCI_MANIFEST, "digest": MISSING, "size": 10}])
    with pytest.raises(ClientError) as err:
        emu.client().put_image(repositoryName="multi", imageManifest=index, imageTag="v1")
    assert err.value.response["Error"]["Code"] == "ReferencedImagesNotFoundException"
    assert emu.snapshot()["multi"] == {}


def test_cosign_legacy_tag(emu):
    subject = emu.push_image("signed", ["v1"])
    sig = emu.push_cosign_legacy("signed", subject)
    att = emu.push_cosign_legacy("signed", subject, kind="att")
    hex_digest = subject.split(":", 1)[1]
    assert emu.snapshot()["signed"] == {subject: {"v1"}, sig: {f"sha256-{hex_digest}.sig"},
                                        att: {f"sha256-{hex_digest}.att"}}
    with pytest.raises(ValueError):
        emu.push_cosign_legacy("signed", subject, kind="nope")


def test_batch_get_image_by_digest_and_tag_with_failures(emu):
    digest = emu.push_image("get", ["a", "b"])
    other = emu.push_image("get", ["c"])
    client = emu.client()
    resp = client.batch_get_image(repositoryName="get", imageIds=[
        {"imageDigest": digest}, {"imageTag": "b"}, {"imageDigest": MISSING}, {"imageTag": "zz"},
        {"imageDigest": other, "imageTag": "a"}])
    assert [i["imageId"] for i in resp["images"]] == [{"imageDigest": digest},
                                                      {"imageDigest": digest, "imageTag": "b"}]
    assert all(i["imageManifestMediaType"] == DOCKER_MANIFEST_V2 for i in resp["images"])
    assert manifest_digest(resp["images"][0]["imageManifest"]) == digest
    assert resp["failures"] == [
        {"imageId": {"imageDigest": MISSING}, "failureCode": "ImageNotFound",
         "failureReason": "Requested image not found"},
        {"imageId": {"imageTag": "zz"}, "failureCode": "ImageNotFound",
         "failureReason": "Requested image not found"},
        {"imageId": {"imageDigest": other, "imageTag": "a"}, "failureCode": "ImageTagDoesNotMatchDigest",
         "failureReason": "Invalid request parameters: image tag does not match digest"},
    ]
    with pytest.raises(ClientError) as err:
        client.batch_get_image(repositoryName="get", imageIds=[{"imageDigest": "sha256:%064x" % i} for i in range(101)])
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_break_manifest(emu):
    index = emu.push_index("broken", ["v1"], attestation=False)
    amd64, arm64 = index.platforms["linux/amd64"], index.platforms["linux/arm64"]
    emu.break_manifest("broken", amd64, "failure")
    emu.break_manifest("broken", arm64, "garbage")
    client = emu.client()
    resp = client.batch_get_image(repositoryName="broken", imageIds=[
        {"imageDigest": amd64}, {"imageDigest": arm64}, {"imageTag": "v1"}])
    assert [f["imageId"] for f in resp["failures"]] == [{"imageDigest": amd64}]
    assert resp["failures"][0]["failureCode"] == "KmsError"
    assert [i["imageId"]["imageDigest"] for i in resp["images"]] == [arm64, index.digest]
    with pytest.raises(ValueError):
        json.loads(resp["images"][0]["imageManifest"])
    assert manifest_digest(resp["images"][1]["imageManifest"]) == index.digest
    # Still listed: only the manifest is unreadable.
    assert {amd64, arm64, index.digest} == emu.digests("broken")
    with pytest.raises(ValueError):
        emu.break_manifest("broken", amd64, "sometimes")
    emu.reset()
    digest = emu.push_image("broken")
    assert client.batch_get_image(repositoryName="broken", imageIds=[{"imageDigest": digest}])["failures"] == []


def test_batch_delete_refuses_children_of_present_index(emu):
    index = emu.push_index("multi", ["v1"])
    amd64 = index.platforms["linux/amd64"]
    client = emu.client()
    resp = client.batch_delete_image(repositoryName="multi", imageIds=[{"imageDigest": index.digest},
                                                                       {"imageDigest": amd64}])
    assert resp["imageIds"] == [{"imageDigest": index.digest, "imageTag": "v1"}]
    assert resp["failures"] == [{
        "imageId": {"imageDigest": amd64}, "failureCode": "ImageReferencedByManifestList",
        "failureReason": f"Requested image referenced by manifest list: [{index.digest}]"}]
    assert emu.digests("multi") == set(index.children)
    # With the index gone, a later call deletes its children.
    resp = client.batch_delete_image(repositoryName="multi", imageIds=[{"imageDigest": d} for d in index.children])
    assert resp["failures"] == []
    assert emu.digests("multi") == set()


def test_batch_delete_shared_and_nested_children(emu):
    shared = emu.push_image("multi", ["shared-tag"])
    extra = emu.push_image("multi")
    first = emu.push_index("multi", ["a"], children=[shared])
    second = emu.push_index("multi", ["b"], children=[shared, extra])
    assert first.digest != second.digest
    outer = emu.push_index("multi", ["outer"], children=[first.digest])
    client = emu.client()
    resp = client.batch_delete_image(repositoryName="multi", imageIds=[
        {"imageTag": "shared-tag"}, {"imageDigest": first.digest}, {"imageDigest": second.digest}])
    # The tag-only delete would remove the image's last tag, so the image: refused.
    reasons = {f["imageId"].get("imageDigest", f["imageId"].get("imageTag")): f["failureReason"]
               for f in resp["failures"]}
    assert set(reasons) == {"shared-tag", first.digest}
    assert first.digest in reasons["shared-tag"] and second.digest in reasons["shared-tag"]
    assert reasons[first.digest] == f"Requested image referenced by manifest list: [{outer.digest}]"
    assert resp["imageIds"] == [{"imageDigest": second.digest, "imageTag": "b"}]
    assert emu.snapshot()["multi"] == {shared: {"shared-tag"}, extra: set(), first.digest: {"a"},
                                       outer.digest: {"outer"}}


def test_protection_does_not_outlive_the_index(emu):
    index = emu.push_index("multi", ["v1"], attestation=False)
    child = index.platforms["linux/arm64"]
    client = emu.client()
    assert client.batch_delete_image(repositoryName="multi", imageIds=[{"imageDigest": child}])["imageIds"] == []
    client.batch_delete_image(repositoryName="multi", imageIds=[{"imageTag": "v1"}])
    assert client.batch_delete_image(repositoryName="multi", imageIds=[{"imageDigest": child}])["imageIds"] == [
        {"imageDigest": child}]


def test_describe_images_with_ids_fails_whole_call_on_a_missing_id(emu):
    digest = emu.push_image("ids", ["a"])
    client = emu.client()
    with pytest.raises(ClientError) as err:
        client.describe_images(repositoryName="ids", imageIds=[{"imageDigest": digest}, {"imageDigest": MISSING}])
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == "ImageNotFoundException"
    assert err.value.response["Error"]["Message"] == (
        f"The image with imageId {{imageDigest:'{MISSING}', imageTag:'null'}} does not exist within the "
        "repository with name 'ids' in the registry with id '123456789012'")
    resp = client.describe_images(repositoryName="ids", imageIds=[{"imageTag": "a"}, {"imageDigest": digest}])
    assert [d["imageDigest"] for d in resp["imageDetails"]] == [digest]
    with pytest.raises(ClientError) as err:
        client.describe_images(repositoryName="ids", imageIds=[{"imageDigest": "sha256:%064x" % i} for i in range(101)])
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_tag_after_listing_moves_tag_when_listing_completes(emu):
    holder = emu.push_image("race", ["prod"])
    target = emu.push_image("race")
    emu.push_image("race")
    emu.tag_after_listing("race", target, "prod")
    client = emu.client()
    emu.images("race")  # the harness's own (uncounted) listing does not count
    client.describe_images(repositoryName="race", imageIds=[{"imageDigest": target}])  # not a listing
    first = client.describe_images(repositoryName="race", maxResults=2)
    assert first.get("nextToken")
    assert emu.snapshot()["race"][target] == set()  # not complete yet
    assert emu.pending_listing_hooks() == 1
    last = client.describe_images(repositoryName="race", maxResults=2, nextToken=first["nextToken"])
    assert "nextToken" not in last
    assert emu.snapshot()["race"][target] == {"prod"}
    assert emu.snapshot()["race"][holder] == set()
    assert emu.pending_listing_hooks() == 0
    # One-shot: moving the tag back stays put after the next listing.
    emu.push_image("race", ["prod"])
    client.describe_images(repositoryName="race")
    assert emu.snapshot()["race"][target] == set()


def test_delete_after_listing(emu):
    doomed = emu.push_image("race", ["x"])
    kept = emu.push_image("race")
    emu.push_image("other")
    emu.delete_after_listing("race", doomed)
    client = emu.client()
    client.describe_images(repositoryName="other")
    assert doomed in emu.snapshot()["race"]
    listed = client.describe_images(repositoryName="race", filter={"tagStatus": "ANY"})
    assert {d["imageDigest"] for d in listed["imageDetails"]} == {doomed, kept}  # the listing saw it
    assert set(emu.snapshot()["race"]) == {kept}
    resp = client.batch_delete_image(repositoryName="race", imageIds=[{"imageDigest": doomed}])
    assert [f["failureCode"] for f in resp["failures"]] == ["ImageNotFound"]


def test_failed_listing_does_not_fire_hooks(emu):
    target = emu.push_image("race")
    emu.tag_after_listing("race", target, "late")
    emu.inject_fault("DescribeImages")
    client = emu.client()
    with pytest.raises(ClientError):
        client.describe_images(repositoryName="race")
    assert emu.snapshot()["race"][target] == set()
    client.describe_images(repositoryName="race")
    assert emu.snapshot()["race"][target] == {"late"}


def test_reset_forgets_graph_state_and_hooks(emu):
    index = emu.push_index("multi", ["v1"])
    emu.break_manifest("multi", index.digest, "garbage")
    emu.tag_after_listing("multi", index.digest, "t")
    emu.delete_after_listing("multi", index.digest)
    emu.protect_image("multi", index.digest)
    emu.reset()
    assert emu.pending_listing_hooks() == 0
    again = emu.push_image("multi", ["v1"])
    resp = emu.client().batch_get_image(repositoryName="multi", imageIds=[{"imageTag": "v1"}])
    assert manifest_digest(resp["images"][0]["imageManifest"]) == again
