#!/usr/bin/env bash
# `make demo`: the main job on the local stack. Needs no AWS account.
set -euo pipefail
tenantry=${1:-target/debug/tenantry}
export TENANTRY_STATE_DIR=${TENANTRY_STATE_DIR:-.tenantry/demo}
platform=payments
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Check the example platform request (the full PCI platform of the seeds)"
"$tenantry" validate examples/platform.json

step "A bad request is refused with every problem named (and nothing is sent)"
"$tenantry" validate examples/invalid-platform.json || echo "(exit $? as expected)"

step "Plan: every resource the platform needs, by phase (counts)"
"$tenantry" plan examples/platform.json | tail -n 1

step "Start the local stack (moto + gateway + Tenantry's control plane), in the background"
trap '"$tenantry" dev down' EXIT
"$tenantry" dev up

step "Provision: request event -> EventBridge -> SQS -> intake -> Step Functions -> phase functions"
"$tenantry" provision examples/platform.json --wait

step "Status and inventory, from DynamoDB"
"$tenantry" status
"$tenantry" status "$platform"
"$tenantry" dev resources "$platform"

step "Tenants: the platform's three are Active; onboard one more by a tenant request"
"$tenantry" tenant list "$platform"
"$tenantry" tenant validate examples/tenant.json
"$tenantry" tenant add "$platform" examples/tenant.json --wait
"$tenantry" tenant list "$platform"

step "Offboard it, keeping its data (S3 prefix and KMS key stay)"
"$tenantry" tenant remove "$platform" fraud-scoring --retain-data --wait
"$tenantry" tenant list "$platform"

step "Compliance sweep: every control judged on the live AWS and Kubernetes state, failures first"
"$tenantry" compliance "$platform" --sweep

step "The weekly sweep of every platform, now; and the report as a page for an auditor"
"$tenantry" compliance --all
"$tenantry" compliance "$platform" --format html --output "$TENANTRY_STATE_DIR/compliance.html"

step "Decommission"
"$tenantry" decommission "$platform" --wait

step "Run history: each run with its duration, result and changes"
"$tenantry" runs "$platform"

step "Nothing remains but what the kept tenant's data needs: its KMS key and the platform data key (kept while retained data may need it; the run's outputs name it)"
"$tenantry" status "$platform"
"$tenantry" dev resources "$platform"
