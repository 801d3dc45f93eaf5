"""Typed errors: each says what the user must fix.

    PipelineError                  base of everything this package raises on purpose
    ├── ConfigError                a config value, file or flag is wrong (exit 2)
    │   └── CredentialInConfigError  something that looks like a secret was given as config
    ├── ParameterError             a --parameter override names an unknown parameter or has a bad value (exit 2)
    ├── AwsError                   an AWS API call failed; names the operation (exit 1)
    │   ├── MissingCredentialsError  no AWS credentials were found (exit 2)
    │   ├── AwsNotFoundError       what the call names does not exist (exit 2)
    │   └── StackError             a CloudFormation stack cannot be deployed, read or deleted as asked;
    │       │                      names the failed resource and its reason (exit 1)
    │       └── StackNotFoundError  there is no stack of that name in the region (exit 2)
    ├── OfflineCallError           an AWS call was attempted while building a definition offline
    ├── ExecutionError             a local execution cannot be found, described or retried as asked (exit 2)
    ├── ExecutionInterrupted       Ctrl-C stopped a local execution; says the command that resumes it (exit 130)
    ├── RegistryError              the local model registry cannot be read (exit 2)
    │   └── RegistryBusyError      it stayed locked past the timeout (a step sees Step.THROTTLING)
    ├── ModelPackageError          a model version is unknown, or not in a state that allows what was asked (exit 2)
    ├── EndpointError              a local endpoint cannot be started, updated or stopped (exit 1)
    │   └── EndpointNotFoundError  there is no such endpoint (exit 2)
    ├── CallbackError              a Callback step's token is unknown or answered already, or the answer is wrong (exit 2)
    ├── EnvironmentBuildError      a job's environment (its requirements) cannot be built; names the file (exit 1)
    ├── NotFoundError              what a studio request names is not in the local store (exit 2)
    └── DefinitionError            a pipeline definition cannot be executed as written; names step and field (exit 2)
        ├── NotRunnableLocallyError  the local engine cannot run a step SageMaker runs (its image: a built-in
        │   │                        algorithm other than XGBoost, a Spark image, one nothing local stands in for);
        │   │                        the engine's limit, never the user's program (not an AlgorithmError)
        │   ├── UnsupportedStepTypeError  its Type
        │   └── MissingToolError    what a local stand-in runs with is not installed here (R for the R image);
        │                           says what to install
        ├── ExpressionError        a Get/Std:Join/Std:JsonGet/condition cannot be resolved
        ├── UnsafePathError        a URI, name or path would lead outside the local store
        │   └── KeyConflictError   a key the local store cannot hold beside another (``a`` and ``a/b``)
        └── DefinitionInvalidError validation found problems (all listed, each with step and field)

A step that fails while running is not an exception: it is a result with a status and reason.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Callable


class PipelineError(Exception):
    """Base class: the CLI catches this once, prints one line and exits with ``exit_code``."""

    exit_code = 1
    label = "error"  # how its line starts


class ConfigError(PipelineError):
    """A configuration value, file or flag is wrong."""

    exit_code = 2


class CredentialInConfigError(ConfigError):
    """Something that looks like a credential was given as configuration."""


class ParameterError(PipelineError):
    """A pipeline parameter override is unknown or does not match the parameter's type."""

    exit_code = 2


class AwsError(PipelineError):
    """An AWS API call failed."""


class MissingCredentialsError(AwsError):
    """No AWS credentials could be found for a call that needs them."""

    exit_code = 2


class AwsNotFoundError(AwsError):
    """The resource an AWS call names does not exist (ResourceNotFound, or "does not exist")."""

    exit_code = 2


class StackError(AwsError):
    """A CloudFormation stack could not be deployed, read or deleted: the message names the stack, its status and the
    first resource that failed, with CloudFormation's reason."""


class StackNotFoundError(StackError):
    """There is no CloudFormation stack of that name in the region."""

    exit_code = 2


class OfflineCallError(PipelineError):
    """The SDK tried to call AWS while the definition was being built offline."""


class ExecutionError(PipelineError):
    """A local execution cannot be found, or cannot be retried in its current state."""

    exit_code = 2


class ExecutionInterrupted(PipelineError):
    """Ctrl-C (or SIGTERM) stopped a local execution: it is recorded Stopped, and ``retry`` resumes it."""

    exit_code = 130
    label = "interrupted"

    def __init__(self, message: str, execution_id: str | None = None):
        super().__init__(message)
        self.execution_id = execution_id


class RegistryError(PipelineError):
    """The local model registry cannot be opened or read; the message names its file."""

    exit_code = 2


class RegistryBusyError(RegistryError):
    """The local model registry stayed locked by another writer past the timeout."""


class ModelPackageError(PipelineError):
    """A model package version is unknown, or its approval status does not allow what was asked."""

    exit_code = 2


class EndpointError(PipelineError):
    """A local endpoint cannot be found, started, updated or stopped; the message says where its log is."""


class EndpointNotFoundError(EndpointError):
    """There is no endpoint of that name."""

    exit_code = 2


class CallbackError(PipelineError):
    """A Callback step's token is unknown, already answered, or the answer breaks the API's limits."""

    exit_code = 2


class EnvironmentBuildError(PipelineError):
    """A job environment could not be built (pip refused a requirement); nothing half-built is left."""


class NotFoundError(PipelineError):
    """What a request names is not in the local store: an object at an S3 URI, an execution, a step, a pipeline."""

    exit_code = 2


class DefinitionError(PipelineError):
    """A pipeline definition cannot be executed as written."""

    exit_code = 2

    def __init__(self, message: str, step: str | None = None, field: str | None = None):
        where = ""
        if step is not None:
            where = f"Step '{step}': " + (f"{field}: " if field else "")
        elif field:
            where = f"{field}: "
        super().__init__(where + message)
        self.step = step
        self.field = field


class NotRunnableLocallyError(DefinitionError):
    """The local engine cannot run a step that SageMaker runs: a limit of the engine, not a fault of the user's
    program or definition. Refused before anything runs, one line per step with the way forward; a step whose image
    is known only at run time fails with a FailureReason starting with ``failure_prefix`` (never AlgorithmError)."""

    failure_prefix = "NotRunnableLocally"


class UnsupportedStepTypeError(NotRunnableLocallyError):
    """A step's Type has no executor in the local engine."""


class MissingToolError(NotRunnableLocallyError):
    """What the local stand-in for an image runs with is not installed on this machine (R and its packages for
    the R image): the message is one line saying what to install. A step fails with it as a ClientError."""


class ExpressionError(DefinitionError):
    """An expression in the definition cannot be resolved."""


class DefinitionInvalidError(DefinitionError):
    """Validation found problems in a definition; the message lists every one."""


class UnsafePathError(DefinitionError):
    """A bucket, key, step name, execution id, local path or link would lead outside the local store."""


class KeyConflictError(UnsafePathError):
    """A key the local store cannot hold beside another: ``a`` is an object, so ``a/b`` cannot be (or back)."""


def exit_code_of(command: Callable[[], int]) -> int:
    """Run a CLI command: a PipelineError or an OS error (disk full, read-only store, ...) becomes one line on
    stderr and its exit code, never a traceback; Ctrl-C exits 130. Libraries log warnings and errors only."""
    # configured before the SDK is imported: its own import-time basicConfig(INFO) then changes nothing,
    # and botocore's INFO lines ("Found credentials in environment variables") stay out of the output
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return command()
    except BrokenPipeError:
        # the reader of our output went away (`| head`): say nothing, as a program killed by SIGPIPE says nothing,
        # and point stdout at /dev/null so that the interpreter's last flush does not complain either
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + signal.SIGPIPE
    except PipelineError as exc:
        print(f"{exc.label}: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
