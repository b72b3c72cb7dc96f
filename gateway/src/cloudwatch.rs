//! CloudWatch alarms, served statefully in memory in Smithy RPC v2 CBOR.
//!
//! `aws-sdk-cloudwatch` speaks RPC v2 CBOR (`POST /service/GraniteServiceVersion20100801/operation/<Op>`,
//! `smithy-protocol: rpc-v2-cbor`), which moto does not: the gateway answers the alarm operations
//! Tenantry uses itself: `PutMetricAlarm` (create or replace), `DescribeAlarms` (names, prefix,
//! state, action prefix, alarm types, `MaxRecords`/`NextToken` pages), `DeleteAlarms` (missing names
//! are ignored), and `TagResource`/`UntagResource`/`ListTagsForResource` on alarm ARNs
//! (`arn:aws:cloudwatch:<region>:<account>:alarm:<name>`). State is kept per account and region.
//!
//! Wire format: request and response bodies are CBOR maps keyed by member name; timestamps are
//! CBOR tag 1 around epoch seconds; doubles are CBOR floats. Successful answers carry
//! `smithy-protocol: rpc-v2-cbor` and `Content-Type: application/cbor` (operations without output
//! answer with an empty body). CloudWatch is `awsQueryCompatible`, so an error carries its shape ID
//! in `__type` and the awsQuery code the SDK matches on (`ResourceNotFoundException`,
//! `InvalidParameterValue`, `MissingParameter`, ...) in the `x-amzn-query-error: Code;Sender`
//! header, with status 400.

use crate::proxy::{lock, AwsRequest, Gateway};
use bytes::Bytes;
use ciborium::Value;
use http::{HeaderValue, Response, StatusCode};
use std::collections::{BTreeMap, HashMap};

/// The service name the call log uses for CloudWatch (its SigV4 signing name is `monitoring`).
pub const SERVICE: &str = "cloudwatch";
/// CloudWatch's service name in RPC v2 paths.
pub const RPC_SERVICE: &str = "GraniteServiceVersion20100801";
/// SigV4 signing name of CloudWatch.
pub const SIGNING_NAME: &str = "monitoring";
const SHAPE_NAMESPACE: &str = "com.amazonaws.cloudwatch";

/// Alarms of every account and region.
#[derive(Default)]
pub struct CloudWatchState {
    alarms: HashMap<(String, String), BTreeMap<String, Alarm>>,
}

struct Alarm {
    /// The configuration as `PutMetricAlarm` sent it (the members `MetricAlarm` echoes), with
    /// AWS's defaults filled in.
    config: BTreeMap<String, Value>,
    tags: BTreeMap<String, String>,
    state_value: &'static str,
    state_reason: String,
    state_updated: f64,
    configuration_updated: f64,
}

/// What an operation answers.
#[derive(Debug, PartialEq)]
enum Output {
    /// `smithy.api#Unit`: empty body.
    Unit,
    /// A structure (possibly empty).
    Structure(Vec<(&'static str, Value)>),
}

/// A CloudWatch error, in the shape of its model.
#[derive(Debug)]
pub struct CwError {
    status: StatusCode,
    /// Error shape name (`__type` is `com.amazonaws.cloudwatch#<shape>`).
    shape: &'static str,
    /// awsQuery error code (`x-amzn-query-error`), None for protocol errors.
    query_code: Option<&'static str>,
    /// Member name of the message (`message`, or `Message` for `ResourceNotFoundException`).
    message_key: &'static str,
    message: String,
    extra: Vec<(&'static str, String)>,
}

impl CwError {
    fn client(shape: &'static str, code: &'static str, message: String) -> CwError {
        CwError {
            status: StatusCode::BAD_REQUEST,
            shape,
            query_code: Some(code),
            message_key: "message",
            message,
            extra: Vec::new(),
        }
    }

    fn missing(parameter: &str) -> CwError {
        CwError::client(
            "MissingRequiredParameterException",
            "MissingParameter",
            format!("The parameter {parameter} is required."),
        )
    }

    fn invalid(message: String) -> CwError {
        CwError::client(
            "InvalidParameterValueException",
            "InvalidParameterValue",
            message,
        )
    }

    fn combination(message: String) -> CwError {
        CwError::client(
            "InvalidParameterCombinationException",
            "InvalidParameterCombination",
            message,
        )
    }

    fn invalid_next_token() -> CwError {
        CwError::client(
            "InvalidNextToken",
            "InvalidNextToken",
            "The service returned an invalid next token.".to_owned(),
        )
    }

    fn resource_not_found(arn: &str) -> CwError {
        CwError {
            message_key: "Message",
            extra: vec![
                ("ResourceType", "Alarm".to_owned()),
                ("ResourceId", arn.to_owned()),
            ],
            ..CwError::client(
                "ResourceNotFoundException",
                "ResourceNotFoundException",
                format!("The resource {arn} does not exist."),
            )
        }
    }

    fn serialization(message: String) -> CwError {
        CwError {
            query_code: None,
            ..CwError::client("SerializationException", "", message)
        }
    }

    fn unknown_operation(operation: &str) -> CwError {
        CwError {
            status: StatusCode::NOT_FOUND,
            query_code: None,
            ..CwError::client(
                "UnknownOperationException",
                "",
                format!("the tenantry gateway does not serve the CloudWatch operation {operation}"),
            )
        }
    }

    /// The awsQuery error code the SDK sees (`code()` of the service error), else the shape.
    pub fn code(&self) -> &str {
        self.query_code.unwrap_or(self.shape)
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    fn response(&self, request_id: &str) -> Response<Bytes> {
        let mut fields = vec![(self.message_key, self.message.clone())];
        fields.extend(self.extra.iter().cloned());
        let query_error = self.query_code.map(|c| format!("{c};Sender"));
        cbor_error(
            self.status,
            &format!("{SHAPE_NAMESPACE}#{}", self.shape),
            query_error.as_deref(),
            &fields,
            request_id,
        )
    }
}

/// An RPC v2 CBOR error response: a CBOR map with `__type` and `fields`, the `smithy-protocol`
/// header and, for awsQuery-compatible services, `x-amzn-query-error` (`Code;Sender`).
pub fn cbor_error(
    status: StatusCode,
    error_type: &str,
    query_error: Option<&str>,
    fields: &[(&str, String)],
    request_id: &str,
) -> Response<Bytes> {
    let mut entries = vec![(text("__type"), text(error_type))];
    entries.extend(fields.iter().map(|(k, v)| (text(k), text(v))));
    let mut r = cbor_response(status, Some(&Value::Map(entries)), request_id);
    if let Some(v) = query_error.and_then(|q| HeaderValue::from_str(q).ok()) {
        r.headers_mut().insert("x-amzn-query-error", v);
    }
    r
}

fn cbor_response(status: StatusCode, body: Option<&Value>, request_id: &str) -> Response<Bytes> {
    let mut bytes = Vec::new();
    if let Some(body) = body {
        // Encoding a Value into a Vec cannot fail.
        let _ = ciborium::into_writer(body, &mut bytes);
    }
    let mut r = Response::new(Bytes::from(bytes));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
    if body.is_some() {
        h.insert("content-type", HeaderValue::from_static("application/cbor"));
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    r
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// Serves one CloudWatch RPC v2 CBOR call.
pub fn serve(gw: &Gateway, req: &AwsRequest) -> Response<Bytes> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let result = lock(&gw.cloudwatch).handle(
        &req.account(gw),
        req.region(gw),
        &req.class.operation,
        &req.body,
        now(),
    );
    match result {
        Ok(Output::Unit) => cbor_response(StatusCode::OK, None, &request_id),
        Ok(Output::Structure(members)) => {
            let body = Value::Map(members.into_iter().map(|(k, v)| (text(k), v)).collect());
            cbor_response(StatusCode::OK, Some(&body), &request_id)
        }
        Err(e) => e.response(&request_id),
    }
}

impl CloudWatchState {
    fn handle(
        &mut self,
        account: &str,
        region: &str,
        operation: &str,
        body: &[u8],
        now: f64,
    ) -> Result<Output, CwError> {
        let input = Input::parse(body)?;
        let scope = Scope { account, region };
        let alarms = self
            .alarms
            .entry((account.to_owned(), region.to_owned()))
            .or_default();
        match operation {
            "PutMetricAlarm" => put_metric_alarm(alarms, &input, now),
            "DescribeAlarms" => describe_alarms(alarms, &input, &scope),
            "DeleteAlarms" => {
                let names = input.str_list("AlarmNames")?;
                let names = names.ok_or_else(|| CwError::missing("AlarmNames"))?;
                if names.len() > 100 {
                    return Err(CwError::invalid(
                        "At most 100 alarms can be deleted in one call.".to_owned(),
                    ));
                }
                for name in names {
                    alarms.remove(&name);
                }
                Ok(Output::Unit)
            }
            "TagResource" => {
                let alarm = tagged_alarm(alarms, &input, &scope)?;
                let tags = input
                    .tags("Tags")?
                    .ok_or_else(|| CwError::missing("Tags"))?;
                let mut merged = alarm.tags.clone();
                merged.extend(tags);
                if merged.len() > 50 {
                    return Err(CwError::invalid(
                        "A resource can have at most 50 tags.".to_owned(),
                    ));
                }
                alarm.tags = merged;
                Ok(Output::Structure(Vec::new()))
            }
            "UntagResource" => {
                let alarm = tagged_alarm(alarms, &input, &scope)?;
                let keys = input.str_list("TagKeys")?;
                for key in keys.ok_or_else(|| CwError::missing("TagKeys"))? {
                    alarm.tags.remove(&key);
                }
                Ok(Output::Structure(Vec::new()))
            }
            "ListTagsForResource" => {
                let alarm = tagged_alarm(alarms, &input, &scope)?;
                Ok(Output::Structure(vec![("Tags", render_tags(&alarm.tags))]))
            }
            op => Err(CwError::unknown_operation(op)),
        }
    }
}

struct Scope<'a> {
    account: &'a str,
    region: &'a str,
}

impl Scope<'_> {
    fn arn(&self, name: &str) -> String {
        format!(
            "arn:aws:cloudwatch:{}:{}:alarm:{name}",
            self.region, self.account
        )
    }
}

/// The alarm a tagging call's `ResourceARN` names.
fn tagged_alarm<'a>(
    alarms: &'a mut BTreeMap<String, Alarm>,
    input: &Input,
    scope: &Scope,
) -> Result<&'a mut Alarm, CwError> {
    let arn = input.required_str("ResourceARN")?;
    let parts: Vec<&str> = arn.splitn(7, ':').collect();
    if parts.len() != 7 || parts[0] != "arn" || parts[2] != "cloudwatch" {
        return Err(CwError::invalid(format!(
            "The value {arn} for parameter ResourceARN is not a valid CloudWatch ARN."
        )));
    }
    let found = if parts[3] == scope.region && parts[4] == scope.account && parts[5] == "alarm" {
        alarms.get_mut(parts[6])
    } else {
        None
    };
    found.ok_or_else(|| CwError::resource_not_found(arn))
}

fn render_tags(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| Value::Map(vec![(text("Key"), text(k)), (text("Value"), text(v))]))
            .collect(),
    )
}

/// `MetricAlarm` members a `PutMetricAlarm` request sets (every input member but `Tags`).
const ECHOED: &[&str] = &[
    "AlarmName",
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
    "EvaluationWindow",
    "WarmUpConfiguration",
    "EvaluationCriteria",
    "EvaluationInterval",
    "ActionConfiguration",
];

const COMPARISON_OPERATORS: &[&str] = &[
    "GreaterThanOrEqualToThreshold",
    "GreaterThanThreshold",
    "GreaterThanUpperThreshold",
    "LessThanLowerOrGreaterThanUpperThreshold",
    "LessThanLowerThreshold",
    "LessThanOrEqualToThreshold",
    "LessThanThreshold",
];
const STATISTICS: &[&str] = &["Average", "Maximum", "Minimum", "SampleCount", "Sum"];
const UNITS: &[&str] = &[
    "Bits",
    "Bits/Second",
    "Bytes",
    "Bytes/Second",
    "Count",
    "Count/Second",
    "Gigabits",
    "Gigabits/Second",
    "Gigabytes",
    "Gigabytes/Second",
    "Kilobits",
    "Kilobits/Second",
    "Kilobytes",
    "Kilobytes/Second",
    "Megabits",
    "Megabits/Second",
    "Megabytes",
    "Megabytes/Second",
    "Microseconds",
    "Milliseconds",
    "None",
    "Percent",
    "Seconds",
    "Terabits",
    "Terabits/Second",
    "Terabytes",
    "Terabytes/Second",
];
const TREAT_MISSING_DATA: &[&str] = &["breaching", "notBreaching", "ignore", "missing"];
const STATE_VALUES: &[&str] = &["OK", "ALARM", "INSUFFICIENT_DATA"];

fn one_of(parameter: &str, value: &str, allowed: &[&str]) -> Result<(), CwError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(CwError::invalid(format!(
            "The value {value} for parameter {parameter} is not valid. Valid values: {}.",
            allowed.join(", ")
        )))
    }
}

fn length(parameter: &str, value: &str, min: usize, max: usize) -> Result<(), CwError> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(CwError::invalid(format!(
            "The value of parameter {parameter} must be between {min} and {max} characters long."
        )));
    }
    Ok(())
}

fn put_metric_alarm(
    alarms: &mut BTreeMap<String, Alarm>,
    input: &Input,
    now: f64,
) -> Result<Output, CwError> {
    let name = input.required_str("AlarmName")?;
    length("AlarmName", name, 1, 255)?;
    if let Some(d) = input.str("AlarmDescription")? {
        length("AlarmDescription", d, 0, 1024)?;
    }
    input.bool("ActionsEnabled")?;
    for key in ["OKActions", "AlarmActions", "InsufficientDataActions"] {
        let actions = input.str_list(key)?.unwrap_or_default();
        if actions.len() > 5 {
            return Err(CwError::invalid(format!(
                "The parameter {key} can have at most 5 actions."
            )));
        }
        for a in &actions {
            length(key, a, 1, 1024)?;
        }
    }
    if let Some(t) = input.str("TreatMissingData")? {
        one_of("TreatMissingData", t, TREAT_MISSING_DATA)?;
    }
    if let Some(e) = input.str("EvaluateLowSampleCountPercentile")? {
        one_of(
            "EvaluateLowSampleCountPercentile",
            e,
            &["evaluate", "ignore"],
        )?;
    }
    let threshold = input.f64("Threshold")?;
    let threshold_metric = input.str("ThresholdMetricId")?;
    let evaluation_periods = input.int("EvaluationPeriods")?;
    let datapoints = input.int("DatapointsToAlarm")?;
    let period = input.int("Period")?;
    input.int("EvaluationInterval")?;
    // PromQL alarms (EvaluationCriteria) have no metric, comparison or threshold.
    let classic = !input.has("EvaluationCriteria");
    if classic {
        let op = input.required_str("ComparisonOperator")?;
        one_of("ComparisonOperator", op, COMPARISON_OPERATORS)?;
        let periods = evaluation_periods.ok_or_else(|| CwError::missing("EvaluationPeriods"))?;
        if periods < 1 {
            return Err(CwError::invalid(
                "The parameter EvaluationPeriods must be greater than or equal to 1.".to_owned(),
            ));
        }
        if let Some(d) = datapoints {
            if d < 1 || d > periods {
                return Err(CwError::invalid(format!(
                    "DatapointsToAlarm must be between 1 and EvaluationPeriods ({periods})."
                )));
            }
        }
        if threshold.is_none() && threshold_metric.is_none() {
            return Err(CwError::missing("Threshold"));
        }
        if threshold.is_some() && threshold_metric.is_some() {
            return Err(CwError::combination(
                "Threshold and ThresholdMetricId cannot both be specified.".to_owned(),
            ));
        }
        if let Some(p) = period {
            if periods.saturating_mul(p) > 604_800 {
                return Err(CwError::invalid(
                    "The evaluation range (Period * EvaluationPeriods) cannot exceed 7 days."
                        .to_owned(),
                ));
            }
        }
    }
    let single_metric = [
        "MetricName",
        "Namespace",
        "Statistic",
        "ExtendedStatistic",
        "Dimensions",
        "Period",
        "Unit",
    ];
    if input.has("Metrics") {
        if !matches!(input.get("Metrics"), Some(Value::Array(m)) if !m.is_empty()) {
            return Err(CwError::invalid(
                "The parameter Metrics must be a non-empty list.".to_owned(),
            ));
        }
        if let Some(k) = single_metric.iter().find(|k| input.has(k)) {
            return Err(CwError::combination(format!(
                "The parameter {k} cannot be specified together with Metrics."
            )));
        }
    } else if input.has("MetricName") || classic {
        validate_single_metric(input, period)?;
    }
    let tags = input.tags("Tags")?.unwrap_or_default();
    if tags.len() > 50 {
        return Err(CwError::invalid(
            "A resource can have at most 50 tags.".to_owned(),
        ));
    }

    let mut config: BTreeMap<String, Value> = ECHOED
        .iter()
        .filter_map(|k| input.get(k).map(|v| ((*k).to_owned(), v.clone())))
        .collect();
    // Numbers as the model types them (doubles are CBOR floats, integers CBOR integers).
    if let Some(t) = threshold {
        config.insert("Threshold".to_owned(), Value::Float(t));
    }
    config
        .entry("ActionsEnabled".to_owned())
        .or_insert(Value::Bool(true));
    for key in ["OKActions", "AlarmActions", "InsufficientDataActions"] {
        config
            .entry(key.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    if config.contains_key("MetricName") {
        config
            .entry("Dimensions".to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
    }

    match alarms.get_mut(name) {
        // An update: tags given here are ignored (as AWS does), the state stays.
        Some(alarm) => {
            alarm.config = config;
            alarm.configuration_updated = now;
        }
        None => {
            alarms.insert(
                name.to_owned(),
                Alarm {
                    config,
                    tags: tags.into_iter().collect(),
                    state_value: "INSUFFICIENT_DATA",
                    state_reason: "Unchecked: Initial alarm creation".to_owned(),
                    state_updated: now,
                    configuration_updated: now,
                },
            );
        }
    }
    Ok(Output::Unit)
}

fn validate_single_metric(input: &Input, period: Option<i64>) -> Result<(), CwError> {
    let metric = input.required_str("MetricName")?;
    length("MetricName", metric, 1, 255)?;
    let namespace = input.required_str("Namespace")?;
    length("Namespace", namespace, 1, 255)?;
    match (input.str("Statistic")?, input.str("ExtendedStatistic")?) {
        (Some(_), Some(_)) => {
            return Err(CwError::combination(
                "Statistic and ExtendedStatistic cannot both be specified.".to_owned(),
            ))
        }
        (None, None) => return Err(CwError::missing("Statistic")),
        (Some(s), None) => one_of("Statistic", s, STATISTICS)?,
        (None, Some(_)) => {}
    }
    let period = period.ok_or_else(|| CwError::missing("Period"))?;
    if !(matches!(period, 10 | 20 | 30) || (period >= 60 && period % 60 == 0)) {
        return Err(CwError::invalid(format!(
            "The value {period} for parameter Period is not valid: use 10, 20, 30 or a multiple of 60."
        )));
    }
    if let Some(u) = input.str("Unit")? {
        one_of("Unit", u, UNITS)?;
    }
    let dimensions = input
        .pairs("Dimensions", "Name", "Value")?
        .unwrap_or_default();
    if dimensions.len() > 30 {
        return Err(CwError::invalid(
            "The parameter Dimensions can have at most 30 dimensions.".to_owned(),
        ));
    }
    for (name, value) in &dimensions {
        length("Dimensions.member.Name", name, 1, 255)?;
        let value = value
            .as_deref()
            .ok_or_else(|| CwError::missing("Dimensions.member.Value"))?;
        length("Dimensions.member.Value", value, 1, 1024)?;
    }
    Ok(())
}

fn describe_alarms(
    alarms: &BTreeMap<String, Alarm>,
    input: &Input,
    scope: &Scope,
) -> Result<Output, CwError> {
    let names = input.str_list("AlarmNames")?;
    let prefix = input.str("AlarmNamePrefix")?;
    if names.is_some() && prefix.is_some() {
        return Err(CwError::combination(
            "AlarmNames and AlarmNamePrefix cannot both be specified.".to_owned(),
        ));
    }
    if names.as_ref().is_some_and(|n| n.len() > 100) {
        return Err(CwError::invalid(
            "At most 100 alarm names can be given.".to_owned(),
        ));
    }
    if let Some(p) = prefix {
        length("AlarmNamePrefix", p, 1, 255)?;
    }
    let state = input.str("StateValue")?;
    if let Some(s) = state {
        one_of("StateValue", s, STATE_VALUES)?;
    }
    let action_prefix = input.str("ActionPrefix")?;
    let types = input.str_list("AlarmTypes")?;
    for t in types.iter().flatten() {
        one_of(
            "AlarmTypes",
            t,
            &["CompositeAlarm", "MetricAlarm", "LogAlarm"],
        )?;
    }
    let wants = |t: &str| match &types {
        Some(types) => types.iter().any(|x| x == t),
        None => t == "MetricAlarm",
    };
    let max = match input.int("MaxRecords")? {
        None => 50,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(CwError::invalid(format!(
                "The value {n} for parameter MaxRecords is not valid: use 1 to 100."
            )))
        }
    };
    let after = input.str("NextToken")?.map(decode_token).transpose()?;
    // Only metric alarms are served: composite alarms have no children or parents here.
    let family = input.has("ChildrenOfAlarmName") || input.has("ParentsOfAlarmName");

    let mut selected = alarms
        .iter()
        .filter(|_| wants("MetricAlarm") && !family)
        .filter(|(name, _)| after.as_ref().is_none_or(|a| name.as_str() > a.as_str()))
        .filter(|(name, _)| names.as_ref().is_none_or(|n| n.contains(name)))
        .filter(|(name, _)| prefix.is_none_or(|p| name.starts_with(p)))
        .filter(|(_, a)| state.is_none_or(|s| a.state_value == s))
        .filter(|(_, a)| action_prefix.is_none_or(|p| a.has_action_with_prefix(p)));
    let page: Vec<(&String, &Alarm)> = selected.by_ref().take(max).collect();
    let more = selected.next().is_some();

    let mut out = vec![(
        "MetricAlarms",
        Value::Array(page.iter().map(|(_, a)| a.render(scope)).collect()),
    )];
    if wants("CompositeAlarm") {
        out.push(("CompositeAlarms", Value::Array(Vec::new())));
    }
    if wants("LogAlarm") {
        out.push(("LogAlarms", Value::Array(Vec::new())));
    }
    if let (true, Some((last, _))) = (more, page.last()) {
        out.push(("NextToken", text(&encode_token(last))));
    }
    Ok(Output::Structure(out))
}

impl Alarm {
    fn has_action_with_prefix(&self, prefix: &str) -> bool {
        ["OKActions", "AlarmActions", "InsufficientDataActions"]
            .iter()
            .filter_map(|k| match self.config.get(*k) {
                Some(Value::Array(a)) => Some(a),
                _ => None,
            })
            .flatten()
            .any(|v| matches!(v, Value::Text(t) if t.starts_with(prefix)))
    }

    fn render(&self, scope: &Scope) -> Value {
        let name = match self.config.get("AlarmName") {
            Some(Value::Text(n)) => n.as_str(),
            _ => "",
        };
        let mut m: Vec<(Value, Value)> = self
            .config
            .iter()
            .map(|(k, v)| (text(k), v.clone()))
            .collect();
        m.extend([
            (text("AlarmArn"), text(&scope.arn(name))),
            (
                text("AlarmConfigurationUpdatedTimestamp"),
                timestamp(self.configuration_updated),
            ),
            (text("StateValue"), text(self.state_value)),
            (text("StateReason"), text(&self.state_reason)),
            (text("StateUpdatedTimestamp"), timestamp(self.state_updated)),
            (
                text("StateTransitionedTimestamp"),
                timestamp(self.state_updated),
            ),
        ]);
        Value::Map(m)
    }
}

/// `NextToken`: the last name of the previous page, hex-encoded.
fn encode_token(last: &str) -> String {
    last.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(token: &str) -> Result<String, CwError> {
    if token.is_empty() || token.len() % 2 != 0 || !token.is_ascii() {
        return Err(CwError::invalid_next_token());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| CwError::invalid_next_token())?;
    String::from_utf8(bytes).map_err(|_| CwError::invalid_next_token())
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

/// A Smithy timestamp in RPC v2 CBOR: tag 1 around epoch seconds.
fn timestamp(epoch_seconds: f64) -> Value {
    Value::Tag(1, Box::new(Value::Float(epoch_seconds)))
}

/// Members of a list of two-member structures: (first, second if present).
type Pairs = Vec<(String, Option<String>)>;

/// A request body: the top-level members (CBOR nulls dropped, as absent).
struct Input(BTreeMap<String, Value>);

impl Input {
    fn parse(body: &[u8]) -> Result<Input, CwError> {
        if body.is_empty() {
            return Ok(Input(BTreeMap::new()));
        }
        let value: Value = ciborium::from_reader(body)
            .map_err(|e| CwError::serialization(format!("the request body is not CBOR: {e}")))?;
        let Value::Map(entries) = value else {
            return Err(CwError::serialization(
                "the request body must be a CBOR map".to_owned(),
            ));
        };
        let mut members = BTreeMap::new();
        for (k, v) in entries {
            let Value::Text(k) = k else {
                return Err(CwError::serialization(
                    "the request body's keys must be text".to_owned(),
                ));
            };
            if !v.is_null() {
                members.insert(k, v);
            }
        }
        Ok(Input(members))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    fn has(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    fn wrong_type(key: &str, what: &str) -> CwError {
        CwError::invalid(format!("The parameter {key} must be {what}."))
    }

    fn str(&self, key: &str) -> Result<Option<&str>, CwError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Text(s)) => Ok(Some(s)),
            Some(_) => Err(Input::wrong_type(key, "a string")),
        }
    }

    fn required_str(&self, key: &str) -> Result<&str, CwError> {
        match self.str(key)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(CwError::missing(key)),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, CwError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Integer(i)) => i64::try_from(*i)
                .map(Some)
                .map_err(|_| Input::wrong_type(key, "an integer")),
            Some(_) => Err(Input::wrong_type(key, "an integer")),
        }
    }

    fn f64(&self, key: &str) -> Result<Option<f64>, CwError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Float(f)) if f.is_finite() => Ok(Some(*f)),
            Some(Value::Integer(i)) => Ok(Some(i128::from(*i) as f64)),
            Some(_) => Err(Input::wrong_type(key, "a finite number")),
        }
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, CwError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(Input::wrong_type(key, "a boolean")),
        }
    }

    fn str_list(&self, key: &str) -> Result<Option<Vec<String>>, CwError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Text(s) => Ok(s.clone()),
                    _ => Err(Input::wrong_type(key, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(Input::wrong_type(key, "a list of strings")),
        }
    }

    /// A list of two-member structures (`Tag`, `Dimension`): (first, second if present).
    fn pairs(&self, key: &str, first: &str, second: &str) -> Result<Option<Pairs>, CwError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let what = format!("a list of structures with {first} and {second}");
        let Value::Array(items) = value else {
            return Err(Input::wrong_type(key, &what));
        };
        let mut out = Vec::new();
        for item in items {
            let Value::Map(members) = item else {
                return Err(Input::wrong_type(key, &what));
            };
            let member = |name: &str| -> Result<Option<String>, CwError> {
                match members.iter().find(|(k, _)| k.as_text() == Some(name)) {
                    None | Some((_, Value::Null)) => Ok(None),
                    Some((_, Value::Text(s))) => Ok(Some(s.clone())),
                    Some(_) => Err(Input::wrong_type(key, &what)),
                }
            };
            let a =
                member(first)?.ok_or_else(|| CwError::missing(&format!("{key}.member.{first}")))?;
            out.push((a, member(second)?));
        }
        Ok(Some(out))
    }

    /// `Tags`: validated (key 1-128 characters, value 0-256 and required).
    fn tags(&self, key: &str) -> Result<Option<Vec<(String, String)>>, CwError> {
        let Some(pairs) = self.pairs(key, "Key", "Value")? else {
            return Ok(None);
        };
        pairs
            .into_iter()
            .map(|(k, v)| {
                length("Tags.member.Key", &k, 1, 128)?;
                let v = v.ok_or_else(|| CwError::missing(&format!("{key}.member.Value")))?;
                length("Tags.member.Value", &v, 0, 256)?;
                Ok((k, v))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cbor(v: Value) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::into_writer(&v, &mut out).unwrap();
        out
    }

    fn map(entries: Vec<(&str, Value)>) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (text(k), v)).collect())
    }

    fn call(state: &mut CloudWatchState, op: &str, body: Value) -> Result<Output, CwError> {
        state.handle(
            "123456789012",
            "eu-west-1",
            op,
            &cbor(body),
            1_700_000_000.5,
        )
    }

    fn alarm(name: &str) -> Value {
        map(vec![
            ("AlarmName", text(name)),
            ("MetricName", text("CPUUtilization")),
            ("Namespace", text("AWS/EC2")),
            ("Statistic", text("Average")),
            ("Period", Value::Integer(300.into())),
            ("EvaluationPeriods", Value::Integer(2.into())),
            ("Threshold", Value::Integer(80.into())),
            ("ComparisonOperator", text("GreaterThanThreshold")),
        ])
    }

    #[test]
    fn put_then_describe_renders_the_model_types() {
        let mut s = CloudWatchState::default();
        assert_eq!(
            call(&mut s, "PutMetricAlarm", alarm("a")).unwrap(),
            Output::Unit
        );
        let Output::Structure(out) = call(&mut s, "DescribeAlarms", map(vec![])).unwrap() else {
            panic!("structure expected")
        };
        let Value::Array(alarms) = &out[0].1 else {
            panic!("MetricAlarms")
        };
        let Value::Map(a) = &alarms[0] else { panic!() };
        let get = |k: &str| {
            a.iter()
                .find(|(x, _)| x.as_text() == Some(k))
                .unwrap()
                .1
                .clone()
        };
        // An integer threshold is stored as the double the model says.
        assert_eq!(get("Threshold"), Value::Float(80.0));
        assert_eq!(
            get("AlarmArn"),
            text("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:a")
        );
        assert_eq!(get("StateUpdatedTimestamp"), timestamp(1_700_000_000.5));
        assert_eq!(get("ActionsEnabled"), Value::Bool(true));
        assert_eq!(get("Dimensions"), Value::Array(vec![]));
    }

    #[test]
    fn errors_carry_the_query_codes() {
        let mut s = CloudWatchState::default();
        let e = call(&mut s, "PutMetricAlarm", map(vec![])).unwrap_err();
        assert_eq!(e.code(), "MissingParameter");
        let mut bad = alarm("a");
        if let Value::Map(m) = &mut bad {
            m.push((text("Statistic"), text("Median")));
        }
        // Duplicate keys: the last wins in the BTreeMap.
        let e = call(&mut s, "PutMetricAlarm", bad).unwrap_err();
        assert_eq!(e.code(), "InvalidParameterValue", "{}", e.message());
        let e = call(
            &mut s,
            "ListTagsForResource",
            map(vec![(
                "ResourceARN",
                text("arn:aws:cloudwatch:eu-west-1:123456789012:alarm:x"),
            )]),
        )
        .unwrap_err();
        assert_eq!(e.code(), "ResourceNotFoundException");
        let r = e.response("rid");
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            r.headers()["x-amzn-query-error"],
            "ResourceNotFoundException;Sender"
        );
        assert_eq!(r.headers()["smithy-protocol"], "rpc-v2-cbor");
        let body: Value = ciborium::from_reader(&r.body()[..]).unwrap();
        let Value::Map(m) = body else { panic!() };
        assert!(m.contains(&(
            text("__type"),
            text("com.amazonaws.cloudwatch#ResourceNotFoundException")
        )));
        let e = call(
            &mut s,
            "DescribeAlarms",
            map(vec![("NextToken", text("zz"))]),
        )
        .unwrap_err();
        assert_eq!(e.code(), "InvalidNextToken");
        let e = call(&mut s, "PutMetricData", map(vec![])).unwrap_err();
        assert_eq!(e.response("x").status(), StatusCode::NOT_FOUND);
        let e = s
            .handle("1", "r", "DescribeAlarms", b"\xff\xff", 0.0)
            .unwrap_err();
        assert_eq!(e.code(), "SerializationException");
    }

    #[test]
    fn tokens_round_trip() {
        for name in ["a", "alarm:with/odd chars é"] {
            assert_eq!(decode_token(&encode_token(name)).unwrap(), name);
        }
    }
}
