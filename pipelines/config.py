"""The one typed configuration object, and how it is assembled.

Precedence, lowest to highest: defaults, a config file (TOML or YAML), environment
variables (``PIPELINE_*``), command-line flags. Nothing else in the package reads the
environment for configuration; everything downstream receives a ``PipelineConfig``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, as a package
    import tomli as tomllib

from container.hyperparameters import CALIBRATIONS
from pipelines.credentials import refuse_credentials
from pipelines.errors import ConfigError

ENV_PREFIX = "PIPELINE_"

# Keys the SageMaker project templates pass in --kwargs, mapped onto our field names.
TEMPLATE_KWARG_ALIASES = {
    "role": "role_arn",
    "default_bucket": "bucket",
    "base_job_prefix": "base_prefix",
    "model_package_group_name": "model_package_group",
    "sagemaker_project_name": "project_name",
}

_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::(\d{12}):role/[\w+=,.@/-]{1,512}$")
_KMS_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key|alias)/[\w/-]+$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PIPELINE_NAME = re.compile(r"^[A-Za-z0-9](-*[A-Za-z0-9]){0,255}$")
_MLFLOW_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:mlflow-(tracking-server|app)/[A-Za-z0-9-]+$")
_GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_SUBNET = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
_ISO_DURATION = re.compile(r"^P(?!$)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+S)?)?$")

@dataclass(frozen=True)
class PipelineConfig:
    """Everything needed to build the pipeline definition and run it."""

    region: str = "us-east-1"
    role_arn: str | None = None
    bucket: str | None = None
    base_prefix: str = "lead-scoring"
    kms_key_arn: str | None = None
    subnets: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    pipeline_name: str = "LeadScoringPipeline"
    model_package_group: str = "LeadScoringModels"
    project_name: str | None = None
    tags: tuple[tuple[str, str], ...] = ()
    mlflow_resource_arn: str | None = None  # SageMaker managed MLflow: the tracking server (or app) executions log to
    mlflow_experiment_name: str | None = None  # its experiment (default: the pipeline's name)
    mlflow_tracking_uri: str = "store"  # local runs: where each execution is tracked ("store": in it; "off": not)
    training_mode: str = "builtin"
    training_image: str | None = None
    calibration: str = "isotonic"  # custom mode, our image: isotonic, platt or none, fitted on validation
    monotone_constraints: str | None = None  # custom mode, our image: "(1,0,-1,...)", one per feature
    xgboost_version: str = "1.7-1"
    input_data_url: str | None = None
    data_source: str = "s3"
    redshift_cluster_id: str | None = None
    redshift_database: str | None = None
    redshift_db_user: str | None = None
    redshift_query: str | None = None
    redshift_cluster_role_arn: str | None = None
    redshift_output_s3_uri: str | None = None
    processing_instance_type: str = "ml.m5.xlarge"
    training_instance_type: str = "ml.m5.xlarge"
    inference_instance_type: str = "ml.m5.large"
    transform_instance_type: str = "ml.m5.large"
    max_runtime_seconds: int = 3 * 3600
    input_header: str = "absent"  # PrepareData: "present" when every input file starts with a header line
    bad_rows: str = "fail"  # PrepareData: "fail" at the first bad row, or "skip" bad rows up to the caps
    max_bad_rows: int = 1000
    max_bad_percent: float = 1.0
    allowed_buckets: tuple[str, ...] = ()  # validation: every literal S3 URI must be in one of these (when set)
    scoring_id_columns: int = 1  # batch-scoring pipeline: leading lead-id columns, kept back from the model
    enable_caching: bool = True
    cache_expire_after: str = "P30D"
    source_revision: str = "unknown"
    local_image_programs: tuple[tuple[str, str], ...] = ()  # image URI -> command the local engine runs for it
    local_lambdas: tuple[tuple[str, str], ...] = ()  # Lambda function ARN (or name) -> local MODULE:FUNCTION
    callback_timeout_seconds: int | None = None  # local engine: how long a Callback step waits (None: no limit)
    environments_cache: str | None = None  # local engine: where job environments are built (None: ~/.cache/...)
    image_libraries: str = "image"  # local engine: a framework image's jobs run on its libraries, or "engine": ours
    local_api_deletes: str = "own"  # local SageMaker API: a run's jobs delete only what it created, or "any"
    stack_name: str | None = None  # the secure environment's CloudFormation stack, whose outputs fill STACK_SETTINGS

    def __post_init__(self) -> None:
        _validate(self)

    def replace(self, **changes: Any) -> "PipelineConfig":
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def as_values(self) -> dict[str, Any]:
        """The settings as plain JSON values that ``build_config`` takes back (tables for the mappings; None left to the default)."""
        values = dataclasses.asdict(self)
        return {k: dict(v) if k in _PAIRS else v for k, v in values.items() if v is not None}

    @property
    def uses_vpc(self) -> bool:
        """True when jobs run inside the configured VPC subnets."""
        return bool(self.subnets)

    @property
    def reads_redshift(self) -> bool:
        """True when PrepareData reads its input through a Redshift dataset definition."""
        return self.data_source == "redshift"

    def redshift_output_uri(self) -> str:
        """Where SageMaker writes the query's result before PrepareData reads it."""
        return self.redshift_output_s3_uri or f"{self.s3_prefix()}/redshift-unload/"

    @property
    def role_account(self) -> str | None:
        """The AWS account of ``role_arn`` (validated), if a role is set."""
        return _ROLE_ARN.fullmatch(self.role_arn).group(1) if self.role_arn else None

    def s3_prefix(self) -> str:
        """``s3://bucket/base_prefix`` under which every artifact of the pipeline lives."""
        if not self.bucket:
            raise ConfigError("bucket is not set: pass --bucket or set PIPELINE_BUCKET")
        return f"s3://{self.bucket}/{self.base_prefix}"


FIELD_NAMES = tuple(f.name for f in dataclasses.fields(PipelineConfig))


def _validate(cfg: PipelineConfig) -> None:
    checks: list[tuple[bool, str]] = [
        (bool(_REGION.fullmatch(cfg.region)), f"region {cfg.region!r} is not an AWS region name such as us-east-1"),
        (cfg.role_arn is None or bool(_ROLE_ARN.fullmatch(cfg.role_arn)),
         f"role_arn {cfg.role_arn!r} is not an IAM role ARN (arn:aws:iam::123456789012:role/NAME)"),
        (cfg.bucket is None or bool(_BUCKET.fullmatch(cfg.bucket)), f"bucket {cfg.bucket!r} is not a valid S3 bucket name"),
        (cfg.kms_key_arn is None or bool(_KMS_ARN.fullmatch(cfg.kms_key_arn)),
         f"kms_key_arn {cfg.kms_key_arn!r} is not a KMS key or alias ARN"),
        (bool(_PIPELINE_NAME.fullmatch(cfg.pipeline_name)),
         f"pipeline_name {cfg.pipeline_name!r} may hold only letters, digits and single hyphens"),
        (bool(_GROUP_NAME.fullmatch(cfg.model_package_group)),
         f"model_package_group {cfg.model_package_group!r} may hold only letters, digits and hyphens (63 at most)"),
        (bool(re.fullmatch(r"[\w-]+(/[\w-]+)*", cfg.base_prefix)),
         f"base_prefix {cfg.base_prefix!r} must be a relative S3 key prefix without leading or trailing '/'"),
        (cfg.training_mode in ("builtin", "custom"), f"training_mode {cfg.training_mode!r} must be 'builtin' or 'custom'"),
        (cfg.training_mode != "custom" or bool(cfg.training_image),
         "training_mode 'custom' needs training_image (--training-image ECR_URI)"),
        (cfg.calibration in CALIBRATIONS,
         f"calibration {cfg.calibration!r} must be 'isotonic', 'platt' or 'none'"),
        (cfg.monotone_constraints is None or bool(re.fullmatch(r"\((-1|0|1)(,(-1|0|1))*\)", cfg.monotone_constraints)),
         f"monotone_constraints {cfg.monotone_constraints!r} must look like (1,0,-1): one of -1, 0, 1 per feature"),
        (all(_SUBNET.fullmatch(s) for s in cfg.subnets), f"subnets {list(cfg.subnets)} must look like subnet-0abc1234"),
        (all(_SECURITY_GROUP.fullmatch(s) for s in cfg.security_group_ids),
         f"security_group_ids {list(cfg.security_group_ids)} must look like sg-0abc1234"),
        (bool(cfg.subnets) == bool(cfg.security_group_ids),
         "subnets and security_group_ids go together: give both or neither"),
        (cfg.input_data_url is None or cfg.input_data_url.startswith("s3://"),
         f"input_data_url {cfg.input_data_url!r} must be an s3:// URI"),
        (cfg.data_source in ("s3", "redshift"), f"data_source {cfg.data_source!r} must be 's3' or 'redshift'"),
        (not cfg.reads_redshift or not _missing_redshift_settings(cfg),
         f"data_source 'redshift' needs {', '.join(_missing_redshift_settings(cfg))}"),
        (cfg.redshift_cluster_role_arn is None or bool(_ROLE_ARN.fullmatch(cfg.redshift_cluster_role_arn)),
         f"redshift_cluster_role_arn {cfg.redshift_cluster_role_arn!r} is not an IAM role ARN"),
        (cfg.redshift_output_s3_uri is None or cfg.redshift_output_s3_uri.startswith("s3://"),
         f"redshift_output_s3_uri {cfg.redshift_output_s3_uri!r} must be an s3:// URI"),
        (60 <= cfg.max_runtime_seconds <= 5 * 24 * 3600, "max_runtime_seconds must be between 60 and 432000"),
        (1 <= cfg.scoring_id_columns <= 20, "scoring_id_columns must be between 1 and 20"),
        (cfg.input_header in ("absent", "present"), f"input_header {cfg.input_header!r} must be 'absent' or 'present'"),
        (cfg.bad_rows in ("fail", "skip"), f"bad_rows {cfg.bad_rows!r} must be 'fail' or 'skip'"),
        (cfg.callback_timeout_seconds is None or cfg.callback_timeout_seconds > 0,
         f"callback_timeout_seconds must be at least 1, got {cfg.callback_timeout_seconds}"),
        (cfg.image_libraries in ("image", "engine"),
         f"image_libraries {cfg.image_libraries!r} must be 'image' or 'engine'"),
        (cfg.local_api_deletes in ("own", "any"),
         f"local_api_deletes {cfg.local_api_deletes!r} must be 'own' or 'any'"),
        (cfg.max_bad_rows >= 0, f"max_bad_rows must not be negative (got {cfg.max_bad_rows})"),
        (0 <= cfg.max_bad_percent <= 100, f"max_bad_percent must be between 0 and 100 (got {cfg.max_bad_percent})"),
        (all(_BUCKET.fullmatch(b) for b in cfg.allowed_buckets),
         f"allowed_buckets {list(cfg.allowed_buckets)} must be S3 bucket names"),
        (bool(_ISO_DURATION.fullmatch(cfg.cache_expire_after)),
         f"cache_expire_after {cfg.cache_expire_after!r} is not an ISO 8601 duration such as P30D or PT12H"),
        (all(k and not k.lower().startswith("aws:") for k, _ in cfg.tags), "tag keys must be non-empty and not start with 'aws:'"),
        (cfg.stack_name is None or bool(_STACK_NAME.fullmatch(cfg.stack_name)),
         f"stack_name {cfg.stack_name!r} is not a CloudFormation stack name (a letter, then letters, digits and "
         "hyphens; 128 at most)"),
        (cfg.mlflow_resource_arn is None or bool(_MLFLOW_ARN.fullmatch(cfg.mlflow_resource_arn)),
         f"mlflow_resource_arn {cfg.mlflow_resource_arn!r} is not the ARN of a SageMaker MLflow tracking server "
         "(arn:aws:sagemaker:REGION:ACCOUNT:mlflow-tracking-server/NAME)"),
        (cfg.mlflow_experiment_name is None or 1 <= len(cfg.mlflow_experiment_name) <= 256,
         "mlflow_experiment_name must be 1 to 256 characters"),
        (cfg.mlflow_tracking_uri in ("store", "off")
         or bool(re.fullmatch(r"[a-z][a-z0-9+.-]*://[^@\s]+", cfg.mlflow_tracking_uri)),
         f"mlflow_tracking_uri {cfg.mlflow_tracking_uri!r} must be 'store', 'off' or a tracking URI (http://HOST:PORT, "
         "sqlite:///PATH, ...) with no user or password in it (MLflow reads MLFLOW_TRACKING_USERNAME and "
         "MLFLOW_TRACKING_PASSWORD)"),
    ]
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


LOCAL_BUCKET = "sagemaker-local"
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/LocalRunRoleNotEnforced"


def local_config(config: PipelineConfig) -> PipelineConfig:
    """A local run needs no real bucket or role: fill placeholders (reported as not enforced)."""
    return config.replace(bucket=config.bucket or LOCAL_BUCKET, role_arn=config.role_arn or LOCAL_ROLE_ARN)


def offline_bucket(config: PipelineConfig) -> PipelineConfig:
    """An offline build's configuration: the role is needed; without a bucket, the SDK's default bucket name, its
    account taken from the role."""
    if config.role_account is None:  # the only flag it needs, asked for once whether --bucket is given or not
        raise ConfigError("an offline build (--definition-only, get-pipeline-definition) needs --role-arn (or "
                          "PIPELINE_ROLE_ARN), the role its jobs run as; --bucket is optional (default: the SDK's "
                          f"bucket sagemaker-{config.region}-ACCOUNT of the role's account)")
    if config.bucket:
        return config
    return config.replace(bucket=f"sagemaker-{config.region}-{config.role_account}")


REDSHIFT_REQUIRED = ("redshift_cluster_id", "redshift_database", "redshift_db_user", "redshift_query",
                     "redshift_cluster_role_arn")


def _missing_redshift_settings(cfg: PipelineConfig) -> list[str]:
    return [name for name in REDSHIFT_REQUIRED if not getattr(cfg, name)]


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or YAML config file into a flat mapping of field names."""
    if path.suffix not in (".toml", ".yaml", ".yml"):
        raise ConfigError(f"config file {path} must end in .toml, .yaml or .yml")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    if path.suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    else:
        import yaml

        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark else ""
            raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table of settings")
    return data


def env_values(environ: Mapping[str, str]) -> dict[str, Any]:
    """Settings given as ``PIPELINE_<FIELD>`` environment variables (and the AWS region variables)."""
    values: dict[str, Any] = {}
    for region_var in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        if environ.get(region_var):
            values["region"] = environ[region_var]
    for name in FIELD_NAMES:
        raw = environ.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    return values


def parse_kwargs_json(text: str) -> dict[str, Any]:
    """Parse ``--kwargs`` JSON as the SageMaker project templates pass it."""
    data = _parse_json(text, "--kwargs")
    if not isinstance(data, dict):
        raise ConfigError("--kwargs must be a JSON object")
    return {TEMPLATE_KWARG_ALIASES.get(k, k): v for k, v in data.items()}


def parse_tags_json(text: str) -> list[dict[str, str]]:
    """Parse ``--tags '[{"Key": .., "Value": ..}]'``."""
    data = _parse_json(text, "--tags")
    if not isinstance(data, list) or not all(isinstance(t, dict) and set(t) == {"Key", "Value"} for t in data):
        raise ConfigError('--tags must be a JSON list of {"Key": ..., "Value": ...} objects')
    return data


def _parse_json(text: str, flag: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{flag} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc


_PAIRS = {"local_image_programs": ("image URIs to commands", "IMAGE=COMMAND", "image and command"),
          "local_lambdas": ("Lambda function ARNs to local handlers", "ARN=MODULE:FUNCTION", "ARN and handler")}


def _pairs(key: str, value: Any, source: str) -> tuple[tuple[str, str], ...]:
    """``{name: value}``, a list of ``NAME=VALUE`` strings, or one such string, for the mapping ``key``."""
    what, form, parts = _PAIRS[key]
    if isinstance(value, str):
        value = [value]
    if isinstance(value, Mapping):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) and "=" in v for v in value):
        pairs = [tuple(v.split("=", 1)) for v in value]  # type: ignore[misc]
    else:
        raise ConfigError(f"{source}: '{key}' must map {what} (a table, or {form} strings)")
    if not all(name.strip() and mapped.strip() for name, mapped in pairs):
        raise ConfigError(f"{source}: '{key}' needs a non-empty {parts} in each entry")
    return tuple((name.strip(), mapped.strip()) for name, mapped in pairs)


def build_config(*layers: tuple[str, Mapping[str, Any]]) -> PipelineConfig:
    """Merge ``(source, values)`` layers, later ones winning, into a validated PipelineConfig."""
    merged: dict[str, Any] = {}
    for source, values in layers:
        refuse_credentials(values, source)
        for key, value in values.items():
            if key not in FIELD_NAMES:
                raise ConfigError(f"{source}: unknown setting '{key}'; known settings: {', '.join(FIELD_NAMES)}")
            merged[key] = _coerce(key, value, source)
    return PipelineConfig(**merged)


# The outputs of the secure environment's stack (infra/secure-environment.yaml) and the settings each fills when
# --stack-name (stack_name) is given.
STACK_OUTPUTS: dict[str, tuple[str, ...]] = {
    "PipelineRoleArn": ("role_arn",), "DataBucketName": ("bucket", "allowed_buckets"), "BasePrefix": ("base_prefix",),
    "KmsKeyArn": ("kms_key_arn",), "SubnetIds": ("subnets",), "SecurityGroupId": ("security_group_ids",),
    "PipelineName": ("pipeline_name",), "ModelPackageGroupName": ("model_package_group",),
    "RedshiftUnloadRoleArn": ("redshift_cluster_role_arn",), "RedshiftClusterId": ("redshift_cluster_id",),
    "RedshiftDatabase": ("redshift_database",), "RedshiftDbUser": ("redshift_db_user",),
}
STACK_SETTINGS = tuple(setting for settings in STACK_OUTPUTS.values() for setting in settings)

Layer = tuple[str, Mapping[str, Any]]


def with_stack_outputs(layers: list[Layer], wanted: Collection[str],
                       read_outputs: Callable[[str, str], Mapping[str, str]]) -> tuple[list[Layer], list[str]]:
    """``layers`` with one more, the outputs of the stack a layer names (``stack_name``), read once with
    ``read_outputs(stack_name, region)``, for the ``wanted`` settings. It goes just below the layer that named the
    stack: what that layer and any later one give (a flag beside --stack-name, a key beside stack_name in the file)
    still wins. The notes say, one line each, which setting a layer gives differently from the stack, and which of
    the two is used."""
    named = [index for index, (_, values) in enumerate(layers) if values.get("stack_name")]
    wanted = [setting for setting in STACK_SETTINGS if setting in wanted]
    if not named or not wanted:
        return layers, []
    position = named[-1]
    stack = layers[named[-1]][1]["stack_name"]
    region = next((values["region"] for _, values in reversed(layers) if values.get("region")),
                  PipelineConfig.region)
    outputs = read_outputs(stack, region)
    filled = {setting: (output, outputs[output]) for output, settings in STACK_OUTPUTS.items() if output in outputs
              for setting in settings if setting in wanted}
    source = f"stack {stack}"
    notes = []
    for setting, (output, value) in filled.items():
        ours = _coerce(setting, value, source)
        for index, (where, values) in enumerate(layers):
            if values.get(setting) is None or _coerce(setting, values[setting], where) == ours:
                continue
            given = f"{_named(setting, where)} {_shown(values[setting])}"
            if index >= position:
                notes.append(f"{given} overrides output {output} ({value}) of {source}")
            else:
                notes.append(f"output {output} ({value}) of {source} replaces {given}")
    values = {setting: value for setting, (_, value) in filled.items()}
    return [*layers[:position], (source, values), *layers[position:]], notes


def _named(setting: str, source: str) -> str:
    """How a layer names a setting: its flag, its variable, or the key in its file."""
    if source == "command line":
        return "--" + setting.replace("_", "-")
    if source == "environment":
        return ENV_PREFIX + setting.upper()
    return f"{setting} in {source}"


def _shown(value: Any) -> str:
    return ",".join(value) if isinstance(value, (list, tuple)) else str(value)


def _coerce(key: str, value: Any, source: str) -> Any:
    if key in ("subnets", "security_group_ids", "allowed_buckets"):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{source}: '{key}' must be a list of strings or a comma-separated string")
        return tuple(value)
    if key == "tags":
        if isinstance(value, str):
            value = parse_tags_json(value)
        if isinstance(value, Mapping):
            return tuple((str(k), str(v)) for k, v in value.items())
        if isinstance(value, (list, tuple)):
            pairs = []
            for tag in value:
                if isinstance(tag, Mapping) and set(tag) == {"Key", "Value"}:
                    pairs.append((str(tag["Key"]), str(tag["Value"])))
                elif isinstance(tag, (list, tuple)) and len(tag) == 2:
                    pairs.append((str(tag[0]), str(tag[1])))
                else:
                    raise ConfigError(f"{source}: each tag must be {{Key, Value}}; got {tag!r}")
            return tuple(pairs)
        raise ConfigError(f"{source}: 'tags' must be a table, a list of {{Key, Value}} or JSON")
    if key in _PAIRS:
        return _pairs(key, value, source)
    if key in ("max_runtime_seconds", "scoring_id_columns", "max_bad_rows", "callback_timeout_seconds"):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: '{key}' must be a whole number; got {value!r}") from None
    if key == "max_bad_percent":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{source}: '{key}' must be a number; got {value!r}") from None
    if key == "enable_caching":
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("true", "1", "yes", "on"):
            return True
        if str(value).lower() in ("false", "0", "no", "off"):
            return False
        raise ConfigError(f"{source}: 'enable_caching' must be true or false; got {value!r}")
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{source}: '{key}' must be a string; got {value!r}")
    return value
