//! `BuildError`: configuration mistakes fail the build, as a `Result`, with the member crate's
//! error as source.

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use calm::client::error::BuildError as HeaderError;
use calm::client::error::InvalidBaseUrlKind;
use calm::client::InvalidBaseUrl;
use calm::retry::error::{ConfigError, ConfigErrorKind};
use calm::retry::Jitter;
use calm::{Backoff, BuildError, BuildErrorKind, Client, Registry, RetryPolicy};

use crate::support::{ms, Backend, BASE};

fn source<E: std::error::Error + 'static>(error: &BuildError) -> &E {
    error
        .source()
        .and_then(|s| s.downcast_ref::<E>())
        .unwrap_or_else(|| panic!("unexpected source of {error}"))
}

#[test]
fn an_invalid_base_url_fails_the_build() {
    let cases = [
        ("", InvalidBaseUrlKind::Empty),
        ("api.example.com/v1", InvalidBaseUrlKind::MissingScheme),
        (
            "ftp://api.example.com",
            InvalidBaseUrlKind::UnsupportedScheme,
        ),
        (
            "https://user:s3cret@api.example.com",
            InvalidBaseUrlKind::UserInfo,
        ),
        (
            "https://api.example.com/v1?key=1",
            InvalidBaseUrlKind::Query,
        ),
        (
            "https://api.example.com/v1#top",
            InvalidBaseUrlKind::Fragment,
        ),
    ];
    for (input, kind) in cases {
        let error = Client::builder(input)
            .build_with(Backend::default())
            .unwrap_err();
        assert_eq!(error.kind(), BuildErrorKind::BaseUrl, "{input:?}");
        assert_eq!(source::<InvalidBaseUrl>(&error).kind(), kind, "{input:?}");
        assert!(error.to_string().contains("invalid base URL"), "{error}");
        // Credentials in a refused URL are not repeated in the message.
        assert!(!error.to_string().contains("s3cret"), "{error}");
    }
    // The default transport reports the same mistake the same way.
    let error = Client::builder("ftp://api.example.com")
        .build()
        .unwrap_err();
    assert_eq!(error.kind(), BuildErrorKind::BaseUrl);
}

#[test]
fn a_header_that_cannot_be_sent_fails_the_build() {
    let builders = [
        Client::builder(BASE).default_header("x-token", "line\nbreak"),
        Client::builder(BASE).default_header("bad name", "value"),
        Client::builder(BASE).user_agent("agent\r\n"),
        Client::builder(BASE).bearer_auth("tok\nen"),
    ];
    for builder in builders {
        let error = builder.build_with(Backend::default()).unwrap_err();
        assert_eq!(error.kind(), BuildErrorKind::Header, "{error}");
        let _: &HeaderError = source(&error);
        assert!(
            error.to_string().contains("invalid default header"),
            "{error}"
        );
    }
}

#[test]
fn an_invalid_retry_policy_fails_the_build() {
    let cases = [
        (
            RetryPolicy::default().backoff(Backoff::exponential(ms(100)).factor(0.5)),
            ConfigErrorKind::BackoffFactor,
        ),
        (
            RetryPolicy::default().backoff(Backoff::urllib3(f64::NAN)),
            ConfigErrorKind::BackoffFactor,
        ),
        (
            RetryPolicy::default()
                .backoff(Backoff::constant(ms(1)).jitter(Jitter::Proportional(2.0))),
            ConfigErrorKind::Jitter,
        ),
    ];
    for (policy, kind) in cases {
        let error = Client::builder(BASE)
            .retry(policy)
            .build_with(Backend::default())
            .unwrap_err();
        assert_eq!(error.kind(), BuildErrorKind::Retry, "{error}");
        assert_eq!(source::<ConfigError>(&error).kind(), kind);
    }
    // The same policy with a valid factor builds.
    assert!(Client::builder(BASE)
        .retry(RetryPolicy::default().backoff(Backoff::exponential(ms(100)).factor(1.5)))
        .build_with(Backend::default())
        .is_ok());
}

#[test]
fn the_first_mistake_is_reported() {
    let error = Client::builder("ftp://api.example.com")
        .default_header("x-token", "line\nbreak")
        .build_with(Backend::default())
        .unwrap_err();
    assert_eq!(error.kind(), BuildErrorKind::BaseUrl);
}

#[test]
fn a_registry_keeps_the_build_error_of_a_broken_configuration() {
    let runs = Arc::new(AtomicUsize::new(0));
    let registry = Registry::new({
        let runs = Arc::clone(&runs);
        move |builder| {
            runs.fetch_add(1, Ordering::SeqCst);
            builder.default_header("x-token", "line\nbreak")
        }
    });
    for _ in 0..2 {
        let error = registry.get("https://api.example.com").unwrap_err();
        let error = error.downcast_ref::<BuildError>().expect("a BuildError");
        assert_eq!(error.kind(), BuildErrorKind::Header);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let error = registry.get("not a url").unwrap_err();
    assert!(error.downcast_ref::<InvalidBaseUrl>().is_some(), "{error}");
}
