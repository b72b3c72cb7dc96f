//! The onboarding checks of a new tenant: its own rules (with the platform's region), and name
//! collisions and prefix overlaps with every tenant that is not offboarded, or whose data is
//! still kept. Pure: the caller reads the records.

use crate::spec::{PlatformSpec, TenantSpec};
use crate::store::{TenantRecord, TenantState, Versioned};
use crate::validate::{self, rules, Issue};
use std::collections::BTreeSet;

/// Onboarding a tenant onto `platform` next to its tenant `records`: the tenant's own rules (with
/// the platform's region) plus name collisions and prefix overlaps with every tenant that is not
/// offboarded: those of the platform's spec and those of the records. A tenant offboarded with
/// `retainData` still counts, since its data is still there: its prefixes stay taken, and its
/// name may come back only as the same tenant (the same owners), which reclaims the data.
/// Records of `request_id` itself (an earlier delivery of the same request) do not count.
pub(super) fn onboarding_issues(
    platform: &PlatformSpec,
    records: &[Versioned<TenantRecord>],
    tenant: &TenantSpec,
    request_id: &str,
) -> Vec<Issue> {
    let mut issues = Vec::new();
    let offboarded = |r: &TenantRecord| r.state == TenantState::Offboarded;
    let holds_data = |r: &TenantRecord| offboarded(r) && r.retain_data;
    // Released names: offboarded without data, or this tenant reclaiming its own kept data.
    let released: Vec<&str> = records
        .iter()
        .map(|r| &r.value)
        .filter(|r| offboarded(r) && (!r.retain_data || r.name == tenant.name))
        .map(|r| r.name.as_str())
        .collect();
    if let Some(kept) = records
        .iter()
        .map(|r| &r.value)
        .find(|r| holds_data(r) && r.name == tenant.name)
    {
        let owners = |t: &TenantSpec| t.owners.iter().cloned().collect::<BTreeSet<_>>();
        if owners(&kept.spec) != owners(tenant) {
            issues.push(Issue::new(
                "$.name",
                rules::RETAINED_DATA,
                format!(
                    "tenant {:?} was offboarded with retainData and its data (S3 prefix {:?}, \
                     its KMS key) is still kept: only the same tenant (the same owners) may take \
                     the name back, which hands it that data; to free the name, onboard it with \
                     its former owners and offboard it without retainData",
                    tenant.name,
                    kept.spec.effective_s3_prefix()
                ),
            ));
        }
    }
    if let Some(issue) = trusted_name_taken(platform, records, tenant) {
        issues.push(issue);
    }
    let mut effective = platform.clone();
    effective
        .tenants
        .retain(|t| !released.contains(&t.name.as_str()));
    for record in records {
        let r = &record.value;
        if (!offboarded(r) || holds_data(r))
            && !released.contains(&r.name.as_str())
            && r.request_id != request_id
            && !effective.tenants.iter().any(|t| t.name == r.name)
        {
            effective.tenants.push(r.spec.clone());
        }
    }
    if let Err(errors) = validate::validate_new_tenant(&effective, tenant) {
        issues.extend(errors.0);
    }
    issues
}

/// A name other tenants' `allowFrom` rules still name, taken by a tenant that is not the one
/// they trusted: refused unless the owners are those of the last tenant of that name (as for
/// retained data). Otherwise whoever onboards a departed tenant's name would be let into every
/// namespace that trusted it.
fn trusted_name_taken(
    platform: &PlatformSpec,
    records: &[Versioned<TenantRecord>],
    tenant: &TenantSpec,
) -> Option<Issue> {
    let live = |r: &TenantRecord| r.state != TenantState::Offboarded;
    let names_it = |t: &TenantSpec| t.allow_from.iter().any(|a| a.tenant == tenant.name);
    let mut trusting: Vec<&str> = platform
        .tenants
        .iter()
        .filter(|t| names_it(t))
        .map(|t| t.name.as_str())
        .collect();
    trusting.extend(
        records
            .iter()
            .map(|r| &r.value)
            .filter(|r| live(r) && names_it(&r.spec))
            .map(|r| r.name.as_str()),
    );
    trusting.retain(|n| *n != tenant.name);
    // Only a departed name: one still held is refused as a duplicate.
    let mine = || {
        records
            .iter()
            .map(|r| &r.value)
            .filter(|r| r.name == tenant.name)
    };
    if mine().any(live) {
        return None;
    }
    let former = mine().max_by_key(|r| r.updated_at)?;
    let owners = |t: &TenantSpec| t.owners.iter().cloned().collect::<BTreeSet<_>>();
    if trusting.is_empty() || owners(&former.spec) == owners(tenant) {
        return None;
    }
    Some(Issue::new(
        "$.name",
        rules::ALLOW_FROM,
        format!(
            "tenant name {:?} is trusted by the allowFrom rules of {trusting:?}, which were granted \
             to the tenant that held it: only that tenant's owners may take the name back",
            tenant.name
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn example_spec() -> Value {
        let text = include_str!("../../../../../examples/platform.json");
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn a_name_other_tenants_trust_goes_back_only_to_its_former_owners() {
        let platform: PlatformSpec = serde_json::from_value(example_spec()).unwrap();
        let tenant = |name: &str, owner: Option<&str>| -> TenantSpec {
            let owners: Vec<String> = owner
                .map(|o| format!("arn:aws:iam::111122223333:role/{o}"))
                .into_iter()
                .collect();
            serde_json::from_value(json!({"name": name, "costCentre": "cc", "owners": owners}))
                .unwrap()
        };
        // checkout left (its record has no owners); ledger's allowFrom still names it.
        let records = [record("checkout", TenantState::Offboarded, "on-1")];
        let impostor =
            trusted_name_taken(&platform, &records, &tenant("checkout", Some("mallory")))
                .expect("refused");
        assert_eq!(
            (impostor.path.as_str(), impostor.rule.as_str()),
            ("$.name", rules::ALLOW_FROM)
        );
        assert!(impostor.message.contains("ledger"), "{}", impostor.message);
        assert!(trusted_name_taken(&platform, &records, &tenant("checkout", None)).is_none());
        assert!(trusted_name_taken(&platform, &records, &tenant("payroll", Some("x"))).is_none());
    }

    fn record(name: &str, state: TenantState, request: &str) -> Versioned<TenantRecord> {
        let spec: TenantSpec =
            serde_json::from_value(json!({"name": name, "costCentre": "cc"})).unwrap();
        Versioned {
            value: TenantRecord::new(spec, state, request),
            version: 1,
            updated_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn onboarding_is_checked_against_live_tenants_only() {
        let mut platform: PlatformSpec = serde_json::from_value(example_spec()).unwrap();
        let listed: TenantSpec =
            serde_json::from_value(json!({"name": "listed", "costCentre": "cc"})).unwrap();
        platform.tenants = vec![listed];
        let new = |name: &str| -> TenantSpec {
            serde_json::from_value(json!({"name": name, "costCentre": "cc"})).unwrap()
        };
        let records = vec![
            record("active", TenantState::Active, "r-1"),
            record("gone", TenantState::Offboarded, "r-2"),
            record("mine", TenantState::Requested, "req-me"),
        ];
        let dup = onboarding_issues(&platform, &records, &new("active"), "req-me");
        assert!(
            dup.iter()
                .any(|i| i.path == "$.name" && i.rule == rules::DUPLICATE_NAME),
            "{dup:?}"
        );
        assert!(!onboarding_issues(&platform, &records, &new("listed"), "req-me").is_empty());
        assert!(onboarding_issues(&platform, &records, &new("gone"), "req-me").is_empty());
        assert!(onboarding_issues(&platform, &records, &new("mine"), "req-me").is_empty());
        assert!(!onboarding_issues(&platform, &records, &new("mine"), "req-other").is_empty());
        // An offboarded tenant of the platform's spec may be onboarded again.
        let records = vec![record("listed", TenantState::Offboarded, "r-3")];
        assert!(onboarding_issues(&platform, &records, &new("listed"), "req-me").is_empty());
        // Prefixes that nest with a live tenant's are refused.
        let mut nested = new("other");
        nested.s3_prefix = Some("tenants/active/x/".into());
        let records = vec![record("active", TenantState::Active, "r-1")];
        let issues = onboarding_issues(&platform, &records, &nested, "req-me");
        assert!(issues.iter().any(|i| i.path == "$.s3Prefix"), "{issues:?}");
    }

    #[test]
    fn retained_data_keeps_its_name_and_prefixes_until_released() {
        let platform: PlatformSpec = serde_json::from_value(example_spec()).unwrap();
        let tenant = |name: &str, owner: &str| -> TenantSpec {
            serde_json::from_value(json!({
                "name": name, "costCentre": "cc",
                "owners": [format!("arn:aws:iam::111122223333:role/{owner}")],
            }))
            .unwrap()
        };
        let mut kept = record("ledger", TenantState::Offboarded, "r-1");
        kept.value.spec = tenant("ledger", "ledger-team");
        kept.value.retain_data = true;
        let records = vec![kept];
        // Another team taking the name would get the kept prefix and key.
        let taken = onboarding_issues(&platform, &records, &tenant("ledger", "intruder"), "r-2");
        assert!(
            taken
                .iter()
                .any(|i| i.path == "$.name" && i.rule == rules::RETAINED_DATA),
            "{taken:?}"
        );
        // The same tenant reclaims its data.
        let back = onboarding_issues(&platform, &records, &tenant("ledger", "ledger-team"), "r-2");
        assert!(back.is_empty(), "{back:?}");
        // The kept prefix stays taken for every other name.
        let mut nested = tenant("other", "intruder");
        nested.s3_prefix = Some("tenants/ledger/".into());
        let issues = onboarding_issues(&platform, &records, &nested, "r-2");
        assert!(
            issues
                .iter()
                .any(|i| i.path == "$.s3Prefix" && i.rule == rules::PREFIX_OVERLAP),
            "{issues:?}"
        );
        // Released data frees the name.
        let mut released = records[0].clone();
        released.value.retain_data = false;
        let free = onboarding_issues(&platform, &[released], &tenant("ledger", "intruder"), "r-2");
        assert!(free.is_empty(), "{free:?}");
    }
}
