//! The observability phase's walk of its alarms ([`crate::resources::alarm`]): each defined
//! alarm created or corrected, then the platform's alarms no longer defined deleted.

use serde_json::json;

use super::{owned, Clients, Desired};
use crate::error::FunctionError;
use crate::naming::Names;
use crate::phases::PhaseContext;
use crate::plan::{Phase, ALARMS};
use crate::resources::alarm::{self, AlarmView};
use crate::resources::Kind;
use crate::store::ResourceRecord;

/// The alarms the platform wants (none when alarms are off).
pub fn desired_alarms(d: &Desired) -> Vec<alarm::Desired> {
    match &d.alarm_topic {
        Some(topic) => ALARMS
            .iter()
            .map(|def| alarm::Desired {
                view: AlarmView::desired(def, &d.names, topic),
                tags: d.tags.clone(),
            })
            .collect(),
        None => Vec::new(),
    }
}

/// Whether `name` is one of the alarm names the platform can have (whatever the spec says now).
fn defined_name(names: &Names, name: &str) -> bool {
    ALARMS.iter().any(|def| names.alarm(def.name) == name)
}

/// The alarm's ARN, derived from its name (what an alarm that did not report one is tagged by).
fn derived_arn(d: &Desired, name: &str) -> String {
    d.arn("cloudwatch", &format!("alarm:{name}"))
}

/// Creates or corrects the platform's alarms and removes stale ones; returns the alarm names.
pub(super) async fn ensure(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<Vec<String>, FunctionError> {
    let desired = desired_alarms(d);
    let mut existing = alarm::find_all(c.cloudwatch(), &d.names.alarm("")).await?;
    let mut names = Vec::new();
    for want in &desired {
        let name = &want.view.name;
        let resource = format!("{}/{name}", Kind::Alarm);
        let mut arn = derived_arn(d, name);
        match existing.remove(name) {
            None => {
                if !ctx.differs(&resource, "exists", json!(true), json!(false)) {
                    continue;
                }
                alarm::create(c.cloudwatch(), want).await?;
            }
            Some(mut live) => {
                alarm::read_tags(c.cloudwatch(), &mut live, &arn).await?;
                for field in ctx.repairs(&resource, want.differences(&live)) {
                    alarm::repair(c.cloudwatch(), want, &live, field).await?;
                }
                arn = live.arn.unwrap_or(arn);
            }
        }
        let mut record = ResourceRecord::new(Kind::Alarm, name, Phase::Observability.as_str());
        record.arn = Some(arn);
        record.tags = want.tags.clone();
        record.attributes = Some(json!({ "metric": want.view.metric }));
        ctx.record(record).await?;
        names.push(name.clone());
    }
    // Left over under the platform's prefix: alarms no longer defined (or alarms turned off).
    let mut stale = Vec::new();
    for (name, live) in existing {
        if !ours(c, d, live, &name).await? {
            continue;
        }
        let resource = format!("{}/{name}", Kind::Alarm);
        if ctx.differs(&resource, "exists", json!(false), json!(true)) {
            stale.push(name);
        }
    }
    delete_names(ctx, c, &stale).await?;
    Ok(names)
}

/// Whether an alarm under the platform's prefix is the platform's: one of its defined names, or
/// tagged with it (the prefix `tenantry-<stem>-` may also begin another platform's names).
async fn ours(
    c: &Clients,
    d: &Desired,
    mut live: alarm::Live,
    name: &str,
) -> Result<bool, FunctionError> {
    if defined_name(&d.names, name) {
        return Ok(true);
    }
    alarm::read_tags(c.cloudwatch(), &mut live, &derived_arn(d, name)).await?;
    Ok(live.tags.is_some_and(|tags| owned(&tags, &d.platform_id)))
}

/// Deletes every alarm of the platform (defined names, and stale ones tagged with it).
pub(super) async fn delete(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    d: &Desired,
) -> Result<(), FunctionError> {
    let existing = alarm::find_all(c.cloudwatch(), &d.names.alarm("")).await?;
    let mut doomed = Vec::new();
    for (name, live) in existing {
        if ours(c, d, live, &name).await? {
            doomed.push(name);
        }
    }
    delete_names(ctx, c, &doomed).await?;
    for def in ALARMS {
        ctx.forget(Kind::Alarm, &d.names.alarm(def.name)).await?;
    }
    Ok(())
}

async fn delete_names(
    ctx: &mut PhaseContext<'_>,
    c: &Clients,
    names: &[String],
) -> Result<(), FunctionError> {
    alarm::remove(c.cloudwatch(), names).await?;
    for name in names {
        ctx.forget(Kind::Alarm, name).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_platforms_alarm_names_are_defined_names() {
        let spec = serde_json::from_value(json!({
            "id": "payments", "environment": "prod", "region": "us-east-1"
        }))
        .expect("spec");
        let n = Names::new(&spec);
        assert!(defined_name(&n, "tenantry-payments-prod-failed-nodes"));
        assert!(!defined_name(&n, "tenantry-payments-prod-pod-restarts"));
        assert!(!defined_name(&n, "tenantry-payments-prod-x-failed-nodes"));
    }
}
