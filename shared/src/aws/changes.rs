//! Change counting in one place: every client of a phase invocation carries a
//! [`ChangeCounter`], an SDK interceptor that counts the calls that changed something. A phase
//! never counts its AWS calls by hand, so its `changes` cannot miss one.
//!
//! A call counts when its operation is not a read ([`read_only::is_read_operation`], the rule
//! the read-only guard applies) and it succeeded: a create refused as "already exists" or a
//! delete of something already gone changed nothing. Retries are one call.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use super::read_only;

/// The count of successful mutating calls made through the clients that carry it.
#[derive(Clone, Debug, Default)]
pub struct ChangeCounter(Arc<AtomicU32>);

impl ChangeCounter {
    pub fn get(&self) -> u32 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Intercept for ChangeCounter {
    fn name(&self) -> &'static str {
        "ChangeCounter"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let succeeded = matches!(context.output_or_error(), Some(Ok(_)));
        let mutating = cfg
            .load::<Metadata>()
            .is_some_and(|m| !read_only::is_read_operation(m.name()));
        if succeeded && mutating {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_kms::operation::create_key::{CreateKeyError, CreateKeyOutput};
    use aws_sdk_kms::operation::describe_key::DescribeKeyOutput;
    use aws_sdk_kms::types::error::LimitExceededException;
    use aws_smithy_mocks::{create_mock_http_client, mock, MockResponseInterceptor, RuleMode};

    #[tokio::test]
    async fn successful_changes_count_and_reads_and_failures_do_not() {
        let created = mock!(aws_sdk_kms::Client::create_key)
            .sequence()
            .output(|| CreateKeyOutput::builder().build())
            .error(|| {
                CreateKeyError::LimitExceededException(LimitExceededException::builder().build())
            })
            .build();
        let described = mock!(aws_sdk_kms::Client::describe_key)
            .then_output(|| DescribeKeyOutput::builder().build());
        let mocks = MockResponseInterceptor::new()
            .rule_mode(RuleMode::MatchAny)
            .with_rule(&created)
            .with_rule(&described);
        let counter = ChangeCounter::default();
        let config = aws_sdk_kms::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::Credentials::for_tests())
            .http_client(create_mock_http_client())
            .interceptor(mocks)
            .interceptor(counter.clone())
            .build();
        let kms = aws_sdk_kms::Client::from_conf(config);

        kms.create_key().send().await.expect("created");
        kms.describe_key().key_id("k").send().await.expect("read");
        kms.create_key().send().await.expect_err("refused");

        assert_eq!(counter.get(), 1, "one successful CreateKey");
    }
}
