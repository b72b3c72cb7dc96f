//! The AWS clients a handler uses, each built the first time it is asked for and then kept: the
//! handler's [`Clients`] live as long as its cold start ([`crate::deps::Deps`]), and each
//! invocation derives its own from them, scoped to the platform's region, read-only for
//! `observe` and counting changes ([`Clients::scoped`], [`Clients::counting`]). A derived set
//! builds only the clients its invocation calls, so a network phase never builds an S3 client,
//! and a binary whose handler makes no EKS call links no code that builds an EKS client (only
//! the drop glue of the empty slot remains).
//!
//! Unit tests hand in clients built ahead from `aws-smithy-mocks` rules ([`Each`], used by
//! `phases::scenario`), so phase logic runs without the local stack.

use std::fmt;
use std::sync::{Arc, OnceLock};

use aws_config::{Region, SdkConfig};
use aws_credential_types::Credentials;

use super::changes::ChangeCounter;
use super::read_only;

/// Where a set of clients gets each client from.
enum Source {
    /// Built from this configuration.
    Config(Box<SdkConfig>),
    /// Handed in, all of them ([`Each`]).
    Given,
    /// The client of the same service in `from`, changed by `layer`.
    Derived { from: Clients, layer: Layer },
}

/// What a derived set changes in each client's configuration.
enum Layer {
    /// Each call that changes something is counted.
    Counting(ChangeCounter),
    /// Calls act with these credentials (a session in a platform's target account), except the
    /// state store's, which stays in Tenantry's account.
    TargetAccount(Credentials),
    /// Calls go to `region` and, with `read_only`, any call that could change something fails
    /// before it is sent ([`read_only::guard`]).
    Scoped { region: String, read_only: bool },
}

/// Declares [`Clients`] (one lazily built client per service, with its accessor) and [`Each`]
/// over every service client, one line per service, so that adding a service is one line.
/// A service whose client needs more than the shared configuration names its builder
/// (`=> builder`).
macro_rules! clients {
    (@build $aws:expr, $krate:ident) => { $krate::Client::new($aws) };
    (@build $aws:expr, $krate:ident, $build:path) => { $build($aws) };
    ($($field:ident: $krate:ident $(=> $build:path)?),* $(,)?) => {
        /// One client per AWS service Tenantry calls, each built on first use. Clones share
        /// the clients built.
        #[derive(Clone)]
        pub struct Clients(Arc<Slots>);

        struct Slots {
            source: Source,
            $($field: OnceLock<$krate::Client>,)*
        }

        /// One client of every service, built ahead (the mocks of unit tests).
        pub struct Each {
            $(pub $field: $krate::Client,)*
        }

        /// A service client a set of [`Clients`] holds.
        pub trait ServiceClient: Sized {
            /// Where `clients` keeps its client of this service.
            fn slot(clients: &Clients) -> &OnceLock<Self>;
        }

        $(impl ServiceClient for $krate::Client {
            fn slot(clients: &Clients) -> &OnceLock<Self> {
                &clients.0.$field
            }
        })*

        impl From<Each> for Clients {
            fn from(each: Each) -> Clients {
                Clients(Arc::new(Slots {
                    source: Source::Given,
                    $($field: OnceLock::from(each.$field),)*
                }))
            }
        }

        impl Clients {
            fn with_source(source: Source) -> Clients {
                Clients(Arc::new(Slots { source, $($field: OnceLock::new(),)* }))
            }

            /// The services whose client this set has built so far.
            pub fn built(&self) -> Vec<&'static str> {
                let mut built = Vec::new();
                $(if self.0.$field.get().is_some() {
                    built.push(stringify!($field));
                })*
                built
            }

            $(
                #[doc = concat!("The `", stringify!($krate), "` client, built on first use.")]
                pub fn $field(&self) -> &$krate::Client {
                    self.0.$field.get_or_init(|| match &self.0.source {
                        Source::Config(aws) => clients!(@build aws, $krate $(, $build)?),
                        Source::Given => unreachable!("given sets are built whole"),
                        Source::Derived { from, layer } => {
                            let parent = from.$field();
                            let config = parent.config();
                            let builder = config.to_builder();
                            let builder = match layer {
                                Layer::Counting(counter) => builder.interceptor(counter.clone()),
                                // The state store stays in Tenantry's account.
                                Layer::TargetAccount(_) if stringify!($field) == "dynamodb" => {
                                    return parent.clone();
                                }
                                Layer::TargetAccount(credentials) => {
                                    builder.credentials_provider(credentials.clone())
                                }
                                Layer::Scoped { region, read_only } => {
                                    let builder = builder.region(Region::new(region.clone()));
                                    match read_only {
                                        true => builder
                                            .http_client(read_only::guard(config.http_client())),
                                        false => builder,
                                    }
                                }
                            };
                            $krate::Client::from_conf(builder.build())
                        }
                    })
                }
            )*
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
    s3: aws_sdk_s3 => s3_client,
    secrets: aws_sdk_secretsmanager,
    securityhub: aws_sdk_securityhub,
    sns: aws_sdk_sns,
    sts: aws_sdk_sts,
}

/// The S3 client: the local stack addresses buckets by path, AWS by virtual host.
fn s3_client(aws: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(aws)
        .force_path_style(aws.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

impl Clients {
    /// Every client from one configuration, each built when first asked for.
    pub fn new(aws: &SdkConfig) -> Clients {
        Clients::with_source(Source::Config(Box::new(aws.clone())))
    }

    /// The same clients, each call that changes something counted by `counter`.
    pub fn counting(&self, counter: &ChangeCounter) -> Clients {
        self.derive(Layer::Counting(counter.clone()))
    }

    /// The same clients acting with `credentials` (a session in a platform's target account,
    /// [`super::target`]), except DynamoDB: the state store stays in Tenantry's account.
    /// Interceptors and mocks are kept.
    pub fn in_target_account(&self, credentials: Credentials) -> Clients {
        self.derive(Layer::TargetAccount(credentials))
    }

    /// The same clients in `region` (a function may provision a platform in another region
    /// than its own) and, with `read_only`, refusing any call that could change something
    /// before it is sent ([`read_only::guard`]). Interceptors (the mocks of unit tests) are
    /// kept.
    pub fn scoped(&self, region: &str, read_only: bool) -> Clients {
        self.derive(Layer::Scoped {
            region: region.to_owned(),
            read_only,
        })
    }

    /// With `client` as this set's client of its service (tests: one service mocked, the others
    /// built from the configuration). Panics when that client was built already.
    pub fn with_client<C: ServiceClient>(self, client: C) -> Clients {
        if C::slot(&self).set(client).is_err() {
            panic!("with_client: the client of that service was built already");
        }
        self
    }

    fn derive(&self, layer: Layer) -> Clients {
        Clients::with_source(Source::Derived {
            from: self.clone(),
            layer,
        })
    }
}

impl fmt::Debug for Clients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Clients")
            .field("built", &self.built())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_http_client::test_util::capture_request;

    fn config() -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(Credentials::new(
                    "home", "secret", None, None, "test",
                )),
            )
            .build()
    }

    /// The access key id that `call`, made with a target account's clients, signs with.
    async fn signed_by<F: std::future::Future>(call: impl FnOnce(Clients) -> F) -> String {
        let (http, sent) = capture_request(None);
        let home = Clients::new(&config().into_builder().http_client(http).build());
        let target =
            home.in_target_account(Credentials::new("target", "secret", None, None, "test"));
        // The empty answer does not parse; what matters is the request's signature.
        let _ = call(target).await;
        let request = sent.expect_request();
        let authorization = request.headers().get("authorization").unwrap_or_default();
        let credential = authorization
            .split("Credential=")
            .nth(1)
            .unwrap_or_default();
        credential.split('/').next().unwrap_or_default().to_owned()
    }

    #[test]
    fn clients_are_built_on_first_use_and_kept() {
        let home = Clients::new(&config());
        assert!(home.built().is_empty(), "none built ahead");
        let invocation = home
            .scoped("eu-west-1", true)
            .counting(&ChangeCounter::default());
        assert!(invocation.built().is_empty(), "deriving builds nothing");

        let ec2 = invocation.ec2().clone();
        assert_eq!(invocation.built(), ["ec2"]);
        assert_eq!(
            home.built(),
            ["ec2"],
            "the parent's client is built once, then derived"
        );
        assert_eq!(ec2.config().region().map(|r| r.as_ref()), Some("eu-west-1"));
        assert_eq!(
            home.ec2().config().region().map(|r| r.as_ref()),
            Some("us-east-1")
        );

        // A clone shares the clients built.
        let again = invocation.clone();
        assert_eq!(again.built(), ["ec2"]);
        assert!(std::ptr::eq(again.ec2(), invocation.ec2()));
    }

    #[tokio::test]
    async fn the_target_account_acts_with_its_session_but_the_store_stays_home() {
        let ec2 = signed_by(|c| async move { c.ec2().describe_vpcs().send().await.map(|_| ()) });
        assert_eq!(ec2.await, "target");
        let store =
            signed_by(|c| async move { c.dynamodb().list_tables().send().await.map(|_| ()) });
        assert_eq!(store.await, "home");
    }

    #[test]
    fn a_given_client_replaces_that_service_only() {
        let mut given = aws_sdk_sts::Config::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(Region::new("ap-south-1"));
        given.set_endpoint_url(Some("http://sts.test".into()));
        let clients =
            Clients::new(&config()).with_client(aws_sdk_sts::Client::from_conf(given.build()));
        assert_eq!(clients.built(), ["sts"]);
        assert_eq!(
            clients.sts().config().region().map(|r| r.as_ref()),
            Some("ap-south-1")
        );
        assert_eq!(
            clients.iam().config().region().map(|r| r.as_ref()),
            Some("us-east-1")
        );
    }
}
