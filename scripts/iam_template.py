"""Reading the IAM side of infra/template.yaml (shared by check_template_iam.py and check_calls.py).

- `load(path)`: the template, CloudFormation tags (!Sub, !Ref, !GetAtt...) decoded by cfn-lint.
- `resolve(template, value)`: intrinsics substituted by plausible values (account 123456789012,
  partition aws, region us-east-1, parameters from PARAMETERS or their defaults, resources by
  their names or ARNs). `Fn::If` takes its true branch (the more permissive deployment).
- `function_policies(template)`: per SAM function, its role's policy documents: inline documents,
  SAM policy templates expanded (SAM_POLICY_TEMPLATES), AWS managed policies from a small table
  (MANAGED_POLICIES), plus what SAM adds to every function role (basic execution, X-Ray with
  `Tracing: Active`).
- `actions_of(statement)`: the IAM actions a statement names, wildcards and NotAction expanded
  against parliament's copy of the Service Authorization Reference.
"""

from __future__ import annotations

import fnmatch
import glob
import json
import os
import re
from functools import lru_cache

from cfnlint.decode import decode

ACCOUNT = "123456789012"
PARTITION = "aws"
REGION = "us-east-1"
STACK = "tenantry"

# Plausible values for parameters without a usable default.
PARAMETERS = {
    "PlatformRequesterArns": ["arn:aws:iam::111111111111:role/platform-requests"],
    "TenantRequesterArns": [f"arn:aws:iam::{ACCOUNT}:role/tenant-requests"],
    "BootstrapSubnetIds": ["subnet-0123456789abcdef0"],
    "BootstrapSecurityGroupIds": ["sg-0123456789abcdef0"],
    "TenantryAccountId": "111111111111",
    "ExternalIds": ["0f8fad5b-d9cb-469f-a165-70867728950e"],
}

PSEUDO = {
    "AWS::Partition": PARTITION,
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::StackName": STACK,
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NoValue": None,
}


def load(path: str) -> dict:
    template, matches = decode(path)
    if template is None:
        raise SystemExit(f"{path}: cannot parse: {matches}")
    return template


def _arn(service: str, rest: str, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:{PARTITION}:{service}:{region}:{account}:{rest}"


def _name_prop(props: dict, key: str, logical: str) -> str:
    v = props.get(key)
    return v if isinstance(v, str) else f"{STACK}-{logical}"


def ref(template: dict, name: str):
    """`!Ref name`: a parameter's value, a pseudo parameter, or a resource's Ref."""
    if name in PSEUDO:
        return PSEUDO[name]
    params = template.get("Parameters", {})
    if name in params:
        if name in PARAMETERS:
            return PARAMETERS[name]
        default = params[name].get("Default")
        if params[name].get("Type", "").startswith(("List", "CommaDelimitedList")):
            return [x for x in str(default or "").split(",") if x] or [f"{name.lower()}-value"]
        return default if default is not None else f"{name.lower()}-value"
    res = template.get("Resources", {}).get(name)
    if res is None:
        raise KeyError(f"!Ref {name}: no such parameter or resource")
    t, props = res.get("Type"), res.get("Properties", {}) or {}
    if t == "AWS::DynamoDB::Table":
        return resolve(template, props.get("TableName", name))
    if t == "AWS::Events::EventBus":
        return resolve(template, props.get("Name", name))
    if t == "AWS::IAM::ManagedPolicy":
        pname = resolve(template, props.get("ManagedPolicyName", name))
        path = resolve(template, props.get("Path", "/"))
        return f"arn:{PARTITION}:iam::{ACCOUNT}:policy{path}{pname}"
    if t == "AWS::Serverless::Function":
        return resolve(template, props.get("FunctionName", f"{STACK}-{name}"))
    if t == "AWS::SQS::Queue":
        return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{resolve(template, props.get('QueueName', name))}"
    if t in ("AWS::Serverless::StateMachine", "AWS::StepFunctions::StateMachine"):
        return _arn("states", f"stateMachine:{resolve(template, props.get('Name', name))}")
    if t == "AWS::SNS::Topic":
        return _arn("sns", resolve(template, props.get("TopicName", f"{STACK}-{name}")))
    return name


def get_att(template: dict, logical: str, attr: str):
    resources = template.get("Resources", {})
    res = resources.get(logical)
    if res is None and logical.endswith("Role") and logical[: -len("Role")] in resources:
        # SAM's implicit function role, `<Function>Role`, at path `/`.
        return f"arn:{PARTITION}:iam::{ACCOUNT}:role/{STACK}-{logical}-ABCDEF123456"
    if res is None:
        raise KeyError(f"!GetAtt {logical}.{attr}: no such resource")
    t, props = res.get("Type"), res.get("Properties", {}) or {}
    if t == "AWS::DynamoDB::Table":
        return _arn("dynamodb", f"table/{ref(template, logical)}")
    if t == "AWS::Events::EventBus":
        return _arn("events", f"event-bus/{ref(template, logical)}")
    if t == "AWS::SQS::Queue":
        return _arn("sqs", resolve(template, props.get("QueueName", logical)))
    if t == "AWS::Events::Rule":
        bus = props.get("EventBusName")
        name = resolve(template, props.get("Name", logical))
        return _arn("events", f"rule/{resolve(template, bus)}/{name}" if bus else f"rule/{name}")
    if t == "AWS::Serverless::Function":
        return _arn("lambda", f"function:{ref(template, logical)}")
    return _arn("unknown", f"{logical}/{attr}")


_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


def resolve(template: dict, value):
    """The value with every intrinsic function substituted."""
    if isinstance(value, list):
        out = []
        for v in value:
            r = resolve(template, v)
            if r is not None:
                out.append(r)
        return out
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (k, v), = value.items()
        if k == "Ref":
            return ref(template, v)
        if k == "Fn::GetAtt":
            logical, attr = (v.split(".", 1) if isinstance(v, str) else v)
            return get_att(template, logical, attr)
        if k == "Fn::Sub":
            text, extra = (v, {}) if isinstance(v, str) else (v[0], v[1])

            def sub(m):
                name = m.group(1)
                if name in extra:
                    return str(resolve(template, extra[name]))
                if "." in name:
                    return str(get_att(template, *name.split(".", 1)))
                r = ref(template, name)
                return ",".join(r) if isinstance(r, list) else str(r)

            return _SUB.sub(sub, text)
        if k == "Fn::Join":
            sep, parts = v
            parts = resolve(template, parts)
            return sep.join(str(p) for p in parts)
        if k == "Fn::If":
            return resolve(template, v[1])
        if k in ("Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"):
            return True
    return {k: resolve(template, v) for k, v in value.items()}


# --- SAM ---------------------------------------------------------------------------------------

def _sam_template(kind: str, params: dict) -> dict:
    """A SAM policy template (serverless-application-model policy_templates.json) expanded."""
    if kind == "DynamoDBCrudPolicy":
        t = params["TableName"]
        return {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem",
                       "dynamodb:Scan", "dynamodb:Query", "dynamodb:UpdateItem",
                       "dynamodb:BatchWriteItem", "dynamodb:BatchGetItem",
                       "dynamodb:DescribeTable", "dynamodb:ConditionCheckItem"],
            "Resource": [_arn("dynamodb", f"table/{t}"), _arn("dynamodb", f"table/{t}/index/*")],
        }]}
    if kind == "EventBridgePutEventsPolicy":
        return {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "events:PutEvents",
            "Resource": _arn("events", f"event-bus/{params['EventBusName']}"),
        }]}
    if kind == "LambdaInvokePolicy":
        return {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Action": "lambda:InvokeFunction",
            "Resource": _arn("lambda", f"function:{params['FunctionName']}*"),
        }]}
    raise KeyError(f"SAM policy template {kind} is not in scripts/iam_template.py")


# AWS managed policies the template names (their documents as of 2025, trimmed to the actions).
MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": [
        {"Effect": "Allow", "Resource": "*",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]}],
    "AWSLambdaVPCAccessExecutionRole": [
        {"Effect": "Allow", "Resource": "*",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents",
                    "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSubnets", "ec2:DeleteNetworkInterface",
                    "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]}],
    "AWSXrayWriteOnlyAccess": [
        {"Effect": "Allow", "Resource": "*",
         "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules",
                    "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"]}],
}


def function_policies(template: dict) -> dict[str, list[tuple[str, dict, bool]]]:
    """Function name → [(label, document, written in the template)] of its role."""
    out = {}
    globals_fn = template.get("Globals", {}).get("Function", {}) or {}
    for logical, res in template.get("Resources", {}).items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties", {}) or {}
        name = ref(template, logical)
        docs = [("AWSLambdaBasicExecutionRole",
                 {"Version": "2012-10-17", "Statement": MANAGED_POLICIES["AWSLambdaBasicExecutionRole"]},
                 False)]
        tracing = props.get("Tracing", globals_fn.get("Tracing"))
        if tracing == "Active":
            docs.append(("AWSXrayWriteOnlyAccess",
                         {"Version": "2012-10-17", "Statement": MANAGED_POLICIES["AWSXrayWriteOnlyAccess"]},
                         False))
        docs += sam_policies(template, logical, props.get("Policies", []))
        out[name] = docs
    return out


def sam_policies(template: dict, logical: str, policies) -> list[tuple[str, dict, bool]]:
    """A SAM resource's `Policies` expanded: [(label, document, written in the template)]."""
    if isinstance(policies, (str, dict)):
        policies = [policies]
    docs = []
    for i, p in enumerate(policies):
        if isinstance(p, str):
            if p not in MANAGED_POLICIES:
                raise KeyError(f"{logical}: managed policy {p} is not in scripts/iam_template.py")
            docs.append((p, {"Version": "2012-10-17", "Statement": MANAGED_POLICIES[p]}, False))
        elif "Statement" in p:
            docs.append((f"{logical}.Policies[{i}]", resolve(template, p), True))
        else:
            (kind, params), = p.items()
            docs.append((f"{kind}", _sam_template(kind, resolve(template, params)), False))
    return docs


# --- actions -----------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def iam_definition() -> dict[str, list[str]]:
    """Service prefix → its action names (parliament's copy of the Service Authorization Reference)."""
    import parliament

    path = os.path.join(os.path.dirname(parliament.__file__), "iam_definition.json")
    with open(path) as f:
        data = json.load(f)
    out: dict[str, list[str]] = {}
    for svc in data:
        out.setdefault(svc["prefix"], []).extend(p["privilege"] for p in svc["privileges"])
    return out


@lru_cache(maxsize=1)
def resource_types() -> dict[str, list[str]]:
    """`prefix:Action` (lower case) → its resource types ('' for none: only `*`)."""
    import parliament

    path = os.path.join(os.path.dirname(parliament.__file__), "iam_definition.json")
    with open(path) as f:
        data = json.load(f)
    out = {}
    for svc in data:
        for p in svc["privileges"]:
            out[f"{svc['prefix']}:{p['privilege']}".lower()] = [
                r["resource_type"].rstrip("*") for r in p["resource_types"] if r["resource_type"]]
    return out


def as_list(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def actions_of(statement: dict, universe: list[str]) -> set[str]:
    """The actions of `universe` (`prefix:Name`) that a statement applies to."""
    if "NotAction" in statement:
        nots = as_list(statement["NotAction"])
        return {a for a in universe if not any(action_matches(p, a) for p in nots)}
    pats = as_list(statement.get("Action"))
    return {a for a in universe if any(action_matches(p, a) for p in pats)}


def resource_matches(pattern: str, arn: str) -> bool:
    """IAM resource matching: `*` and `?` wildcards, case-sensitive."""
    return fnmatch.fnmatchcase(arn, pattern)
