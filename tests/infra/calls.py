"""The AWS calls the pipeline needs, as authorization requests (``policy.Request``):

- ``recorded``: the botocore operations a command made (the SageMaker target's upsert and start, the registry's
  reads, the deploy's CreateModel ...), recorded as they went to the server, each mapped to its IAM action and
  resource; an operation this map does not know fails, so a new call is looked at before it ships.
- ``definition_requests``: what SageMaker Pipelines does with a stored definition as the pipeline's role (create,
  describe and tag each job, model and model package; pass the role), and what each job and model then does as
  its role: read its inputs and model, write its outputs with the key, grant the key to its volumes, pull its image,
  write its logs and metrics, make its network interfaces in the VPC, query Redshift and UNLOAD (as the cluster's
  role). Names SageMaker generates are made up in their real shape (``pipelines-EXECUTION-STEP-SUFFIX``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from tests.infra.policy import Request

EXECUTION_ID = "a1b2c3d4e5f6"
S3_ACTIONS = {"HeadBucket": "ListBucket", "ListObjectsV2": "ListBucket", "ListObjects": "ListBucket",
              "HeadObject": "GetObject", "GetObject": "GetObject", "PutObject": "PutObject",
              "CreateBucket": "CreateBucket", "ListBuckets": "ListAllMyBuckets"}
NEEDS_NO_PERMISSION = {("sts", "GetCallerIdentity")}  # allowed to every principal, whatever its policies


@dataclass(frozen=True)
class Call:
    """A botocore operation as the client made it."""

    service: str  # the client's service name: sagemaker, s3, logs, cloudformation ...
    operation: str
    params: Mapping[str, Any]


@dataclass
class Place:
    """The account and region calls go to, and the key the bucket's objects are encrypted with."""

    account: str
    region: str
    key_arn: str

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


def _s3_object(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _via_s3(place: Place, principal: str, action: str, why: str) -> Request:
    return Request(principal, action, place.key_arn, {"kms:ViaService": f"s3.{place.region}.amazonaws.com"}, why)


def s3_reads(place: Place, principal: str, uri: str, why: str, prefix: bool = True) -> list[Request]:
    """Listing (for a prefix) and reading objects at ``uri``, and the key's Decrypt that S3 asks for."""
    bucket, key = _s3_object(uri)
    found = [Request(principal, "s3:GetObject", f"arn:aws:s3:::{bucket}/{key.rstrip('/')}" +
                     ("/part-00000" if prefix else ""), {"aws:SecureTransport": True}, why),
             _via_s3(place, principal, "kms:Decrypt", why)]
    if prefix:
        found.append(Request(principal, "s3:ListBucket", f"arn:aws:s3:::{bucket}",
                             {"s3:prefix": key, "aws:SecureTransport": True}, why))
    return found


def s3_writes(place: Place, principal: str, uri: str, key_arn: str | None, why: str) -> list[Request]:
    """Writing an object under ``uri`` with SSE-KMS and ``key_arn`` (as SageMaker sends them), and the key's
    GenerateDataKey that S3 asks for."""
    bucket, key = _s3_object(uri)
    context: dict[str, Any] = {"aws:SecureTransport": True}
    if key_arn:
        context.update({"s3:x-amz-server-side-encryption": "aws:kms",
                        "s3:x-amz-server-side-encryption-aws-kms-key-id": key_arn})
    return [Request(principal, "s3:PutObject", f"arn:aws:s3:::{bucket}/{key.rstrip('/')}/output-00000", context, why),
            _via_s3(place, principal, "kms:GenerateDataKey", why)]


def image_pull(place: Place, principal: str, image: str, why: str) -> list[Request]:
    """ECR's login and the three reads of a pull of ``image`` (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG)."""
    match = re.fullmatch(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com/([^:@]+)[:@].+", image)
    assert match, f"{why}: {image!r} is not an ECR image URI"
    repository = f"arn:aws:ecr:{match.group(2)}:{match.group(1)}:repository/{match.group(3)}"
    return [Request(principal, "ecr:GetAuthorizationToken", "*", {}, why),
            *(Request(principal, f"ecr:{action}", repository, {}, why)
              for action in ("BatchCheckLayerAvailability", "GetDownloadUrlForLayer", "BatchGetImage"))]


def job_logs(place: Place, principal: str, group: str, stream: str, namespace: str | None, why: str) -> list[Request]:
    """Writing a job's (or endpoint's) log stream, its log group created if missing, and its metrics."""
    group_arn = place.arn("logs", f"log-group:{group}")
    found = [Request(principal, "logs:CreateLogGroup", f"{group_arn}:*", {}, why),
             Request(principal, "logs:DescribeLogStreams", f"{group_arn}:*", {}, why),
             Request(principal, "logs:CreateLogStream", f"{group_arn}:log-stream:{stream}", {}, why),
             Request(principal, "logs:PutLogEvents", f"{group_arn}:log-stream:{stream}", {}, why)]
    if namespace:
        found.append(Request(principal, "cloudwatch:PutMetricData", "*", {"cloudwatch:namespace": namespace}, why))
    return found


def volume_key(place: Place, principal: str, key_arn: str, why: str) -> list[Request]:
    """What encrypting an instance's volume with ``key_arn`` asks of the role: a grant for the volume."""
    return [Request(principal, "kms:CreateGrant", key_arn, {"kms:GrantIsForAWSResource": True}, why),
            Request(principal, "kms:DescribeKey", key_arn, {}, why)]


def network(place: Place, principal: str, vpc: Mapping[str, Any], why: str) -> list[Request]:
    """The network interfaces a job or model makes (and removes) in its VPC, and the reads SageMaker does first."""
    eni = place.arn("ec2", "network-interface/eni-0123456789abcdef0")
    where = [place.arn("ec2", f"subnet/{s}") for s in vpc["Subnets"]] + [
        place.arn("ec2", f"security-group/{g}") for g in vpc["SecurityGroupIds"]]
    found = [Request(principal, f"ec2:{action}", "*", {}, why) for action in (
        "DescribeNetworkInterfaces", "DescribeVpcs", "DescribeDhcpOptions", "DescribeSubnets",
        "DescribeSecurityGroups")]
    found += [Request(principal, "ec2:CreateNetworkInterface", resource, {}, why) for resource in [eni, *where]]
    found += [Request(principal, f"ec2:{action}", eni, {}, why) for action in (
        "CreateNetworkInterfacePermission", "DeleteNetworkInterface", "DeleteNetworkInterfacePermission")]
    return found


class Expressions:
    """The values a definition's expressions take in one made-up execution."""

    def __init__(self, definition: Mapping[str, Any], job_names: Mapping[str, str]):
        self.parameters = {p["Name"]: p.get("DefaultValue") for p in definition.get("Parameters", [])}
        self.steps = {step["Name"]: step for step in walk(definition.get("Steps", []))}
        self.job_names = job_names

    def value(self, expression: Any) -> Any:
        if isinstance(expression, dict) and "Std:Join" in expression:
            join = expression["Std:Join"]
            return join["On"].join(str(self.value(v)) for v in join["Values"])
        if not (isinstance(expression, dict) and "Get" in expression):
            return expression
        path = expression["Get"]
        if path == "Execution.PipelineExecutionId":
            return EXECUTION_ID
        if path.startswith("Parameters."):
            return self.parameters[path.split(".", 1)[1]]
        step, _, rest = path.removeprefix("Steps.").partition(".")
        arguments = self.steps[step]["Arguments"]
        output = re.fullmatch(r"ProcessingOutputConfig\.Outputs\['(\w+)'\]\.S3Output\.S3Uri", rest)
        if output:
            [found] = [o for o in arguments["ProcessingOutputConfig"]["Outputs"] if o["OutputName"] == output[1]]
            return self.value(found["S3Output"]["S3Uri"])
        if rest == "ModelArtifacts.S3ModelArtifacts":
            return f"{self.value(arguments['OutputDataConfig']['S3OutputPath'])}/{self.job_names[step]}/output/model.tar.gz"
        if rest == "ModelName":
            return self.job_names[step]
        raise AssertionError(f"the walk does not know the property {path}: teach tests/infra/calls.py")


def walk(steps: list[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    """Every step, those inside a Condition step's branches too."""
    for step in steps:
        yield step
        for branch in ("IfSteps", "ElseSteps"):
            yield from walk(step.get("Arguments", {}).get(branch, []))


LOGS = {"Processing": ("/aws/sagemaker/ProcessingJobs", "processing-job"),
        "Training": ("/aws/sagemaker/TrainingJobs", "training-job"),
        "Transform": ("/aws/sagemaker/TransformJobs", "transform-job")}


def definition_requests(definition: Mapping[str, Any], pipeline_role: str, place: Place,
                        package: Mapping[str, Any]) -> list[Request]:
    """What running ``definition`` asks of the account. ``package``: the registered model version a Model step
    given a ModelPackageName serves (its Image and ModelDataUrl)."""
    steps = list(walk(definition["Steps"]))
    names = {s["Name"]: f"pipelines-{EXECUTION_ID}-{s['Name']}-x1y2z3" for s in steps}
    values = Expressions(definition, names)
    found: list[Request] = []
    models: dict[str, tuple[str, str, str]] = {}  # Model step -> (role, image, model data)
    for step in steps:
        kind, arguments, why = step["Type"], step.get("Arguments", {}), f"step {step['Name']} ({step['Type']})"
        name = names[step["Name"]].lower()  # SageMaker writes the names it makes in lower case into ARNs
        if kind in LOGS:
            found += [Request(pipeline_role, f"sagemaker:{verb}{kind}Job", place.arn("sagemaker", f"{LOGS[kind][1]}/{name}"),
                              {}, why) for verb in ("Create", "Describe", "Stop")]
            found.append(Request(pipeline_role, "sagemaker:AddTags", place.arn("sagemaker", f"{LOGS[kind][1]}/{name}"),
                                 {}, why))
        if kind in ("Processing", "Training"):
            found += _job(place, arguments, kind, names[step["Name"]], values, why)
        elif kind == "Model":
            role = arguments["ExecutionRoleArn"]
            found += [Request(pipeline_role, f"sagemaker:{verb}", place.arn("sagemaker", f"model/{name}"), {}, why)
                      for verb in ("CreateModel", "AddTags")]
            found.append(_pass(pipeline_role, role, why))
            container = arguments["PrimaryContainer"]
            if "ModelPackageName" in container:
                found.append(Request(pipeline_role, "sagemaker:DescribeModelPackage", package["ModelPackageArn"], {}, why))
                image, data = package["Image"], package["ModelDataUrl"]
            else:
                image, data = container["Image"], values.value(container["ModelDataUrl"])
            models[step["Name"]] = (role, image, data)
            if arguments.get("VpcConfig"):
                found += network(place, role, arguments["VpcConfig"], why)
        elif kind == "RegisterModel":
            group = arguments["ModelPackageGroupName"]
            found += [Request(pipeline_role, f"sagemaker:{verb}", place.arn("sagemaker", f"model-package-group/{group}"),
                              {}, why) for verb in ("CreateModelPackageGroup", "DescribeModelPackageGroup")]
            found += [Request(pipeline_role, f"sagemaker:{verb}", place.arn("sagemaker", f"model-package/{group}/1"),
                              {}, why) for verb in ("CreateModelPackage", "AddTags")]
        elif kind == "Transform":
            model_step = arguments["ModelName"]["Get"].split(".")[1]
            role, image, data = models[model_step]
            found += _transform(place, role, image, data, arguments, names[step["Name"]], values, why)
        elif kind == "Condition":
            for file in _property_files(arguments, values):
                found += s3_reads(place, pipeline_role, file, f"{why}: its property file", prefix=False)
    return found


def _pass(caller: str, role: str, why: str) -> Request:
    return Request(caller, "iam:PassRole", role, {"iam:PassedToService": "sagemaker.amazonaws.com"}, why)


def _job(place: Place, arguments: Mapping[str, Any], kind: str, job_name: str, values: Expressions,
         why: str) -> list[Request]:
    role = arguments["RoleArn"]
    found = [_pass(role, role, why)]
    if kind == "Processing":
        image = arguments["AppSpecification"]["ImageUri"]
        volume = arguments["ProcessingResources"]["ClusterConfig"].get("VolumeKmsKeyId")
        output_key = arguments.get("ProcessingOutputConfig", {}).get("KmsKeyId")
        vpc = arguments.get("NetworkConfig", {}).get("VpcConfig")
        for item in arguments.get("ProcessingInputs", []):
            if "S3Input" in item:
                found += s3_reads(place, role, values.value(item["S3Input"]["S3Uri"]), why)
            else:
                found += _redshift(place, role, item["DatasetDefinition"]["RedshiftDatasetDefinition"], why)
        outputs = [values.value(o["S3Output"]["S3Uri"]) for o in arguments.get("ProcessingOutputConfig", {}).get(
            "Outputs", [])]
    else:
        image = arguments["AlgorithmSpecification"]["TrainingImage"]
        volume = arguments["ResourceConfig"].get("VolumeKmsKeyId")
        output_key = arguments["OutputDataConfig"].get("KmsKeyId")
        vpc = arguments.get("VpcConfig")
        for channel in arguments.get("InputDataConfig", []):
            found += s3_reads(place, role, values.value(channel["DataSource"]["S3DataSource"]["S3Uri"]), why)
        outputs = [f"{values.value(arguments['OutputDataConfig']['S3OutputPath'])}/{job_name}/output"]
    for uri in outputs:
        found += s3_writes(place, role, uri, output_key, why)
    if volume:
        found += volume_key(place, role, volume, why)
    if vpc:
        found += network(place, role, vpc, why)
    group = LOGS[kind][0]
    found += image_pull(place, role, image, why)
    found += job_logs(place, role, group, f"{job_name}/algo-1-1700000000", group, why)
    return found


def _redshift(place: Place, role: str, dataset: Mapping[str, Any], why: str) -> list[Request]:
    """The query run as DbUser with the pipeline's role, the UNLOAD written with the cluster's role, then read."""
    cluster, database, user = dataset["ClusterId"], dataset["Database"], dataset["DbUser"]
    found = [Request(role, "redshift:GetClusterCredentials", place.arn("redshift", f"dbuser:{cluster}/{user}"), {}, why),
             Request(role, "redshift:GetClusterCredentials", place.arn("redshift", f"dbname:{cluster}/{database}"), {},
                     why)]
    unload = f"{why}: Redshift UNLOAD"
    found += s3_writes(place, dataset["ClusterRoleArn"], dataset["OutputS3Uri"], dataset.get("KmsKeyId"), unload)
    bucket, key = _s3_object(dataset["OutputS3Uri"])
    found.append(Request(dataset["ClusterRoleArn"], "s3:ListBucket", f"arn:aws:s3:::{bucket}",
                         {"s3:prefix": key, "aws:SecureTransport": True}, unload))
    found += s3_reads(place, role, dataset["OutputS3Uri"], f"{why}: the query's result")
    return found


def _transform(place: Place, role: str, image: str, data: str, arguments: Mapping[str, Any], job_name: str,
               values: Expressions, why: str) -> list[Request]:
    found = s3_reads(place, role, values.value(arguments["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]), why)
    found += s3_reads(place, role, data, f"{why}: the model", prefix=False)
    found += s3_writes(place, role, values.value(arguments["TransformOutput"]["S3OutputPath"]),
                       arguments["TransformOutput"].get("KmsKeyId"), why)
    if arguments["TransformResources"].get("VolumeKmsKeyId"):
        found += volume_key(place, role, arguments["TransformResources"]["VolumeKmsKeyId"], why)
    found += image_pull(place, role, image, why)
    found += job_logs(place, role, LOGS["Transform"][0], f"{job_name}/i-0123456789abcdef0", "/aws/sagemaker/TransformJobs", why)
    return found


def _property_files(arguments: Any, values: Expressions) -> list[str]:
    """The S3 URIs of the property files a Condition step's expressions read (Std:JsonGet)."""
    found: list[str] = []
    if isinstance(arguments, dict):
        if "Std:JsonGet" in arguments:
            step_name = arguments["Std:JsonGet"]["PropertyFile"]["Get"].split(".")[1]
            step = values.steps[step_name]
            for declared in step.get("PropertyFiles", []):
                [output] = [o for o in step["Arguments"]["ProcessingOutputConfig"]["Outputs"]
                            if o["OutputName"] == declared["OutputName"]]
                found.append(f"{values.value(output['S3Output']['S3Uri'])}/{declared['FilePath']}")
        for item in arguments.values():
            found += _property_files(item, values)
    elif isinstance(arguments, list):
        for item in arguments:
            found += _property_files(item, values)
    return found


def recorded_requests(calls: list[Call], principal: str, place: Place, stack_arns: Mapping[str, str]
                      ) -> list[Request]:
    """Each recorded call as the requests IAM sees. ``stack_arns``: stack name -> its stack id (ARN)."""
    found: list[Request] = []
    for call in calls:
        if (call.service, call.operation) in NEEDS_NO_PERMISSION:
            continue
        mapper = MAPPERS.get(call.service)
        assert mapper is not None, f"no map for {call.service}:{call.operation}: teach tests/infra/calls.py"
        found += mapper(call, principal, place, stack_arns)
    return found


def _sagemaker(call: Call, principal: str, place: Place, stack_arns: Mapping[str, str]) -> list[Request]:
    params, op, why = call.params, call.operation, f"sagemaker:{call.operation}"
    arn = lambda resource: place.arn("sagemaker", resource.lower())  # noqa: E731
    by_name = {"PipelineName": "pipeline/{}", "ProcessingJobName": "processing-job/{}",
               "TrainingJobName": "training-job/{}", "TransformJobName": "transform-job/{}", "ModelName": "model/{}",
               "EndpointName": "endpoint/{}", "EndpointConfigName": "endpoint-config/{}"}
    if op in ("ListModelPackageGroups", "ListModelPackages", "ListEndpoints"):
        resource = "*"
    elif "PipelineExecutionArn" in params:
        resource = params["PipelineExecutionArn"]
    elif op in ("AddTags",):
        resource = params["ResourceArn"]
    elif op in ("DescribeModelPackage",):
        resource = params["ModelPackageName"]
    elif op in ("UpdateModelPackage",):
        resource = params["ModelPackageArn"]
    elif op == "CreateEndpoint" or op == "UpdateEndpoint":
        resource = arn(f"endpoint/{params['EndpointName']}")
    else:
        key = next((k for k in by_name if k in params), None)
        assert key is not None, f"no resource known for sagemaker:{op}: teach tests/infra/calls.py"
        resource = arn(by_name[key].format(params[key]))
    found = [Request(principal, f"sagemaker:{op}", resource, {}, why)]
    for role_key in ("RoleArn", "ExecutionRoleArn"):
        if role_key in params:
            found.append(_pass(principal, params[role_key], why))
    if params.get("Tags") and op.startswith("Create"):
        found.append(Request(principal, "sagemaker:AddTags", resource, {}, why))
    if op == "CreateEndpointConfig" and params.get("KmsKeyId"):
        found += volume_key(place, principal, params["KmsKeyId"], why)
    return found


def _s3(call: Call, principal: str, place: Place, stack_arns: Mapping[str, str]) -> list[Request]:
    params, why = call.params, f"s3:{call.operation}"
    action = S3_ACTIONS.get(call.operation)
    assert action is not None, f"no map for s3:{call.operation}: teach tests/infra/calls.py"
    if call.operation == "ListBuckets":
        return [Request(principal, "s3:ListAllMyBuckets", "*", {}, why)]
    bucket = f"arn:aws:s3:::{params['Bucket']}"
    context: dict[str, Any] = {"aws:SecureTransport": True}
    if "Key" not in params:
        if "Prefix" in params:
            context["s3:prefix"] = params["Prefix"]
        return [Request(principal, f"s3:{action}", bucket, context, why)]
    found = []
    if call.operation == "PutObject":
        if params.get("ServerSideEncryption"):
            context["s3:x-amz-server-side-encryption"] = params["ServerSideEncryption"]
        if params.get("SSEKMSKeyId"):
            context["s3:x-amz-server-side-encryption-aws-kms-key-id"] = params["SSEKMSKeyId"]
        found.append(_via_s3(place, principal, "kms:GenerateDataKey", why))
    else:
        found.append(_via_s3(place, principal, "kms:Decrypt", why))
    return [Request(principal, f"s3:{action}", f"{bucket}/{params['Key']}", context, why), *found]


def _logs(call: Call, principal: str, place: Place, stack_arns: Mapping[str, str]) -> list[Request]:
    group = place.arn("logs", f"log-group:{call.params['logGroupName']}")
    resource = f"{group}:log-stream:{call.params['logStreamName']}" if "logStreamName" in call.params else f"{group}:*"
    return [Request(principal, f"logs:{call.operation}", resource, {}, f"logs:{call.operation}")]


def _cloudformation(call: Call, principal: str, place: Place, stack_arns: Mapping[str, str]) -> list[Request]:
    name = call.params["StackName"]
    return [Request(principal, f"cloudformation:{call.operation}", stack_arns.get(name, name), {},
                    f"cloudformation:{call.operation}")]


MAPPERS: dict[str, Callable[[Call, str, Place, Mapping[str, str]], list[Request]]] = {
    "sagemaker": _sagemaker, "s3": _s3, "logs": _logs, "cloudformation": _cloudformation}


def endpoint_requests(calls: list[Call], place: Place, package: Mapping[str, Any]) -> list[Request]:
    """What a deployed endpoint's model does as its role: read the model, pull the image, log, capture data."""
    found: list[Request] = []
    models = {c.params["ModelName"]: c.params for c in calls if c.operation == "CreateModel"}
    for config in (c.params for c in calls if c.operation == "CreateEndpointConfig"):
        for variant in config["ProductionVariants"]:
            model = models[variant["ModelName"]]
            role, why = model["ExecutionRoleArn"], f"endpoint config {config['EndpointConfigName']}"
            found += s3_reads(place, role, package["ModelDataUrl"], f"{why}: the model", prefix=False)
            found += image_pull(place, role, package["Image"], why)
            endpoint = config["EndpointConfigName"].rsplit("-v", 1)[0]
            found += job_logs(place, role, f"/aws/sagemaker/Endpoints/{endpoint}", "AllTraffic/i-0123456789abcdef0",
                              "/aws/sagemaker/Endpoints", why)
            if model.get("VpcConfig"):
                found += network(place, role, model["VpcConfig"], why)
            capture = config.get("DataCaptureConfig")
            if capture:
                found += s3_writes(place, role, capture["DestinationS3Uri"], capture.get("KmsKeyId"), why)
    return found


def values_of(value: Any, keys: tuple[str, ...]) -> Iterator[Any]:
    """Every value under one of ``keys`` anywhere in a definition (not looking inside those values)."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key in keys:
                yield item
            else:
                yield from values_of(item, keys)
    elif isinstance(value, list):
        for item in value:
            yield from values_of(item, keys)
