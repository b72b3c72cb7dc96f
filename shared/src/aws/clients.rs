//! The AWS clients every handler uses, built once per cold start ([`crate::deps::Deps`]) and
//! handed to each invocation scoped to the platform's region ([`Clients::scoped`]), read-only
//! for `observe`. Unit tests build them from `aws-smithy-mocks` rules instead
//! (`phases::scenario`), so phase logic runs without the local stack.

use aws_config::{Region, SdkConfig};

use super::changes::ChangeCounter;
use super::read_only;

/// Declares [`Clients`] and [`Clients::scoped`] over every service client (one line per
/// service), so that adding a service is one line.
macro_rules! clients {
    ($($field:ident: $krate:ident),* $(,)?) => {
        /// One client per AWS service Tenantry calls.
        #[derive(Clone, Debug)]
        pub struct Clients {
            $(pub $field: $krate::Client,)*
        }

        impl Clients {
            /// The same clients, each call that changes something counted by `counter`.
            pub fn counting(&self, counter: &ChangeCounter) -> Clients {
                Clients {
                    $($field: {
                        let config = self.$field.config().to_builder();
                        $krate::Client::from_conf(config.interceptor(counter.clone()).build())
                    },)*
                }
            }

            /// The same clients acting with `credentials` (a session in a platform's target
            /// account, [`super::target`]); interceptors and mocks are kept.
            pub fn with_credentials(
                &self,
                credentials: aws_credential_types::Credentials,
            ) -> Clients {
                Clients {
                    $($field: {
                        let config = self.$field.config().to_builder();
                        $krate::Client::from_conf(
                            config.credentials_provider(credentials.clone()).build(),
                        )
                    },)*
                }
            }

            /// The same clients in `region` (a function may provision a platform in another
            /// region than its own) and, with `read_only`, refusing any call that could change
            /// something before it is sent ([`read_only::guard`]). Interceptors (the mocks of
            /// unit tests) are kept.
            pub fn scoped(&self, region: &str, read_only: bool) -> Clients {
                Clients {
                    $($field: {
                        let config = self.$field.config();
                        let mut builder = config
                            .to_builder()
                            .region(Region::new(region.to_owned()));
                        if read_only {
                            builder = builder.http_client(read_only::guard(config.http_client()));
                        }
                        $krate::Client::from_conf(builder.build())
                    },)*
                }
            }
        }
    };
}

clients! {
    cloudwatch: aws_sdk_cloudwatch,
    dynamodb: aws_sdk_dynamodb,
    ec2: aws_sdk_ec2,
    ecr: aws_sdk_ecr,
    eks: aws_sdk_eks,
    iam: aws_sdk_iam,
    kms: aws_sdk_kms,
    logs: aws_sdk_cloudwatchlogs,
    s3: aws_sdk_s3,
    secrets: aws_sdk_secretsmanager,
    securityhub: aws_sdk_securityhub,
    sns: aws_sdk_sns,
    sts: aws_sdk_sts,
}

impl Clients {
    /// Every client from one configuration.
    pub fn new(aws: &SdkConfig) -> Clients {
        // The local stack addresses buckets by path; AWS by virtual host.
        let s3 = aws_sdk_s3::config::Builder::from(aws)
            .force_path_style(aws.endpoint_url().is_some())
            .build();
        Clients {
            cloudwatch: aws_sdk_cloudwatch::Client::new(aws),
            dynamodb: aws_sdk_dynamodb::Client::new(aws),
            ec2: aws_sdk_ec2::Client::new(aws),
            ecr: aws_sdk_ecr::Client::new(aws),
            eks: aws_sdk_eks::Client::new(aws),
            iam: aws_sdk_iam::Client::new(aws),
            kms: aws_sdk_kms::Client::new(aws),
            logs: aws_sdk_cloudwatchlogs::Client::new(aws),
            s3: aws_sdk_s3::Client::from_conf(s3),
            secrets: aws_sdk_secretsmanager::Client::new(aws),
            securityhub: aws_sdk_securityhub::Client::new(aws),
            sns: aws_sdk_sns::Client::new(aws),
            sts: aws_sdk_sts::Client::new(aws),
        }
    }
}
