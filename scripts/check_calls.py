#!/usr/bin/env python3
"""Every AWS call a Tenantry function made on the local stack is allowed by its role in the template.

The gateway appends each call to `$TENANTRY_CALL_LOG_DIR/calls-*.jsonl` (gateway/src/calls.rs,
`CallLine`: function, service, operation, region, resource). For every distinct
(function, action, resource) this checks that the function's role in infra/template.yaml allows
the action, and the resource when the call named one:

- the role's documents are the template's inline policies, SAM policy templates expanded, and
  the AWS managed policies SAM attaches or the template names (scripts/iam_template.py);
- actions match with IAM wildcards; an explicit Deny of the same action and resource wins;
- resources: the recorded one made into an ARN (account 123456789012, the call's region) and
  matched `fnmatch`-style against the statement's substituted ARNs. IAM calls name a role by its
  name only: a role is placed under `/tenantry/` (where Tenantry creates its roles) unless the
  call gave a Path. A call that named no resource is checked on its action alone;
- Condition blocks are ignored (the local stack cannot tell tags or request context);
- a call made in a target account (the line's `account`: a session of a platform's
  `targetRoleArn`) is authorized by the target role, not the function's: it is checked against
  the policies of infra/target-account-role.yaml, with that account's ARNs read as the
  template's own account;
- calls with no invocation (tests, the CLI, moto's own Step Functions integrations) are skipped;
  so are calls that AWS would not authorize against the caller's identity policy: STS
  GetCallerIdentity (needs no permission).

The API operation is the IAM action except for the few in ACTION_OF.
Prints a table of denials and exits 1 if any (or if no call was recorded at all).

Usage: check_calls.py CALL_LOG_DIR [--template infra/template.yaml]
                     [--target-template infra/target-account-role.yaml]
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import sys

import iam_template as it

# (service, operation) → IAM action(s), where they differ from `service:Operation`.
ACTION_OF = {
    ("ec2", "DeleteVpcEndpoints"): ["ec2:DeleteVpcEndpoints"],
    ("s3", "ListObjectVersions"): ["s3:ListBucketVersions"],
    ("s3", "ListObjectsV2"): ["s3:ListBucket"],
    ("s3", "ListObjects"): ["s3:ListBucket"],
    ("s3", "HeadBucket"): ["s3:ListBucket"],
    ("s3", "HeadObject"): ["s3:GetObject"],
    ("s3", "DeleteObjects"): ["s3:DeleteObject"],
    ("s3", "GetBucketEncryption"): ["s3:GetEncryptionConfiguration"],
    ("s3", "PutBucketEncryption"): ["s3:PutEncryptionConfiguration"],
    ("s3", "GetPublicAccessBlock"): ["s3:GetBucketPublicAccessBlock"],
    ("s3", "PutPublicAccessBlock"): ["s3:PutBucketPublicAccessBlock"],
    ("s3", "GetBucketLifecycleConfiguration"): ["s3:GetLifecycleConfiguration"],
    ("s3", "PutBucketLifecycleConfiguration"): ["s3:PutLifecycleConfiguration"],
    ("s3", "GetBucketLogging"): ["s3:GetBucketLogging"],
    ("s3", "PutBucketLogging"): ["s3:PutBucketLogging"],
    ("s3", "DeleteBucketPolicy"): ["s3:DeleteBucketPolicy"],
    ("cloudwatch", "TagResource"): ["cloudwatch:TagResource"],
    ("logs", "ListTagsLogGroup"): ["logs:ListTagsLogGroup"],
    # DescribeKey / list calls named by alias are authorized on the key.
}

# Calls that need no identity-policy permission.
NO_PERMISSION = {("sts", "GetCallerIdentity")}

# Handler names (tenantry::functions::FUNCTION_NAMES) → the template's FunctionName.
def function_name(handler: str, names: set[str]) -> str | None:
    for candidate in (handler, f"tenantry-{handler}", f"tenantry-{handler.rstrip('s')}"):
        if candidate in names:
            return candidate
    return None


def to_arn(service: str, resource: str | None, region: str | None) -> str | None:
    if not resource:
        return None
    if resource.startswith("arn:"):
        return resource
    region = region or it.REGION
    acct = it.ACCOUNT
    if service == "iam":
        if resource.startswith("role/") and resource.count("/") == 1:
            resource = "role/tenantry/" + resource[len("role/"):]
        return f"arn:aws:iam::{acct}:{resource}"
    if service == "s3":
        return f"arn:aws:s3:::{resource}"
    if service == "sns":
        return f"arn:aws:sns:{region}:{acct}:{resource}"
    return f"arn:aws:{service}:{region}:{acct}:{resource}"


# (service, operation) → what to append to the recorded resource: DeleteObjects names its
# bucket in the path and is authorized as s3:DeleteObject on each key.
RESOURCE_SUFFIX = {("s3", "DeleteObjects"): "/*"}


def actions_for(service: str, operation: str) -> list[str]:
    if (service, operation) in ACTION_OF:
        return ACTION_OF[(service, operation)]
    return [f"{service}:{operation}"]


def _resource_ok(statement: dict, arn: str | None) -> bool:
    if arn is None:
        return True
    if "NotResource" in statement:
        return not any(it.resource_matches(r, arn) for r in it.as_list(statement["NotResource"]))
    pats = [str(r) for r in it.as_list(statement.get("Resource"))]
    if any(it.resource_matches(p, arn) for p in pats):
        return True
    # A log group's ARN is authorized with or without the trailing `:*`.
    if ":log-group:" in arn and any(it.resource_matches(p, arn + ":*") for p in pats):
        return True
    return False


def _action_ok(statement: dict, action: str) -> bool:
    if "NotAction" in statement:
        return not any(it.action_matches(p, action) for p in it.as_list(statement["NotAction"]))
    return any(it.action_matches(p, action) for p in it.as_list(statement.get("Action")))


def decide(docs: list, action: str, arn: str | None) -> tuple[str, str]:
    """(`allow`|`deny`|`implicit`, the statement that decided)."""
    allowed_by = None
    for label, doc, _own in docs:
        for i, s in enumerate(it.as_list(doc.get("Statement"))):
            if not _action_ok(s, action) or not _resource_ok(s, arn):
                continue
            where = f"{label}/{s.get('Sid', i)}"
            if s.get("Effect") == "Deny" and not s.get("Condition"):
                return "deny", where
            if s.get("Effect") == "Allow" and allowed_by is None:
                allowed_by = where
    return ("allow", allowed_by) if allowed_by else ("implicit", "")


def target_role_policies(path: str) -> list:
    """The target role's documents, as `decide` takes them."""
    template = it.load(path)
    resources = template["Resources"]
    names = [r["Ref"] for r in resources["TenantryTargetRole"]["Properties"]["ManagedPolicyArns"]]
    return [(n, it.resolve(template, resources[n]["Properties"]["PolicyDocument"]), True)
            for n in names]


def in_home_account(arn: str | None, account: str) -> str | None:
    """A target account's ARN as the template's account would have it."""
    return arn.replace(f":{account}:", f":{it.ACCOUNT}:", 1) if arn else arn


TARGET = " (as tenantry-target)"


def load_calls(directory: str) -> list[dict]:
    calls = []
    for path in sorted(glob.glob(os.path.join(directory, "*.jsonl"))):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    calls.append(json.loads(line))
    return calls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("directory")
    ap.add_argument("--template", default="infra/template.yaml")
    ap.add_argument("--target-template", default="infra/target-account-role.yaml")
    args = ap.parse_args()

    template = it.load(args.template)
    roles = it.function_policies(template)
    target_role = target_role_policies(args.target_template)
    calls = load_calls(args.directory)
    if not calls:
        print(f"check_calls: no call recorded in {args.directory} (is TENANTRY_CALL_LOG_DIR "
              f"reaching the gateway?)")
        return 1

    skipped = collections.Counter()
    checked = collections.Counter()  # (function, action, arn) → calls
    for c in calls:
        fn = c.get("function")
        if not fn:
            skipped["no invocation"] += 1
            continue
        if (c["service"], c["operation"]) in NO_PERMISSION:
            skipped["needs no permission"] += 1
            continue
        if " " in c["operation"]:
            skipped["unclassified REST call"] += 1
            continue
        name = function_name(fn, set(roles))
        for action in actions_for(c["service"], c["operation"]):
            resource = c.get("resource")
            if resource and (c["service"], c["operation"]) in RESOURCE_SUFFIX:
                resource += RESOURCE_SUFFIX[(c["service"], c["operation"])]
            arn = to_arn(c["service"], resource, c.get("region"))
            if c.get("account"):
                name = (name or f"?{fn}") + TARGET
                arn = in_home_account(arn, c["account"])
            checked[(name or f"?{fn}", action, arn)] += 1

    denials = []
    by_function = collections.Counter()
    for (fn, action, arn), n in sorted(checked.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")):
        by_function[fn] += n
        if fn.startswith("?"):
            denials.append((fn[1:], action, arn or "-", n, "no such function in the template"))
            continue
        docs = target_role if fn.endswith(TARGET) else roles[fn]
        verdict, where = decide(docs, action, arn)
        if verdict != "allow":
            why = f"explicitly denied by {where}" if verdict == "deny" else "no statement allows it"
            denials.append((fn, action, arn or "-", n, why))

    total = sum(checked.values())
    print(f"check_calls: {len(calls)} recorded calls, {total} checked as "
          f"{len(checked)} distinct (function, action, resource) against {args.template}; "
          f"skipped: {dict(skipped) or 'none'}")
    print("  per function: " + ", ".join(f"{f} {n}" for f, n in sorted(by_function.items())))
    if denials:
        w = [max(len(str(d[i])) for d in denials) for i in range(3)]
        print(f"\n{len(denials)} call(s) the template's roles do not allow:")
        print(f"  {'function':<{w[0]}}  {'action':<{w[1]}}  {'resource':<{w[2]}}  calls  why")
        for fn, action, arn, n, why in denials:
            print(f"  {fn:<{w[0]}}  {action:<{w[1]}}  {arn:<{w[2]}}  {n:>5}  {why}")
        return 1
    print("  every call is allowed by its function's role (or, in a target account, by the "
          "target role)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
