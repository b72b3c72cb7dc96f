#!/usr/bin/env bash
# `make demo`: the main job on the local stack. Needs no AWS account.
set -euo pipefail
tenantry=${1:-target/debug/tenantry}
export TENANTRY_STATE_DIR=${TENANTRY_STATE_DIR:-.tenantry/demo}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Check the example platform request (the full PCI platform of the seeds)"
"$tenantry" validate examples/platform.json

step "A bad request is refused with every problem named (and nothing is created)"
"$tenantry" validate examples/invalid-platform.json || echo "(exit $? as expected)"

step "Plan: every resource the platform needs, by phase"
"$tenantry" plan examples/platform.json

step "Start the local stack (moto + gateway), in the background"
trap '"$tenantry" dev down' EXIT
"$tenantry" dev up

step "Run a workflow for real: Step Functions -> Lambda Invoke -> Tenantry handler -> DynamoDB"
"$tenantry" dev selftest --polls 3

step "Local stack status and the AWS calls it counted"
"$tenantry" dev status --json
