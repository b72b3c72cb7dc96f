#!/usr/bin/env python3
"""The operations the deployment template promises (issue 15, "Tenantry's own template"), checked
on infra/template.yaml by `make check-infra`, so that a function, state machine, rule or queue
added later cannot silently go without them:

- every function: `LoggingConfig.LogGroup` names a declared log group `/aws/lambda/<FunctionName>`,
  and its instruction set is the `Architecture` parameter (Globals, not overridden);
- every state machine: `Logging` at ERROR or ALL without execution data, into a declared log group,
  and its role allows Step Functions' log-delivery actions;
- every log group: retention `LogRetentionDays` and a KMS key of the template with rotation on,
  whose policy lets CloudWatch Logs use it for that group (kms:EncryptionContext:aws:logs:arn);
- every EventBridge rule target and schedule target: a retry policy and an encrypted SQS
  dead-letter queue; a rule's queue admits the events service for that rule (aws:SourceArn), a
  schedule's role may send to its queue;
- alarms to an encrypted SNS topic: ExecutionsFailed of every state machine, ExecutionsTimedOut
  of every state machine whose definition has a TimeoutSeconds, and the depth
  (ApproximateNumberOfMessagesVisible > 0) of every dead-letter queue (targets' and redrive).

The check is checked too: each of MUTATIONS (one promise taken away from the template, in memory)
must make it fail.

Usage: check_template_ops.py [TEMPLATE]   (default infra/template.yaml)
"""

from __future__ import annotations

import fnmatch
import json
import os
import sys

import iam_template as it

LOG_DELIVERY = {"logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery", "logs:ListLogDeliveries", "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"}


def target(value) -> str | None:
    """The logical id a `!Ref X` or `!GetAtt X.Attr` names."""
    if isinstance(value, dict):
        if "Ref" in value:
            return value["Ref"]
        if "Fn::GetAtt" in value:
            v = value["Fn::GetAtt"]
            return (v.split(".", 1) if isinstance(v, str) else v)[0]
    return None


def check(t: dict, base: str = "infra") -> tuple[list[str], dict]:
    res = t.get("Resources", {})
    of_type = lambda ty: {k: v for k, v in res.items() if v.get("Type") == ty}
    props = lambda logical: res[logical].get("Properties", {}) or {}
    problems: list[str] = []
    functions = of_type("AWS::Serverless::Function")
    machines = of_type("AWS::Serverless::StateMachine")
    log_groups_used: dict[str, str] = {}  # log group → who logs there

    # -- functions
    arch = (t.get("Globals", {}).get("Function", {}) or {}).get("Architectures")
    if arch != [{"Ref": "Architecture"}] or "Architecture" not in t.get("Parameters", {}):
        problems.append(f"Globals.Function.Architectures is {arch}, not [!Ref Architecture]")
    for fn in functions:
        p = props(fn)
        if "Architectures" in p:
            problems.append(f"{fn}: overrides Architectures")
        group = target((p.get("LoggingConfig") or {}).get("LogGroup"))
        if group is None or res.get(group, {}).get("Type") != "AWS::Logs::LogGroup":
            problems.append(f"{fn}: LoggingConfig.LogGroup is not a log group of the template")
            continue
        want = f"/aws/lambda/{it.ref(t, fn)}"
        if props(group).get("LogGroupName") != want:
            problems.append(f"{fn}: its log group {group} is not named {want}")
        log_groups_used[group] = fn

    # -- state machines
    for sm in machines:
        p = props(sm)
        logging = p.get("Logging") or {}
        if logging.get("Level") not in ("ERROR", "ALL"):
            problems.append(f"{sm}: Logging.Level is {logging.get('Level')}, not ERROR or ALL")
        if logging.get("IncludeExecutionData") is not False:
            problems.append(f"{sm}: Logging.IncludeExecutionData is not false")
        dests = logging.get("Destinations") or []
        groups = [target((d.get("CloudWatchLogsLogGroup") or {}).get("LogGroupArn")) for d in dests]
        if not groups or any(res.get(g or "", {}).get("Type") != "AWS::Logs::LogGroup" for g in groups):
            problems.append(f"{sm}: Logging.Destinations are not log groups of the template")
        for g in groups:
            if g:
                log_groups_used[g] = sm
        allowed = set()
        for _, doc, _ in it.sam_policies(t, sm, p.get("Policies", [])):
            for s in it.as_list(doc.get("Statement")):
                if s.get("Effect") == "Allow" and "*" in it.as_list(s.get("Resource")):
                    allowed |= {a for a in LOG_DELIVERY
                                if any(it.action_matches(x, a) for x in it.as_list(s.get("Action")))}
        if allowed != LOG_DELIVERY:
            problems.append(f"{sm}: its role lacks {sorted(LOG_DELIVERY - allowed)} (log delivery)")

    # -- log groups: retention and KMS
    for group in of_type("AWS::Logs::LogGroup"):
        p = props(group)
        if p.get("RetentionInDays") != {"Ref": "LogRetentionDays"}:
            problems.append(f"{group}: RetentionInDays is not !Ref LogRetentionDays")
        key = target(p.get("KmsKeyId"))
        if key is None or res.get(key, {}).get("Type") != "AWS::KMS::Key":
            problems.append(f"{group}: KmsKeyId is not a key of the template")
            continue
        kp = props(key)
        if kp.get("EnableKeyRotation") is not True:
            problems.append(f"{key}: key rotation is off")
        arn = it.resolve(t, {"Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"}) \
            + str(it.resolve(t, p.get("LogGroupName")))
        service = f"logs.{it.REGION}.amazonaws.com"
        ok = False
        for s in it.as_list(it.resolve(t, kp.get("KeyPolicy", {})).get("Statement")):
            principal = it.as_list((s.get("Principal") or {}).get("Service"))
            if s.get("Effect") != "Allow" or service not in principal:
                continue
            for op, kv in (s.get("Condition") or {}).items():
                for k, v in kv.items():
                    if k.lower() == "kms:encryptioncontext:aws:logs:arn" and op in ("StringLike", "ArnLike", "StringEquals", "ArnEquals"):
                        ok |= any(fnmatch.fnmatchcase(arn, pat) for pat in it.as_list(v))
        if not ok:
            problems.append(f"{group}: the policy of {key} does not let {service} use it for {arn}")
    for group in log_groups_used:
        if res[group].get("Type") != "AWS::Logs::LogGroup":
            problems.append(f"{group}: not a log group")

    # -- rule and schedule targets: retry and an encrypted DLQ
    dlqs: set[str] = set()

    def encrypted_queue(q: str | None, where: str) -> bool:
        if q is None or res.get(q, {}).get("Type") != "AWS::SQS::Queue":
            problems.append(f"{where}: the dead-letter queue is not a queue of the template")
            return False
        if q in dlqs:
            return True
        qp = props(q)
        if qp.get("SqsManagedSseEnabled") is not True and not qp.get("KmsMasterKeyId"):
            problems.append(f"{q}: not encrypted (SqsManagedSseEnabled or KmsMasterKeyId)")
        dlqs.add(q)
        return True

    queue_policies = [props(k) for k in of_type("AWS::SQS::QueuePolicy")]
    for rule in of_type("AWS::Events::Rule"):
        rule_arn = it.get_att(t, rule, "Arn")
        for tg in props(rule).get("Targets", []) or []:
            where = f"{rule} target {tg.get('Id')}"
            if not tg.get("RetryPolicy"):
                problems.append(f"{where}: no RetryPolicy")
            q = target((tg.get("DeadLetterConfig") or {}).get("Arn"))
            if not encrypted_queue(q, where):
                continue
            queue_arn = it.get_att(t, q, "Arn")
            admitted = False
            for qp in queue_policies:
                if q not in [target(x) for x in it.as_list(qp.get("Queues"))]:
                    continue
                for s in it.as_list(it.resolve(t, qp.get("PolicyDocument", {})).get("Statement")):
                    if (s.get("Effect") == "Allow"
                            and "events.amazonaws.com" in it.as_list((s.get("Principal") or {}).get("Service"))
                            and queue_arn in it.as_list(s.get("Resource"))):
                        arns = [a for op, kv in (s.get("Condition") or {}).items() if op.startswith("Arn")
                                for k, v in kv.items() if k.lower() == "aws:sourcearn" for a in it.as_list(v)]
                        admitted |= rule_arn in arns
            if not admitted:
                problems.append(f"{where}: no policy of {q} admits events.amazonaws.com for {rule_arn}")
    for sched in of_type("AWS::Scheduler::Schedule"):
        tg = props(sched).get("Target") or {}
        if not tg.get("RetryPolicy"):
            problems.append(f"{sched}: no RetryPolicy")
        q = target((tg.get("DeadLetterConfig") or {}).get("Arn"))
        if not encrypted_queue(q, sched):
            continue
        role = target(tg.get("RoleArn"))
        queue_arn = it.get_att(t, q, "Arn")
        sends = any(s.get("Effect") == "Allow" and "sqs:SendMessage" in it.as_list(s.get("Action"))
                    and queue_arn in it.as_list(s.get("Resource"))
                    for pol in (props(role).get("Policies") or []) if role in res
                    for s in it.as_list(it.resolve(t, pol["PolicyDocument"]).get("Statement")))
        if not sends:
            problems.append(f"{sched}: its role {role} may not send to {q} (Scheduler sends dead letters with it)")
    for q in of_type("AWS::SQS::Queue"):
        redrive = target((props(q).get("RedrivePolicy") or {}).get("deadLetterTargetArn"))
        if redrive:
            encrypted_queue(redrive, f"{q} RedrivePolicy")

    # -- alarms
    alarms = [props(a) for a in of_type("AWS::CloudWatch::Alarm")]
    topics = of_type("AWS::SNS::Topic")
    for topic in topics:
        if not props(topic).get("KmsMasterKeyId"):
            problems.append(f"{topic}: not encrypted (KmsMasterKeyId)")

    def alarmed(namespace: str, metric: str, dim: str, logical: str) -> bool:
        for a in alarms:
            if (a.get("Namespace"), a.get("MetricName")) != (namespace, metric):
                continue
            if not any(d.get("Name") == dim and target(d.get("Value")) == logical
                       for d in a.get("Dimensions") or []):
                continue
            if a.get("ComparisonOperator") != "GreaterThanThreshold" or a.get("Threshold") not in (0, "0"):
                continue
            actions = [target(x) for x in a.get("AlarmActions") or []]
            if actions and all(x in topics for x in actions):
                return True
        return False

    for sm in machines:
        if not alarmed("AWS/States", "ExecutionsFailed", "StateMachineArn", sm):
            problems.append(f"{sm}: no alarm on ExecutionsFailed > 0 to an SNS topic of the template")
        # An execution that hits its TimeoutSeconds ends TIMED_OUT, which ExecutionsFailed does
        # not count: a workflow that can time out needs its own alarm.
        uri = props(sm).get("DefinitionUri")
        if isinstance(uri, str):
            with open(os.path.join(base, uri)) as f:
                times_out = "TimeoutSeconds" in json.load(f)
            if times_out and not alarmed("AWS/States", "ExecutionsTimedOut", "StateMachineArn", sm):
                problems.append(f"{sm}: its definition has TimeoutSeconds but no alarm on ExecutionsTimedOut > 0")
    for q in sorted(dlqs):
        if not alarmed("AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q):
            problems.append(f"{q}: no alarm on ApproximateNumberOfMessagesVisible > 0 to an SNS topic of the template")

    stats = {"functions": len(functions), "state machines": len(machines),
             "log groups": len(of_type("AWS::Logs::LogGroup")),
             "rule targets": sum(len(props(r).get("Targets") or []) for r in of_type("AWS::Events::Rule")),
             "schedules": len(of_type("AWS::Scheduler::Schedule")), "dead-letter queues": len(dlqs),
             "alarms": len(alarms)}
    return problems, stats


# Each must make the template fail: the check itself is checked on the template it guards.
def _first(t: dict, ty: str) -> dict:
    return next(v["Properties"] for v in t["Resources"].values() if v.get("Type") == ty)


def _drop_alarm(t: dict, metric: str) -> None:
    name = next(k for k, v in t["Resources"].items() if v.get("Type") == "AWS::CloudWatch::Alarm"
                and v["Properties"].get("MetricName") == metric)
    del t["Resources"][name]


MUTATIONS = {
    "a fixed architecture": lambda t: t["Globals"]["Function"].__setitem__("Architectures", ["x86_64"]),
    "a function without its log group": lambda t: _first(t, "AWS::Serverless::Function").pop("LoggingConfig"),
    "execution data in the logs": lambda t: _first(t, "AWS::Serverless::StateMachine")["Logging"].__setitem__("IncludeExecutionData", True),
    "a state machine without logging": lambda t: _first(t, "AWS::Serverless::StateMachine").pop("Logging"),
    "a fixed retention": lambda t: _first(t, "AWS::Logs::LogGroup").__setitem__("RetentionInDays", 7),
    "a log group without KMS": lambda t: _first(t, "AWS::Logs::LogGroup").pop("KmsKeyId"),
    "a rule target without DLQ": lambda t: _first(t, "AWS::Events::Rule")["Targets"][0].pop("DeadLetterConfig"),
    "a rule target without retry": lambda t: _first(t, "AWS::Events::Rule")["Targets"][0].pop("RetryPolicy"),
    "a schedule without DLQ": lambda t: _first(t, "AWS::Scheduler::Schedule")["Target"].pop("DeadLetterConfig"),
    "no failed-executions alarm": lambda t: _drop_alarm(t, "ExecutionsFailed"),
    "no timed-out-executions alarm": lambda t: _drop_alarm(t, "ExecutionsTimedOut"),
    "no DLQ depth alarm": lambda t: _drop_alarm(t, "ApproximateNumberOfMessagesVisible"),
    "an unencrypted topic": lambda t: _first(t, "AWS::SNS::Topic").pop("KmsMasterKeyId"),
}


def main() -> int:
    import copy

    paths = sys.argv[1:] or ["infra/template.yaml"]
    failed = False
    for path in paths:
        template = it.load(path)
        base = os.path.dirname(path) or "."
        problems, stats = check(template, base)
        for p in problems:
            print(f"[ops] {p}")
        missed, applied = [], 0
        for what, mutate in MUTATIONS.items():
            t = copy.deepcopy(template)
            try:
                mutate(t)
            except (KeyError, IndexError, StopIteration):
                continue  # the template has nothing to take away (and fails above)
            applied += 1
            if not check(t, base)[0]:
                missed.append(what)
        for what in missed:
            print(f"[self-test] {path} with {what} passes: the check misses it")
        print(f"{path}: " + ", ".join(f"{v} {k}" for k, v in stats.items())
              + f": {len(problems)} finding(s); {applied - len(missed)} of {applied} "
              f"mutations of it caught")
        failed |= bool(problems) or bool(missed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
