#!/usr/bin/env bash
# Build the R image (container-r/: R, gbm and plumber from Debian), tag it with the git revision, create the
# ECR repository if missing, log in, push, and print the image URI (the value for --training-image), with
# container/build_and_push.sh; this folder is the whole build context.
#
#   container-r/build_and_push.sh [REPOSITORY]    (default: lead-scoring-r)
#
# Needs a Docker engine, the AWS CLI and credentials from the standard AWS chain (never in this file).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE_DIR="$here" BUILD_CONTEXT="$here" exec "$(dirname "$here")/container/build_and_push.sh" "${1:-lead-scoring-r}"
