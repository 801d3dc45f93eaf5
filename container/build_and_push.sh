#!/usr/bin/env bash
# Build the image, tag it with the git revision, create the ECR repository if missing, log in, push,
# and print the image URI (the value for --training-image).
#
#   container/build_and_push.sh [REPOSITORY]      (default: lead-scoring-xgboost)
#
# IMAGE_DIR (the folder holding the Dockerfile: this one by default) and BUILD_CONTEXT (default: the
# repository) let another image's script use this one: container-r/build_and_push.sh does.
#
# Needs a Docker engine, the AWS CLI and credentials from the standard AWS chain (never in this file).
# AWS_REGION (or AWS_DEFAULT_REGION) picks the region; the account is the caller's.
set -euo pipefail

repository="${1:-lead-scoring-xgboost}"
here="${IMAGE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}"
root="$(dirname "$here")"
context="${BUILD_CONTEXT:-$root}"

if ! command -v docker >/dev/null 2>&1 || ! docker info >/dev/null 2>&1; then
    echo "build_and_push.sh: no Docker engine is reachable here (docker info failed); build on a machine with one" >&2
    exit 3
fi
if ! command -v aws >/dev/null 2>&1; then
    echo "build_and_push.sh: the AWS CLI is not installed; it is needed to create the repository and log in" >&2
    exit 3
fi

region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
if [ -z "$region" ]; then
    region="$(aws configure get region || true)"
fi
if [ -z "$region" ]; then
    echo "build_and_push.sh: set AWS_REGION (the region of the ECR repository)" >&2
    exit 2
fi
account="$(aws sts get-caller-identity --query Account --output text)"
revision="$(git -C "$root" rev-parse --short=12 HEAD)"
if [ -n "$(git -C "$root" status --porcelain -- "$(basename "$here")")" ]; then
    revision="${revision}-dirty"
fi
registry="${account}.dkr.ecr.${region}.amazonaws.com"
image="${registry}/${repository}:${revision}"

if ! aws ecr describe-repositories --region "$region" --repository-names "$repository" >/dev/null 2>&1; then
    aws ecr create-repository --region "$region" --repository-name "$repository" \
        --image-scanning-configuration scanOnPush=true --encryption-configuration encryptionType=KMS >/dev/null
fi
aws ecr get-login-password --region "$region" | docker login --username AWS --password-stdin "$registry" >/dev/null

docker build --file "$here/Dockerfile" --tag "$image" "$context"
docker push "$image" >/dev/null
echo "$image"
