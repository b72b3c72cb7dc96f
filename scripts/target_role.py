"""Generates infra/target-account-role.yaml from infra/template.yaml; `--check` fails if the
committed file differs from what it would generate.

A target account (a platform's `targetRoleArn`) deploys that template. It holds:
- `TenantryRoleBoundary`: the template's permissions boundary, same name and path, which every
  role Tenantry creates in the account carries;
- `TenantryTargetRole` (`/tenantry/tenantry-target`): the role the phase functions assume. It
  trusts only the Tenantry account's function roles (`aws:PrincipalArn`), and only with the
  Tenantry stack's external id (`sts:ExternalId`, two while it rotates);
- its permissions: every statement the phase functions' own policies hold (network, encryption,
  identity, cluster, node groups, add-ons, bootstrap, access, observability, tenant, and the
  compliance sweep's reads), no more, packed into managed policies under IAM's 6,144-character
  limit. The statements on Tenantry's own table, bus and logs stay in Tenantry's account.

Generated rather than written twice, so the target account can never drift from what the
functions do at home.
"""

from __future__ import annotations

import json
import sys

import yaml

import iam_template

TEMPLATE = "infra/template.yaml"
OUTPUT = "infra/target-account-role.yaml"
PHASE_FUNCTIONS = [
    "NetworkFunction",
    "EncryptionFunction",
    "IdentityFunction",
    "ClusterFunction",
    "NodegroupsFunction",
    "AddonsFunction",
    "BootstrapFunction",
    "AccessFunction",
    "ObservabilityFunction",
    "TenantFunction",
    "ComplianceFunction",
]
# The statement that lets a function assume the target role stays at home.
HOME_ONLY_SIDS = {"AssumeTargetAccountRole"}
# IAM's limit for a managed policy, less a margin for CloudFormation's rendering.
MAX_POLICY_CHARS = 5800


def plain(value):
    """cfn-lint's decoded nodes as plain JSON values."""
    return json.loads(json.dumps(value))


def statements(template: dict) -> list[dict]:
    out = []
    for logical in PHASE_FUNCTIONS:
        prefix = logical.removesuffix("Function")
        for policy in template["Resources"][logical]["Properties"]["Policies"]:
            if not isinstance(policy, dict) or "Statement" not in policy:
                continue  # SAM policy templates and managed policies: Tenantry's own resources
            for s in plain(policy["Statement"]):
                if s.get("Sid") in HOME_ONLY_SIDS:
                    continue
                s["Sid"] = prefix + s.get("Sid", f"S{len(out)}")
                out.append(s)
    return out


def size(template: dict, statements: list[dict]) -> int:
    doc = {"Version": "2012-10-17", "Statement": statements}
    return len(json.dumps(iam_template.resolve(template, doc), separators=(",", ":")))


def packed(template: dict, all_statements: list[dict]) -> list[list[dict]]:
    """Statements in order, cut into policies that fit."""
    policies: list[list[dict]] = [[]]
    for s in all_statements:
        if policies[-1] and size(template, policies[-1] + [s]) > MAX_POLICY_CHARS:
            policies.append([])
        policies[-1].append(s)
    return policies


def generate(template: dict) -> dict:
    boundary = plain(template["Resources"]["TenantryRoleBoundary"])
    policies = packed(template, statements(template))
    if len(policies) > 10:
        raise SystemExit(f"{len(policies)} managed policies: IAM attaches at most 10 to a role")
    resources = {"TenantryRoleBoundary": boundary}
    names = []
    for i, group in enumerate(policies, start=1):
        logical = f"TenantryTargetPolicy{i}"
        names.append(logical)
        resources[logical] = {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {
                "ManagedPolicyName": f"tenantry-target-{i}",
                "Path": "/tenantry/",
                "Description": f"What Tenantry's phase functions do in this account ({i} of {len(policies)})",
                "PolicyDocument": {"Version": "2012-10-17", "Statement": group},
            },
        }
    resources["TenantryTargetRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": "tenantry-target",
            "Path": "/tenantry/",
            "Description": "Assumed by Tenantry's phase functions to build platforms in this account",
            # Lambda credentials assuming a role is role chaining: one hour at most.
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "TenantryFunctionsOnly",
                        "Effect": "Allow",
                        "Principal": {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${TenantryAccountId}:root"}},
                        "Action": "sts:AssumeRole",
                        "Condition": {
                            "StringEquals": {"sts:ExternalId": {"Ref": "ExternalIds"}},
                            "ArnLike": {
                                "aws:PrincipalArn": {
                                    "Fn::Sub": "arn:${AWS::Partition}:iam::${TenantryAccountId}:role/${TenantryStackName}-*Function*"
                                }
                            },
                        },
                    }
                ],
            },
            "ManagedPolicyArns": [{"Ref": n} for n in names],
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": (
            "Tenantry target account: the role Tenantry's phase functions assume to build "
            "platforms here, and the permissions boundary of every role they create. "
            f"Generated from {TEMPLATE} by scripts/target_role.py: do not edit."
        ),
        "Parameters": {
            "TenantryAccountId": {
                "Type": "String",
                "AllowedPattern": "^[0-9]{12}$",
                "Description": "The account Tenantry runs in",
            },
            "TenantryStackName": {
                "Type": "String",
                "Default": "tenantry",
                "Description": "The name of Tenantry's stack there (its function roles are named after it)",
            },
            "ExternalIds": {
                "Type": "CommaDelimitedList",
                "Description": (
                    "Tenantry's external id, the TargetExternalId output of its stack; two, "
                    "comma-separated, while it rotates (docs/runbooks/target-account-role-rotation.md)"
                ),
            },
        },
        "Resources": resources,
        "Outputs": {
            "TargetRoleArn": {
                "Description": "The targetRoleArn of platforms built in this account",
                "Value": {"Fn::GetAtt": ["TenantryTargetRole", "Arn"]},
            }
        },
    }


def render(template: dict) -> str:
    header = (
        f"# Generated from {TEMPLATE} by scripts/target_role.py (make target-role): do not edit.\n"
        "# Deploy in each account platforms are built in:\n"
        "#   aws cloudformation deploy --template-file infra/target-account-role.yaml \\\n"
        "#     --stack-name tenantry-target --capabilities CAPABILITY_NAMED_IAM \\\n"
        "#     --parameter-overrides TenantryAccountId=<id> ExternalIds=<TargetExternalId output>\n"
    )
    return header + yaml.safe_dump(generate(template), sort_keys=False, width=100)


def main() -> int:
    text = render(iam_template.load(TEMPLATE))
    if "--check" in sys.argv:
        with open(OUTPUT) as f:
            if f.read() != text:
                print(f"{OUTPUT} is stale: run `make target-role`", file=sys.stderr)
                return 1
        print(f"{OUTPUT} matches {TEMPLATE}")
        return 0
    with open(OUTPUT, "w") as f:
        f.write(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
