"""ECS and Lambda for the emulator: where a janitor finds images in use.

moto serves ECS and Lambda on the same port as ECR. This module patches the
places where moto 5.2.5 differs from AWS in what a janitor reads, and gives
the Emulator seeding and reading helpers for them (``ComputeMixin``).

ECS patches:

* RunTask and CreateService with an awsvpc network configuration without
  ``securityGroups`` work (AWS uses the VPC's default group; moto raised
  KeyError, HTTP 500). The subnet must exist, as in AWS: the helpers use
  one of the region's default VPC (``default_subnet()``).
* A task gets one container per container definition (moto made one, from
  the first definition only), each with the task's ARN as ``taskArn``, a
  ``containerArn`` of the form ``container/<cluster>/<task id>/<uuid>``,
  ``lastStatus`` RUNNING, and ``imageDigest`` resolved through the ECR
  backend when the image is in this account's registry
  (``<account>.dkr.ecr.<region>.amazonaws.com/<repo>[:<tag>][@sha256:...]``),
  at task start: moving the tag later does not change a running task's
  digest. Images elsewhere (Docker Hub, another account) get no digest.
* ListClusters, ListServices, ListTasks and ListTaskDefinitions paginate
  (``maxResults`` 1..100; default 10 for ListServices, 100 for the others;
  opaque ``nextToken``); moto returned everything in one page.
  ListTaskDefinitions honours ``sort`` (ASC by family and revision, or DESC).
* ListTasks lists only RUNNING tasks unless ``desiredStatus`` says
  otherwise, and matches the cluster exactly (moto listed STOPPED tasks too
  and matched cluster names as substrings).
* DescribeServices takes at most 10 services, DescribeTasks at most 100 tasks.

Lambda patches:

* ``Code.ImageUri`` is resolved to a digest through the ECR backend when the
  function is created and whenever its code is updated, as Lambda does;
  ``GetFunction`` answers ``Code.ResolvedImageUri`` =
  ``<registry>/<repo>@sha256:<digest>`` (moto made up
  ``<uri before the first ':'>@sha256:<hash of the uri>``) and
  ``CodeSha256`` = the digest's hex. A URI whose image does not exist, that
  is not an ECR URI, or whose registry is in another region is refused with
  InvalidParameterValueException, like Lambda.
* Each published version keeps the image URI and digest it was published
  with (moto's versions shared one code dict with $LATEST, so updating the
  code rewrote every version's ImageUri).
* ListFunctions, ListVersionsByFunction and ListAliases paginate
  (``MaxItems`` 1..10000, at most 50 per page, ``NextMarker``/``Marker``);
  moto returned everything at once.
* CreateAlias / UpdateAlias refuse ``RoutingConfig.AdditionalVersionWeights``
  naming a version that does not exist.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any, Optional

_ECR_URI = re.compile(
    r"^(?P<account>\d{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repo>[a-z0-9][a-z0-9._/-]*?)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)

LAMBDA_ROLE_NAME = "ecr-emulator-lambda-role"
LAMBDA_PAGE_CAP = 50
LAMBDA_MAX_ITEMS = 10000
ECS_MAX_RESULTS = 100
ECS_DESCRIBE_SERVICES_MAX = 10
ECS_DESCRIBE_TASKS_MAX = 100


@dataclass(frozen=True)
class ResolvedImage:
    account: str
    region: str
    repository: str
    digest: str
    size: Optional[int]

    @property
    def uri(self) -> str:
        return f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/{self.repository}@{self.digest}"


def parse_ecr_uri(uri: str) -> Optional[dict[str, Optional[str]]]:
    match = _ECR_URI.match(uri or "")
    return match.groupdict() if match else None


def resolve_image(uri: str, account: str) -> Optional[ResolvedImage]:
    """The image ``uri`` names in ``account``'s registry, looked up in the
    ECR backend of the URI's region; None when not there."""
    from moto.ecr.models import ecr_backends

    parts = parse_ecr_uri(uri)
    if parts is None or parts["account"] != account:
        return None
    try:
        backend = ecr_backends[account][parts["region"]]
    except KeyError:
        return None
    repository = backend.repositories.get(parts["repo"])
    if repository is None:
        return None
    digest, tag = parts["digest"], parts["tag"]
    if digest is None and tag is None:
        tag = "latest"
    for image in repository.images:
        if digest is not None:
            if image.get_image_digest() == digest:
                break
        elif tag in image.image_tags:
            break
    else:
        return None
    return ResolvedImage(account, str(parts["region"]), str(parts["repo"]), image.get_image_digest(),
                         image.get_image_size_in_bytes())


# --------------------------------------------------------------------------
# Patches
# --------------------------------------------------------------------------

def apply_compute_patches(paginate: Any) -> None:
    """Patch moto's ECS and Lambda (called once, from ecr_emulator.apply_patches)."""
    _patch_ecs(paginate)
    _patch_lambda(paginate)


def _patch_ecs(paginate: Any) -> None:
    from moto.core.responses import ActionResult
    from moto.ecs import models as ecs_models
    from moto.ecs import responses as ecs_responses
    from moto.ecs.exceptions import InvalidParameterException

    Task = ecs_models.Task
    Container = ecs_models.Container
    ECSResponse = ecs_responses.EC2ContainerServiceResponse

    original_task_init = Task.__init__

    def task_init(self: Any, cluster: Any, task_definition: Any, *args: Any, **kwargs: Any) -> None:
        network = kwargs.get("networking_configuration")
        if network and "awsvpcConfiguration" in network:
            # AWS uses the VPC's default security group when none is given; moto needs the key.
            vpc = {"securityGroups": [], **network["awsvpcConfiguration"]}
            kwargs["networking_configuration"] = {**network, "awsvpcConfiguration": vpc}
        original_task_init(self, cluster, task_definition, *args, **kwargs)
        containers = []
        for definition in task_definition.container_definitions or [{}]:
            container = Container(task_definition)
            container.task_arn = self.task_arn
            container.container_arn = (f"arn:aws:ecs:{self.region_name}:{self._account_id}:container/"
                                       f"{self.cluster_name}/{self.id}/{uuid.uuid4()}")
            container.name = definition.get("name")
            container.image = definition.get("image")
            container.cpu = definition.get("cpu", 0)
            container.memory = definition.get("memory")
            container.environment = definition.get("environment")
            container.command = definition.get("command")
            container.last_status = "RUNNING"
            # Resolved once, when the task starts: a tag moved later does not
            # change what a running task runs.
            resolved = resolve_image(container.image or "", self._account_id)
            container.image_digest = resolved.digest if resolved else None
            containers.append(container)
        self.containers = containers

    Task.__init__ = task_init

    original_validate_network = ecs_models.Service._validate_network

    def validate_network(self: Any, nc: dict[str, Any]) -> dict[str, Any]:
        if "awsvpcConfiguration" in nc:
            nc = {**nc, "awsvpcConfiguration": {"securityGroups": [], **nc["awsvpcConfiguration"]}}
        return original_validate_network(self, nc)

    ecs_models.Service._validate_network = validate_network

    def ecs_error(message: str) -> Exception:
        return InvalidParameterException(message)

    def ecs_page(self: Any, items: list[str], scope: str, default: int = 100,
                 key: Any = None, reverse: bool = False) -> tuple[list[str], Optional[str]]:
        return paginate(items, key or _stable_key, self._get_param("maxResults"), self._get_param("nextToken"),
                        f"ecs:{self.region}:{scope}", default=default, maximum=ECS_MAX_RESULTS,
                        error=ecs_error, reverse=reverse)

    def result(key: str, page: list[str], token: Optional[str]) -> ActionResult:
        out: dict[str, Any] = {key: page}
        if token:
            out["nextToken"] = token
        return ActionResult(out)

    def list_clusters(self: Any) -> ActionResult:
        arns = self.ecs_backend.list_clusters()
        return result("clusterArns", *ecs_page(self, list(arns), "clusters"))

    def list_services(self: Any) -> ActionResult:
        cluster_str = self._get_param("cluster", "default")
        arns = self.ecs_backend.list_services(cluster_str, self._get_param("schedulingStrategy"),
                                              launch_type=self._get_param("launchType"))
        return result("serviceArns", *ecs_page(self, list(arns), f"services:{cluster_str}", default=10))

    def list_tasks(self: Any) -> ActionResult:
        cluster_str = self._get_param("cluster", "default")
        desired = self._get_param("desiredStatus") or "RUNNING"
        cluster = self.ecs_backend._get_cluster(cluster_str)
        tasks = self.ecs_backend.list_tasks(
            cluster_str, self._get_param("containerInstance"), self._get_param("family"),
            self._get_param("startedBy"), self._get_param("serviceName"), desired,
        )
        launch_type = self._get_param("launchType")
        arns = [t.task_arn for t in tasks if t.cluster_arn == cluster.arn
                and (not launch_type or t.launch_type == launch_type)]
        return result("taskArns", *ecs_page(self, arns, f"tasks:{cluster.arn}:{desired}"))

    def list_task_definitions(self: Any) -> ActionResult:
        family_prefix = self._get_param("familyPrefix")
        status = self._get_param("status", "ACTIVE")
        order = self._get_param("sort") or "ASC"
        if order not in ("ASC", "DESC"):
            raise InvalidParameterException("sort must be ASC or DESC")
        arns = self.ecs_backend.list_task_definitions(family_prefix, status)
        return result("taskDefinitionArns", *ecs_page(
            self, list(arns), f"taskdefs:{family_prefix}:{status}:{order}",
            key=_task_definition_key, reverse=order == "DESC"))

    ECSResponse.list_clusters = list_clusters
    ECSResponse.list_services = list_services
    ECSResponse.list_tasks = list_tasks
    ECSResponse.list_task_definitions = list_task_definitions

    original_describe_services = ECSResponse.describe_services
    original_describe_tasks = ECSResponse.describe_tasks

    def describe_services(self: Any) -> ActionResult:
        if len(self._get_param("services", []) or []) > ECS_DESCRIBE_SERVICES_MAX:
            raise InvalidParameterException(
                f"services can have at most {ECS_DESCRIBE_SERVICES_MAX} items.")
        return original_describe_services(self)

    def describe_tasks(self: Any) -> ActionResult:
        if len(self._get_param("tasks", []) or []) > ECS_DESCRIBE_TASKS_MAX:
            raise InvalidParameterException(f"tasks can have at most {ECS_DESCRIBE_TASKS_MAX} items.")
        return original_describe_tasks(self)

    ECSResponse.describe_services = describe_services
    ECSResponse.describe_tasks = describe_tasks


def _stable_key(arn: str) -> str:
    # Stable but not sorted by name or creation: callers must not rely on order.
    import hashlib

    return hashlib.sha256(arn.encode()).hexdigest() + arn


def _task_definition_key(arn: str) -> str:
    family, _, revision = arn.rsplit("/", 1)[-1].rpartition(":")
    return f"{family}\0{int(revision):010d}"


def _patch_lambda(paginate: Any) -> None:
    import copy

    from moto.awslambda import models as lambda_models
    from moto.awslambda import responses as lambda_responses
    from moto.awslambda.exceptions import InvalidParameterValueException

    LambdaFunction = lambda_models.LambdaFunction
    LambdaStorage = lambda_models.LambdaStorage
    LambdaResponse = lambda_responses.LambdaResponse

    original_set_code = LambdaFunction._set_function_code

    def set_function_code(self: Any, updated_spec: dict[str, Any]) -> None:
        from_update = updated_spec is not self.code
        if "ImageUri" not in updated_spec or (from_update and updated_spec.get("DryRun")):
            return original_set_code(self, updated_spec)
        uri = updated_spec["ImageUri"]
        parts = parse_ecr_uri(uri)
        if parts is None:
            raise InvalidParameterValueException(
                f"Source image {uri} is not valid. Provide a valid source image.")
        if parts["region"] != self.region:
            raise InvalidParameterValueException(
                f"Source image {uri} must be in the same region as the function ({self.region}).")
        resolved = resolve_image(uri, str(parts["account"]))
        if resolved is None:
            raise InvalidParameterValueException(
                f"Source image {uri} does not exist. Provide a valid source image.")
        self.code_sha_256 = resolved.digest.split(":", 1)[1]
        self.code_size = resolved.size or 0
        self.emu_resolved_image_uri = resolved.uri
        if from_update:
            # A new dict: published versions keep the one they were published with.
            self.code = {**self.code, "ImageUri": uri}

    LambdaFunction._set_function_code = set_function_code

    original_get_code = LambdaFunction.get_code

    def get_code(self: Any) -> dict[str, Any]:
        response = original_get_code(self)
        resolved = getattr(self, "emu_resolved_image_uri", None)
        if "ImageUri" in self.code and resolved:
            response["Code"]["ResolvedImageUri"] = resolved
        return response

    LambdaFunction.get_code = get_code

    original_publish = LambdaStorage.publish_version

    def publish_version(self: Any, name_or_arn: str, description: str = "") -> Any:
        published = original_publish(self, name_or_arn, description)
        if published is not None:
            published.code = copy.deepcopy(published.code)
        return published

    LambdaStorage.publish_version = publish_version

    original_put_alias = LambdaStorage.put_alias
    original_update_alias = LambdaStorage.update_alias

    def check_weights(storage: Any, function_name: str, routing_config: Any) -> None:
        weights = (routing_config or {}).get("AdditionalVersionWeights") or {}
        for version in weights:
            fn = storage.get_function_by_name_or_arn_with_qualifier(function_name)
            if storage._get_version(fn.function_name, str(version)) is None:
                raise InvalidParameterValueException(
                    f"Function version {version} does not exist for {fn.function_name}")

    def put_alias(self: Any, name: str, function_name: str, function_version: str,
                  description: str, routing_config: Any) -> Any:
        check_weights(self, function_name, routing_config)
        return original_put_alias(self, name, function_name, function_version, description, routing_config)

    def update_alias(self: Any, name: str, function_name: str, function_version: str,
                     description: str, routing_config: Any) -> Any:
        check_weights(self, function_name, routing_config)
        return original_update_alias(self, name, function_name, function_version, description,
                                     routing_config)

    LambdaStorage.put_alias = put_alias
    LambdaStorage.update_alias = update_alias

    def lambda_error(message: str) -> Exception:
        return InvalidParameterValueException(message)

    def lambda_page(self: Any, items: list[Any], key: Any, scope: str) -> tuple[list[Any], Optional[str]]:
        return paginate(items, key, self.querystring.get("MaxItems", [None])[0],
                        self.querystring.get("Marker", [None])[0], f"lambda:{self.region}:{scope}",
                        default=LAMBDA_PAGE_CAP, maximum=LAMBDA_MAX_ITEMS, page_cap=LAMBDA_PAGE_CAP,
                        error=lambda_error, param="MaxItems", token_param="Marker")

    def list_functions(self: Any) -> str:
        version = self.querystring.get("FunctionVersion", [None])[0]
        configs = [fn.get_configuration() for fn in self.backend.list_functions(version)]
        page, marker = lambda_page(self, configs, lambda c: f"{c['FunctionName']}\0{_version_key(c['Version'])}",
                                   f"functions:{version}")
        out: dict[str, Any] = {"Functions": page}
        if marker:
            out["NextMarker"] = marker
        return json.dumps(out)

    def list_versions_by_function(self: Any) -> str:
        function_name = self.path.split("/")[-2]
        configs = [fn.get_configuration() for fn in self.backend.list_versions_by_function(function_name)]
        page, marker = lambda_page(self, configs, lambda c: _version_key(c["Version"]),
                                   f"versions:{function_name}")
        out: dict[str, Any] = {"Versions": page}
        if marker:
            out["NextMarker"] = marker
        return json.dumps(out)

    def list_aliases(self: Any) -> Any:
        function_name = self.path.split("/")[-2]
        version = self.querystring.get("FunctionVersion", [None])[0]
        aliases = [a.to_json() for a in self.backend.list_aliases(function_name)
                   if version is None or a.function_version == version]
        page, marker = lambda_page(self, aliases, lambda a: a["Name"], f"aliases:{function_name}:{version}")
        out: dict[str, Any] = {"Aliases": page}
        if marker:
            out["NextMarker"] = marker
        return 200, {}, json.dumps(out)

    LambdaResponse.list_functions = list_functions
    LambdaResponse.list_versions_by_function = list_versions_by_function
    LambdaResponse.list_aliases = list_aliases


def _version_key(version: str) -> str:
    return "$LATEST" if version == "$LATEST" else f"{int(version):010d}"


# --------------------------------------------------------------------------
# Seeding and reading helpers (mixed into Emulator)
# --------------------------------------------------------------------------

class ComputeMixin:
    """ECS and Lambda helpers. They seed through the API with an uncounted
    client (so requests counts and faults are untouched), in ``region``
    (default us-east-1)."""

    _lambda_roles: set[str]

    _subnets: dict[str, str]

    def _reset_compute(self) -> None:
        self._lambda_roles = set()
        self._subnets = {}

    # -- ECS -----------------------------------------------------------------
    def _ecs(self, region: Optional[str]) -> Any:
        return self.client(counted=False, service="ecs", region=region)  # type: ignore[attr-defined]

    def default_subnet(self, region: Optional[str] = None) -> str:
        """A subnet of the region's default VPC (RunTask needs one that exists)."""
        key = region or "us-east-1"
        if key not in self._subnets:
            ec2 = self.client(counted=False, service="ec2", region=region)  # type: ignore[attr-defined]
            subnets = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
            self._subnets[key] = sorted(s["SubnetId"] for s in subnets)[0]
        return self._subnets[key]

    def ecs_cluster(self, cluster: str, region: Optional[str] = None) -> str:
        """Create the cluster if missing; returns its ARN."""
        return self._ecs(region).create_cluster(clusterName=cluster)["cluster"]["clusterArn"]

    def ecs_task_definition(self, family: str, images: Any, region: Optional[str] = None) -> str:
        """Register a Fargate task definition revision with one container per
        image (a URI or a list of URIs); returns its ARN (family:revision)."""
        images = [images] if isinstance(images, str) else list(images)
        if not images:
            raise ValueError("a task definition needs at least one container image")
        definitions = [{"name": f"c{i}", "image": uri, "essential": i == 0, "memory": 512}
                       for i, uri in enumerate(images)]
        response = self._ecs(region).register_task_definition(
            family=family, containerDefinitions=definitions, requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc", cpu="256", memory="512")
        return response["taskDefinition"]["taskDefinitionArn"]

    def ecs_run_task(self, cluster: str, image_uri: Any, region: Optional[str] = None,
                     family: Optional[str] = None, count: int = 1) -> str:
        """Run a Fargate task of ``image_uri`` (or a list of URIs, one
        container each) in ``cluster`` (created if missing); returns the
        (first) task ARN. Its containers' imageDigest is resolved now."""
        self.ecs_cluster(cluster, region)
        task_definition = self.ecs_task_definition(family or f"{cluster}-task", image_uri, region)
        response = self._ecs(region).run_task(
            cluster=cluster, taskDefinition=task_definition, launchType="FARGATE", count=count,
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.default_subnet(region)],
                                                          "assignPublicIp": "DISABLED"}})
        return response["tasks"][0]["taskArn"]

    def ecs_stop_task(self, cluster: str, task_arn: str, region: Optional[str] = None) -> None:
        self._ecs(region).stop_task(cluster=cluster, task=task_arn, reason="stopped by the test")

    def ecs_service(self, cluster: str, name: str, image_uri: Any, region: Optional[str] = None,
                    desired_count: int = 1) -> str:
        """Register a task definition (family = ``name``) for ``image_uri``
        and create a Fargate service of it in ``cluster`` (created if
        missing); returns the service ARN."""
        self.ecs_cluster(cluster, region)
        task_definition = self.ecs_task_definition(name, image_uri, region)
        response = self._ecs(region).create_service(
            cluster=cluster, serviceName=name, taskDefinition=task_definition, desiredCount=desired_count,
            launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.default_subnet(region)]}})
        return response["service"]["serviceArn"]

    def ecs_task_images(self, cluster: str, region: Optional[str] = None) -> list[tuple[str, Optional[str]]]:
        """(image, imageDigest) of every container of the cluster's running tasks."""
        ecs = self._ecs(region)
        arns = [a for p in ecs.get_paginator("list_tasks").paginate(cluster=cluster) for a in p["taskArns"]]
        out: list[tuple[str, Optional[str]]] = []
        for start in range(0, len(arns), ECS_DESCRIBE_TASKS_MAX):
            for task in ecs.describe_tasks(cluster=cluster, tasks=arns[start:start + 100])["tasks"]:
                out.extend((c["image"], c.get("imageDigest")) for c in task["containers"])
        return out

    # -- Lambda --------------------------------------------------------------
    def _lambda(self, region: Optional[str]) -> Any:
        return self.client(counted=False, service="lambda", region=region)  # type: ignore[attr-defined]

    def lambda_role_arn(self) -> str:
        """An IAM role Lambda can assume (created on first use; IAM is global)."""
        from ecr_emulator import ACCOUNT_ID

        if LAMBDA_ROLE_NAME not in self._lambda_roles:
            iam = self.client(counted=False, service="iam")  # type: ignore[attr-defined]
            policy = {"Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
            try:
                iam.create_role(RoleName=LAMBDA_ROLE_NAME, AssumeRolePolicyDocument=json.dumps(policy))
            except iam.exceptions.EntityAlreadyExistsException:
                pass
            self._lambda_roles.add(LAMBDA_ROLE_NAME)
        return f"arn:aws:iam::{ACCOUNT_ID}:role/{LAMBDA_ROLE_NAME}"

    def lambda_image_function(self, name: str, image_uri: str, publish: bool = False,
                              region: Optional[str] = None) -> str:
        """Create a container-image function (PackageType Image); its image
        is resolved to a digest now. With ``publish``, version 1 is
        published too. Returns the function ARN."""
        response = self._lambda(region).create_function(
            FunctionName=name, Role=self.lambda_role_arn(), PackageType="Image",
            Code={"ImageUri": image_uri}, Publish=publish)
        return re.sub(r":(\d+|\$LATEST)$", "", response["FunctionArn"])

    def lambda_zip_function(self, name: str, region: Optional[str] = None) -> str:
        """Create a .zip function (PackageType Zip), to check it is ignored."""
        import io
        import zipfile

        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("index.py", "def handler(event, context):\n    return event\n")
        response = self._lambda(region).create_function(
            FunctionName=name, Role=self.lambda_role_arn(), Runtime="python3.12", Handler="index.handler",
            Code={"ZipFile": buffer.getvalue()})
        return response["FunctionArn"]

    def lambda_publish_version(self, name: str, region: Optional[str] = None) -> str:
        """Publish $LATEST; returns the version number (a string)."""
        return self._lambda(region).publish_version(FunctionName=name)["Version"]

    def lambda_update_image(self, name: str, image_uri: str, publish: bool = False,
                            region: Optional[str] = None) -> Optional[str]:
        """Point $LATEST at another image (resolved now). With ``publish``,
        publish it and return the new version."""
        response = self._lambda(region).update_function_code(FunctionName=name, ImageUri=image_uri,
                                                             Publish=publish)
        return response["Version"] if publish else None

    def lambda_alias(self, name: str, alias: str, version: str,
                     extra_weights: Optional[dict[str, float]] = None, region: Optional[str] = None) -> str:
        """Create an alias on ``version``; ``extra_weights`` ({version:
        weight}) routes part of the traffic to other versions. Returns the alias ARN."""
        kwargs: dict[str, Any] = dict(FunctionName=name, Name=alias, FunctionVersion=str(version))
        if extra_weights:
            kwargs["RoutingConfig"] = {"AdditionalVersionWeights": {str(k): float(v)
                                                                    for k, v in extra_weights.items()}}
        return self._lambda(region).create_alias(**kwargs)["AliasArn"]

    def lambda_resolved_image(self, name: str, qualifier: Optional[str] = None,
                              region: Optional[str] = None) -> Optional[str]:
        """GetFunction's Code.ResolvedImageUri (uncounted)."""
        kwargs: dict[str, Any] = {"FunctionName": name}
        if qualifier is not None:
            kwargs["Qualifier"] = str(qualifier)
        return self._lambda(region).get_function(**kwargs)["Code"].get("ResolvedImageUri")
