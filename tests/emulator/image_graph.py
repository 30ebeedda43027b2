"""Manifests and the graph between them, as ECR sees it.

Pure helpers used by the emulator's ECR patches and seeding helpers:

* building manifests the way real tools push them: Docker v2 and OCI image
  manifests, buildx-style image indexes with attestation manifests, OCI 1.1
  referrers (``subject`` + ``artifactType``, as cosign/notation/SBOM tools
  push them) and legacy cosign ``sha256-<hex>.sig`` images;
* reading what ECR derives from a stored manifest: ``artifactMediaType``,
  ``subjectManifestDigest``, the manifests an index lists, the size.

Every manifest built here is unique (a seed goes into its config digest or an
annotation), so its sha256 is a fresh image digest.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

DOCKER_MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG_V1 = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_EMPTY_DIGEST = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"  # sha256 of b"{}"
IN_TOTO = "application/vnd.in-toto+json"
COSIGN_SIGNATURE_ARTIFACT = "application/vnd.dev.cosign.artifact.sig.v1+json"
COSIGN_SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
DSSE_ENVELOPE = "application/vnd.dsse.envelope.v1+json"
SPDX_JSON = "text/spdx+json"

INDEX_MEDIA_TYPES = frozenset({OCI_INDEX, DOCKER_MANIFEST_LIST})

_seq = itertools.count(1)


def manifest_digest(manifest: str) -> str:
    return "sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest()


def _unique_seed(seed: Optional[str] = None) -> str:
    return seed or f"{next(_seq)}-{uuid.uuid4()}"


def _blob_digest(kind: str, seed: str) -> str:
    return "sha256:" + hashlib.sha256(f"{kind}-{seed}".encode()).hexdigest()


def _dump(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, indent=3)


# --------------------------------------------------------------------------
# Reading a stored manifest
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestFacts:
    """What ECR derives from one stored manifest."""

    media_type: Optional[str]
    artifact_media_type: Optional[str]
    subject_digest: Optional[str]
    children: tuple[str, ...]  # manifests[].digest of an index, else ()
    layers_size: Optional[int]  # sum of layers[].size of an image manifest, else None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES


def facts(manifest_text: str, stored_media_type: Optional[str] = None) -> ManifestFacts:
    """Parse a manifest; unparseable text yields empty facts."""
    try:
        parsed = json.loads(manifest_text)
    except (TypeError, ValueError):
        parsed = None
    if not isinstance(parsed, dict):
        return ManifestFacts(stored_media_type, None, None, (), None)
    media_type = stored_media_type or parsed.get("mediaType")
    if media_type is None and isinstance(parsed.get("manifests"), list):
        media_type = OCI_INDEX
    children: tuple[str, ...] = ()
    artifact = None
    layers_size = None
    if media_type in INDEX_MEDIA_TYPES or isinstance(parsed.get("manifests"), list):
        children = tuple(m["digest"] for m in parsed.get("manifests") or []
                         if isinstance(m, dict) and isinstance(m.get("digest"), str))
    else:
        artifact = parsed.get("artifactType")
        config = parsed.get("config")
        if not artifact and isinstance(config, dict):
            artifact = config.get("mediaType")
        layers = parsed.get("layers")
        if isinstance(layers, list):
            layers_size = sum(int(layer.get("size", 0)) for layer in layers if isinstance(layer, dict))
    subject = parsed.get("subject")
    subject_digest = subject.get("digest") if isinstance(subject, dict) else None
    return ManifestFacts(media_type, artifact if isinstance(artifact, str) else None,
                         subject_digest if isinstance(subject_digest, str) else None,
                         children, layers_size)


# --------------------------------------------------------------------------
# Building manifests
# --------------------------------------------------------------------------

def docker_manifest(size: int = 0, seed: Optional[str] = None) -> str:
    """A unique Docker v2 image manifest (config + one layer)."""
    seed = _unique_seed(seed)
    layer_size = max(size - 1500, 1) if size else 1024 * 1024
    return _dump({
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST_V2,
        "config": {"mediaType": DOCKER_CONFIG_V1, "size": 1500, "digest": _blob_digest("config", seed)},
        "layers": [{"mediaType": DOCKER_LAYER, "size": layer_size, "digest": _blob_digest("layer", seed)}],
    })


def oci_image_manifest(size: int = 0, seed: Optional[str] = None, platform: Optional[str] = None) -> str:
    """A unique OCI image manifest (config + one layer)."""
    seed = _unique_seed(seed)
    layer_size = max(size - 1500, 1) if size else 1024 * 1024
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": 1500, "digest": _blob_digest(f"config-{platform}", seed)},
        "layers": [{"mediaType": OCI_LAYER, "size": layer_size, "digest": _blob_digest(f"layer-{platform}", seed)}],
    }
    return _dump(manifest)


def attestation_manifest(seed: Optional[str] = None) -> str:
    """A buildx attestation manifest (SLSA provenance as an in-toto layer).
    buildx links it to its platform manifest only through the index entry's
    annotations, not with a ``subject``."""
    seed = _unique_seed(seed)
    return _dump({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": 167, "digest": _blob_digest("att-config", seed)},
        "layers": [{
            "mediaType": IN_TOTO,
            "size": 1234,
            "digest": _blob_digest("att-provenance", seed),
            "annotations": {"in-toto.io/predicate-type": "https://slsa.dev/provenance/v0.2"},
        }],
    })


def referrer_manifest(subject_digest: str, subject_media_type: str, subject_size: int,
                      artifact_type: str, seed: Optional[str] = None) -> str:
    """An OCI 1.1 referrer: empty config, ``artifactType`` and ``subject``."""
    seed = _unique_seed(seed)
    layer_type = {
        COSIGN_SIGNATURE_ARTIFACT: COSIGN_SIMPLESIGNING,
    }.get(artifact_type, artifact_type)
    return _dump({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": OCI_EMPTY, "size": 2, "digest": OCI_EMPTY_DIGEST, "data": "e30="},
        "layers": [{"mediaType": layer_type, "size": 512, "digest": _blob_digest("referrer", seed)}],
        "subject": {"mediaType": subject_media_type, "digest": subject_digest, "size": subject_size},
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z", "dev.emulator.seed": seed},
    })


COSIGN_LEGACY_LAYERS = {"sig": COSIGN_SIMPLESIGNING, "att": DSSE_ENVELOPE, "sbom": SPDX_JSON}


def cosign_legacy_manifest(subject_digest: str, kind: str, seed: Optional[str] = None) -> str:
    """What cosign pushes under the tag ``sha256-<hex>.<kind>`` (no ``subject``)."""
    if kind not in COSIGN_LEGACY_LAYERS:
        raise ValueError(f"kind must be one of {sorted(COSIGN_LEGACY_LAYERS)}, not {kind!r}")
    seed = _unique_seed(seed)
    return _dump({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "size": 233, "digest": _blob_digest("cosign-config", seed)},
        "layers": [{
            "mediaType": COSIGN_LEGACY_LAYERS[kind],
            "size": 256,
            "digest": _blob_digest(f"cosign-{kind}", seed),
            "annotations": {"dev.sigstore.cosign/signed-for": subject_digest},
        }],
    })


def cosign_legacy_tag(subject_digest: str, kind: str) -> str:
    algorithm, hex_digest = subject_digest.split(":", 1)
    return f"{algorithm}-{hex_digest}.{kind}"


def platform_descriptor(platform: str) -> dict[str, str]:
    parts = platform.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise ValueError(f"platform must look like os/arch[/variant], not {platform!r}")
    out = {"architecture": parts[1], "os": parts[0]}
    if len(parts) == 3:
        out["variant"] = parts[2]
    return out


def index_manifest(media_type: str, entries: list[dict[str, Any]]) -> str:
    """An image index / manifest list over the given descriptors."""
    if media_type not in INDEX_MEDIA_TYPES:
        raise ValueError(f"not an index media type: {media_type}")
    return _dump({"schemaVersion": 2, "mediaType": media_type, "manifests": entries})


@dataclass
class IndexImage:
    """What ``Emulator.push_index`` pushed."""

    digest: str
    platforms: dict[str, str] = field(default_factory=dict)  # platform -> digest
    attestations: list[str] = field(default_factory=list)
    children: list[str] = field(default_factory=list)  # every digest the index lists
