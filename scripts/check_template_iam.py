#!/usr/bin/env python3
"""Static checks of the IAM in a SAM template (infra/template.yaml), run by `make test`.

1. parliament on every policy document: the functions' inline policies and expanded SAM policy
   templates, managed policies (the role boundary), the bus, queue and topic resource policies,
   and the KMS key policies.
   Intrinsics are substituted by plausible values (scripts/iam_template.py). Any finding fails
   unless ACCEPTED below says why it is expected.
2. Privilege rules on every Allow of a function role (wildcards and NotAction expanded):
   - boundary: iam:CreateRole/PutRolePolicy/AttachRolePolicy/PutRolePermissionsBoundary/CreateUser
     only with a StringEquals/ArnEquals `iam:PermissionsBoundary` condition, and roles only under
     a path (`role/<path>/...`: SAM function roles are at `/`);
   - kms: key writes (tagging, policy, deletion, enable/disable, aliases, grants) only on keys that
     carry a tag (`aws:ResourceTag/...`); tagging on `*` only with a request tag *and* a Deny of
     tagging untagged keys in the same document; aliases only under `alias/tenantry/`;
   - eks: Delete*/Update*/Disassociate* only with `aws:ResourceTag/...` (or covered by a Deny
     with a negated tag condition), except actions that accept only `*`;
   - logs: DeleteLogGroup/PutRetentionPolicy/DeleteRetentionPolicy only with a tag condition.
3. The bus policy, evaluated (a tiny evaluator, see `evaluate_bus`): who may put which events.

Usage: check_template_iam.py [TEMPLATE]            (default infra/template.yaml)
       check_template_iam.py --must-reject FIXTURE...  each fixture must fail the rules its
                                                      Metadata.TenantryExpect lists
"""

from __future__ import annotations

import argparse
import json
import sys

import iam_template as it

# parliament findings that are expected: (issue, "<document label>/<statement Sid>" prefix) and
# why. Everything else parliament reports (at LOW severity or above) fails the check.
ACCEPTED = {
    # The boundary is a cap, not a grant: it names service families on `*`; the roles' own
    # policies scope the resources.
    ("RESOURCE_STAR", "TenantryRoleBoundary/"): "boundary",
    # Describe calls mostly support no resource-level permissions; the few that do are harmless.
    ("RESOURCE_STAR", "tenantry-network/NetworkFunction.Policies[1]/Read"): "reads",
    # Creates on `*` with the platform tag required in the request (the new resources' ids are
    # unknown before they exist), and changes on `*` with the platform tag required on them.
    ("RESOURCE_STAR", "tenantry-network/NetworkFunction.Policies[1]/CreateOnlyTagged"): "tag-on-create",
    ("RESOURCE_STAR", "tenantry-network/NetworkFunction.Policies[1]/ChangeOnlyOwn"): "tag-conditioned",
    # KMS: tags given to CreateKey need kms:TagResource "not restricted to particular KMS keys";
    # existing keys without the platform tag are denied by NoTaggingForeignKeys.
    ("RESOURCE_STAR", "tenantry-encryption/EncryptionFunction.Policies[1]/CreateOnlyTagged"): "KMS tag-on-create",
    ("RESOURCE_STAR", "tenantry-tenant/TenantFunction.Policies[2]/CreateOnlyTaggedKeys"): "KMS tag-on-create",
    # Alias operations are authorized on the alias and on the key, and only the key can carry
    # the tag condition: two statements, so parliament sees one resource type in each.
    ("RESOURCE_MISMATCH", "tenantry-encryption/EncryptionFunction.Policies[1]/OwnAliases"): "alias half",
    ("RESOURCE_MISMATCH", "tenantry-encryption/EncryptionFunction.Policies[1]/AliasesOnlyForOwnKeys"): "key half",
    ("RESOURCE_MISMATCH", "tenantry-tenant/TenantFunction.Policies[2]/TenantAliases"): "alias half (and key half)",
    # iam:PermissionsBoundary with StringEquals and the policy ARN, as the IAM user guide writes it.
    ("MISMATCHED_TYPE_BUT_USABLE", "tenantry-identity/IdentityFunction.Policies[1]/CreateOnlyBoundedRoles"): "IAM guide",
    ("MISMATCHED_TYPE_BUT_USABLE", "tenantry-identity/IdentityFunction.Policies[1]/AttachOnlyAwsManagedPoliciesToBoundedRoles"): "IAM guide",
    ("MISMATCHED_TYPE_BUT_USABLE", "tenantry-tenant/TenantFunction.Policies[2]/CreateOnlyBoundedTenantRoles"): "IAM guide",
    ("MISMATCHED_TYPE_BUT_USABLE", "tenantry-tenant/TenantFunction.Policies[2]/CreateOnlyBoundedFargatePodRole"): "IAM guide",
    ("MISMATCHED_TYPE_BUT_USABLE", "tenantry-tenant/TenantFunction.Policies[2]/AttachOnlyTheFargatePodPolicy"): "IAM guide",
    # parliament's data lists express executions as a second required resource type of
    # DescribeExecution; the sweep's children are standard executions, as the Distributed Map
    # guide's own policy names them.
    ("RESOURCE_MISMATCH", "FleetSweepStateMachine/FleetSweepStateMachine.Policies[2]/DistributedMapChildrenState"): "Distributed Map guide",
    # In a key policy, Resource "*" is the key the policy is attached to, and nothing else.
    ("RESOURCE_STAR", "KeyPolicy:"): "key policy",
    # The tenant function writes the tenant-data bucket's policy (deny non-TLS and non-SSE-KMS
    # uploads) on tenantry-* buckets only; it reads and writes no objects itself.
    ("RESOURCE_POLICY_PRIVILEGE_ESCALATION", "tenantry-tenant/TenantFunction.Policies[2]"): "bucket policy",
}

IAM_BOUNDED = ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy",
               "iam:PutRolePermissionsBoundary", "iam:CreateUser"]
KMS_WRITES = ["kms:TagResource", "kms:UntagResource", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion",
              "kms:DisableKey", "kms:EnableKey", "kms:CancelKeyDeletion", "kms:CreateAlias",
              "kms:UpdateAlias", "kms:DeleteAlias", "kms:EnableKeyRotation",
              "kms:DisableKeyRotation", "kms:CreateGrant", "kms:RevokeGrant",
              "kms:ReplicateKey", "kms:UpdateKeyDescription", "kms:ImportKeyMaterial",
              "kms:DeleteImportedKeyMaterial", "kms:UpdatePrimaryRegion"]
KMS_ALIAS = {"kms:createalias", "kms:updatealias", "kms:deletealias"}
LOG_WRITES = ["logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy"]

POSITIVE = {"StringEquals", "StringLike", "ArnEquals", "ArnLike"}


def cond_keys(statement: dict, ops: set[str] | None = None) -> dict[str, list[str]]:
    """Condition key (lower case) → operators using it, optionally only those in `ops`
    (`ForAnyValue:`/`ForAllValues:` prefixes stripped; `...IfExists` kept, so it never counts)."""
    out: dict[str, list[str]] = {}
    for op, kv in (statement.get("Condition") or {}).items():
        base = op.split(":", 1)[-1]
        if ops is not None and base not in ops:
            continue
        for k in kv:
            out.setdefault(k.lower(), []).append(base)
    return out


def has_resource_tag(statement: dict) -> bool:
    return any(k.startswith("aws:resourcetag/") for k in cond_keys(statement, POSITIVE))


def has_request_tag(statement: dict) -> bool:
    return any(k.startswith("aws:requesttag/") for k in cond_keys(statement, POSITIVE))


def negated_tag_deny(doc: dict, action: str, universe: list[str]) -> bool:
    """A Deny in `doc` covering `action` unless the resource carries a tag."""
    for s in it.as_list(doc.get("Statement")):
        if s.get("Effect") != "Deny" or action not in it.actions_of(s, universe):
            continue
        for op, kv in (s.get("Condition") or {}).items():
            for k, v in kv.items():
                if not k.lower().startswith("aws:resourcetag/"):
                    continue
                if op in ("StringNotLike", "StringNotEquals"):
                    return True
                if op == "Null" and str(it.as_list(v)[0]).lower() == "true":
                    return True
    return False


def rule_findings(label: str, doc: dict) -> list[tuple[str, str]]:
    """(rule, message) for every Allow in an identity policy that breaks a privilege rule."""
    defs = it.iam_definition()
    universe = [f"{p}:{a}" for p in ("iam", "kms", "eks", "logs") for a in defs.get(p, [])]
    rtypes = it.resource_types()
    out = []
    for i, s in enumerate(it.as_list(doc.get("Statement"))):
        if s.get("Effect") != "Allow":
            continue
        where = f"{label} statement {s.get('Sid', i)}"
        acts = it.actions_of(s, universe)
        res = [str(r) for r in it.as_list(s.get("Resource"))] or ["*"]
        lower = {a.lower(): a for a in acts}
        # -- IAM: the boundary
        for a in IAM_BOUNDED:
            if a.lower() not in lower:
                continue
            ops = cond_keys(s).get("iam:permissionsboundary", [])
            if not any(o in ("StringEquals", "ArnEquals") for o in ops):
                out.append(("boundary", f"{where}: allows {a} without a StringEquals "
                            f"iam:PermissionsBoundary condition: a role (or user) could be made "
                            f"without the boundary"))
            bad = [r for r in res if a != "iam:CreateUser" and not _under_path(r)]
            if bad:
                out.append(("role-path", f"{where}: allows {a} on {bad}: roles must live under "
                            f"an IAM path no function role matches (role/tenantry/...)"))
        # -- KMS
        for a in KMS_WRITES:
            if a.lower() not in lower:
                continue
            key_res = [r for r in res if r == "*" or ":key/" in r]
            alias_res = [r for r in res if r == "*" or ":alias/" in r]
            if key_res and not has_resource_tag(s):
                if a == "kms:TagResource" and has_request_tag(s) and negated_tag_deny(doc, a, universe):
                    pass  # tag-on-create, with untagged (foreign) keys denied
                else:
                    out.append(("kms-foreign-key", f"{where}: allows {a} on {key_res} without an "
                                f"aws:ResourceTag condition: a key that is not Tenantry's could be "
                                f"tagged, re-keyed or deleted"))
            if a.lower() in KMS_ALIAS:
                bad = [r for r in alias_res if ":alias/tenantry/" not in r]
                if bad:
                    out.append(("kms-alias", f"{where}: allows {a} on {bad}: aliases only "
                                f"under alias/tenantry/"))
        # -- EKS
        for a in sorted(lower):
            if not a.startswith(("eks:delete", "eks:update", "eks:disassociate")):
                continue
            # Only ever takes access away, from entries that are by definition untagged (a
            # stranger's access policy on a platform cluster: the access phase removes it).
            if a == "eks:disassociateaccesspolicy":
                continue
            if not rtypes.get(a):
                continue  # accepts only `*`: nothing to condition
            if has_resource_tag(s) or negated_tag_deny(doc, lower[a], universe):
                continue
            out.append(("eks-untagged-change", f"{where}: allows {lower[a]} on {res} without an "
                        f"aws:ResourceTag condition: any cluster's resources could be changed"))
        # -- CloudWatch Logs
        for a in LOG_WRITES:
            if a.lower() in lower and not has_resource_tag(s) and not negated_tag_deny(doc, a, universe):
                out.append(("logs-untagged-change", f"{where}: allows {a} on {res} without an "
                            f"aws:ResourceTag condition: any log group could be shortened or deleted"))
    return out


def _under_path(arn: str) -> bool:
    if arn == "*":
        return False
    if ":role/" not in arn:
        return True
    rest = arn.split(":role/", 1)[1]
    return "/" in rest and not rest.startswith(("*", "/"))


# --- parliament --------------------------------------------------------------------------------

def _parliament(doc: dict) -> list:
    from parliament import analyze_policy_string, enhance_finding
    from parliament.cli import is_finding_filtered

    policy = analyze_policy_string(json.dumps(doc), include_community_auditors=False)
    found = [enhance_finding(f) for f in policy.findings]
    return [f for f in found if not is_finding_filtered(f, "LOW")]


def target_statement_of(accepted: str) -> str | None:
    """Where an accepted finding of a function's statement shows again in the target account's
    policies (scripts/target_role.py names each statement `<Function><Sid>`):
    `tenantry-tenant/TenantFunction.Policies[2]/TenantAliases` → `TenantryTargetPolicy*/TenantTenantAliases`,
    matched on its Sid alone; a whole-document entry matches any target policy."""
    parts = accepted.split("/")
    if len(parts) < 2 or not parts[0].startswith("tenantry-") or "Function.Policies[" not in parts[1]:
        return None
    function = parts[1].split("Function.Policies[")[0]
    sid = parts[2] if len(parts) > 2 else ""
    return TARGET_LABEL + (f"/{function}{sid}" if sid else "")


TARGET_LABEL = "TenantryTargetPolicy"


def _matches_target(where: str, accepted: str) -> bool:
    """`TenantryTargetPolicy5/TenantAliases...` against `TenantryTargetPolicy/TenantAliases`."""
    if "/" not in accepted:
        return True
    return "/" in where and where.split("/", 1)[1].startswith(accepted.split("/", 1)[1])


def parliament_findings(label: str, doc: dict) -> list[str]:
    """parliament on each statement alone (so that a finding names its statement), and on the
    whole document for what only shows across statements (resource policy escalation)."""
    out = []

    def report(where: str, f) -> None:
        if any(issue == f.issue and where.startswith(w) for (issue, w) in ACCEPTED):
            return
        if where.startswith(TARGET_LABEL) and any(
                issue == f.issue and target_statement_of(w) is not None
                and _matches_target(where, target_statement_of(w)) for (issue, w) in ACCEPTED):
            return
        detail = str(f.detail)
        detail = detail if len(detail) < 400 else detail[:400] + "..."
        out.append(f"{where}: parliament {f.severity} {f.issue} ({f.title}): {detail}")

    for i, st in enumerate(it.as_list(doc.get("Statement"))):
        one = {"Version": doc.get("Version", "2012-10-17"), "Statement": [st]}
        for f in _parliament(one):
            report(f"{label}/{st.get('Sid', i)}", f)
    for f in _parliament(doc):
        if f.issue == "RESOURCE_POLICY_PRIVILEGE_ESCALATION":
            report(label, f)
    return out


def documents(template: dict):
    """(label, document, kind) for every policy document: identity (function roles, managed
    policies) and resource (bus, queues, topics, key policies)."""
    for fn, docs in it.function_policies(template).items():
        for label, doc, own in docs:
            yield f"{fn}/{label}", doc, "identity" if own else "sam"
    bus_statements = []
    for logical, res in template.get("Resources", {}).items():
        t, props = res.get("Type"), res.get("Properties", {}) or {}
        if t == "AWS::IAM::ManagedPolicy":
            # A target account's role policies (infra/target-account-role.yaml) are what the
            # functions do there: the same rules as the functions' own.
            target = str(props.get("ManagedPolicyName", "")).startswith("tenantry-target-")
            kind = "identity" if target else "boundary"
            yield logical, it.resolve(template, props["PolicyDocument"]), kind
        elif t == "AWS::Serverless::StateMachine":
            # The state machines' roles: what their workflows may invoke and start.
            for label, doc, own in it.sam_policies(template, logical, props.get("Policies", [])):
                yield f"{logical}/{label}", doc, "identity" if own else "sam"
        elif t == "AWS::IAM::Role":
            for i, p in enumerate(props.get("Policies", []) or []):
                name = p.get("PolicyName", str(i))
                yield f"{logical}/{name}", it.resolve(template, p["PolicyDocument"]), "identity"
        elif t == "AWS::Events::EventBusPolicy" and "Statement" in props:
            st = dict(it.resolve(template, props["Statement"]))
            st.setdefault("Sid", props.get("StatementId", logical))
            bus_statements.append(st)
        elif t == "AWS::Events::EventBus" and "Policy" in props:
            bus_statements += it.as_list(it.resolve(template, props["Policy"]).get("Statement"))
        elif t == "AWS::SQS::QueuePolicy":
            yield logical, it.resolve(template, props["PolicyDocument"]), "resource"
        elif t == "AWS::SNS::TopicPolicy":
            yield logical, it.resolve(template, props["PolicyDocument"]), "resource"
        elif t == "AWS::KMS::Key" and "KeyPolicy" in props:
            yield f"KeyPolicy:{logical}", it.resolve(template, props["KeyPolicy"]), "resource"
    if bus_statements:
        yield "EventBusPolicy", {"Version": "2012-10-17", "Statement": bus_statements}, "bus"


# --- the bus policy, evaluated -----------------------------------------------------------------

def _cond_holds(op: str, actual, expected) -> bool:
    exp = [str(e) for e in it.as_list(expected)]
    if actual is None:
        return op.startswith(("StringNot", "ArnNot"))  # absent key: negated operators match
    like = op.endswith("Like") or op.startswith("Arn")
    match = any((it.resource_matches(e, actual) if like else e == actual) for e in exp)
    return not match if "Not" in op else match


def _statement_applies(s: dict, req: dict) -> bool:
    principal = s.get("Principal")
    if principal != "*":
        arns = it.as_list((principal or {}).get("AWS"))
        if not any(p in (req["principal"], f"arn:aws:iam::{req['account']}:root") or
                   p == req["account"] for p in arns):
            return False
    if not any(it.action_matches(a, "events:PutEvents") for a in it.as_list(s.get("Action"))):
        return False
    if not any(it.resource_matches(r, req["bus"]) for r in it.as_list(s.get("Resource"))):
        return False
    ctx = {"events:detail-type": req["detail_type"], "events:source": req["source"],
           "aws:principalarn": req["principal"]}
    ctx = {k.lower(): v for k, v in ctx.items()}
    for op, kv in (s.get("Condition") or {}).items():
        for k, v in kv.items():
            if not _cond_holds(op, ctx.get(k.lower()), v):
                return False
    return True


def evaluate_bus(policy: dict, req: dict, identity_allows: bool = True) -> str:
    """`Allow` or `Deny` for one PutEvents entry: an explicit Deny wins; a principal of the bus's
    account is allowed by its own IAM policy (assumed to allow: the worst case) or the bus policy;
    another account's only by the bus policy."""
    statements = it.as_list(policy.get("Statement"))
    if any(s.get("Effect") == "Deny" and _statement_applies(s, req) for s in statements):
        return "Deny"
    if req["account"] == it.ACCOUNT and identity_allows:
        return "Allow"
    if any(s.get("Effect") == "Allow" and _statement_applies(s, req) for s in statements):
        return "Allow"
    return "Deny"


def bus_cases(template: dict) -> list[tuple[str, dict, str]]:
    bus = it.get_att(template, "EventBus", "Arn")
    platform = it.PARAMETERS["PlatformRequesterArns"][0]
    tenant = it.PARAMETERS["TenantRequesterArns"][0]
    outsider = f"arn:aws:iam::{it.ACCOUNT}:role/some-team-with-events-putevents"
    finalize = it.get_att(template, "FinalizeFunctionRole", "Arn")

    def req(principal, detail_type, source="tenantry.client"):
        return {"principal": principal, "account": principal.split(":")[4], "bus": bus,
                "detail_type": detail_type, "source": source}

    cases = [
        ("a principal not in PlatformRequesterArns asks to decommission",
         req(outsider, "PlatformDecommissionRequested"), "Deny"),
        ("a principal not in PlatformRequesterArns asks to provision",
         req(outsider, "PlatformProvisionRequested"), "Deny"),
        ("a tenant requester asks for a platform kind",
         req(tenant, "PlatformUpdateRequested"), "Deny"),
        ("a platform requester (other account) asks to provision",
         req(platform, "PlatformProvisionRequested"), "Allow"),
        ("a platform requester asks for a tenant kind",
         req(platform, "TenantOnboardingRequested"), "Deny"),
        ("a tenant requester onboards a tenant", req(tenant, "TenantOnboardingRequested"), "Allow"),
        ("a principal not in TenantRequesterArns offboards a tenant",
         req(outsider, "TenantOffboardingRequested"), "Deny"),
        ("someone else publishes a result with source tenantry",
         req(outsider, "PlatformProvisionSucceeded", "tenantry"), "Deny"),
        ("a platform requester uses source tenantry",
         req(platform, "PlatformProvisionRequested", "tenantry"), "Deny"),
        ("finalize publishes a result", req(finalize, "PlatformProvisionSucceeded", "tenantry"),
         "Allow"),
        ("a platform requester fakes a drift result", req(platform, "DriftCheckCompleted", "tenantry"),
         "Deny"),
        ("a platform requester fakes a compliance result",
         req(platform, "ComplianceSweepCompleted", "tenantry"), "Deny"),
    ]
    # The fixtures under infra/tests/ are cut-down templates without the drift and compliance
    # functions.
    if "DriftFunction" in template.get("Resources", {}):
        drift = it.get_att(template, "DriftFunctionRole", "Arn")
        cases.append(("the drift function publishes what a check found",
                      req(drift, "DriftDetected", "tenantry"), "Allow"))
    if "ComplianceFunction" in template.get("Resources", {}):
        compliance = it.get_att(template, "ComplianceFunctionRole", "Arn")
        cases.append(("the compliance function publishes what a sweep found",
                      req(compliance, "ComplianceSweepCompleted", "tenantry"), "Allow"))
    return cases


# --- main --------------------------------------------------------------------------------------

def check(path: str, quiet: bool = False) -> tuple[list[tuple[str, str]], dict]:
    template = it.load(path)
    problems: list[tuple[str, str]] = []
    stats = {"documents": 0, "statements": 0, "parliament": 0, "ruled": 0, "bus_cases": 0}
    bus_policy = None
    for label, doc, kind in documents(template):
        stats["documents"] += 1
        stats["statements"] += len(it.as_list(doc.get("Statement")))
        if kind != "sam":  # AWS managed policies and SAM's templates are not ours to audit
            stats["parliament"] += 1
            problems += [("parliament", m) for m in parliament_findings(label, doc)]
        if kind == "identity":
            stats["ruled"] += 1
            problems += rule_findings(label, doc)
        if kind == "bus":
            bus_policy = doc
    if "EventBus" in template.get("Resources", {}):
        if bus_policy is None:
            problems.append(("bus", "the EventBus has no resource policy: anyone with "
                             "events:PutEvents may send any request"))
        else:
            for what, req, expected in bus_cases(template):
                stats["bus_cases"] += 1
                got = evaluate_bus(bus_policy, req)
                if got != expected:
                    problems.append(("bus", f"bus policy: {what}: {got}, expected {expected} "
                                     f"({req['principal']}, {req['detail_type']}, {req['source']})"))
    return problems, stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("templates", nargs="*", default=["infra/template.yaml"])
    ap.add_argument("--must-reject", action="store_true",
                    help="each template is a fixture that must be rejected for the rules its "
                         "Metadata.TenantryExpect lists")
    args = ap.parse_args()
    failed = False
    for path in args.templates:
        problems, stats = check(path)
        if args.must_reject:
            expected = set(it.load(path).get("Metadata", {}).get("TenantryExpect", []))
            got = {rule for rule, _ in problems}
            if not expected:
                print(f"{path}: fixture names no Metadata.TenantryExpect")
                failed = True
            elif expected <= got:
                print(f"{path}: rejected as expected ({', '.join(sorted(expected))}):")
                for rule, msg in problems:
                    if rule in expected:
                        print(f"  [{rule}] {msg}")
            else:
                print(f"{path}: NOT rejected for {sorted(expected - got)} (the checker misses "
                      f"an exploit); found: {sorted(got) or 'nothing'}")
                failed = True
            continue
        for rule, msg in problems:
            print(f"[{rule}] {msg}")
        print(f"{path}: {stats['documents']} policy documents ({stats['statements']} statements), "
              f"{stats['parliament']} of them written in the template through parliament, "
              f"{stats['ruled']} function policies through the privilege "
              f"rules, {stats['bus_cases']} bus-policy cases evaluated: "
              f"{len(problems)} finding(s)")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
