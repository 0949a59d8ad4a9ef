use std::sync::Arc;

use bytes::Bytes;
use calm_mock::{MockApi, Reply};
use http::{Request, Version};
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConfig, RootCertStore};

use crate::support::{get, send};

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

fn https_client(roots: RootCertStore, http2: bool) -> HttpsClient {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let builder = HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1();
    let connector = if http2 {
        builder.enable_http2().build()
    } else {
        builder.build()
    };
    Client::builder(TokioExecutor::new()).build(connector)
}

fn mock_roots(api: &MockApi) -> RootCertStore {
    let der = api
        .root_certificate_der()
        .expect("TLS mode has a certificate");
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(der)).unwrap();
    roots
}

#[tokio::test]
async fn serves_https_with_its_root_over_h2_and_http11() {
    let api = MockApi::builder().tls().start().await;
    assert!(api.is_tls());
    assert!(api.base_url().starts_with("https://127.0.0.1:"));
    api.script("/secure", [Reply::status(201).body("sealed")]);

    let h2 = https_client(mock_roots(&api), true);
    let a = get(&h2, &api.url("/secure")).await;
    assert_eq!((a.status.as_u16(), a.version), (201, Version::HTTP_2));
    assert_eq!(a.body, "sealed");

    let h1 = https_client(mock_roots(&api), false);
    let a = get(&h1, &api.url("/secure")).await;
    assert_eq!((a.status.as_u16(), a.version), (201, Version::HTTP_11));

    // The certificate also names localhost.
    let by_name = format!("https://localhost:{}/secure", api.addr().port());
    assert_eq!(get(&h1, &by_name).await.status, 201);

    assert_eq!(api.request_count(), 3);
    assert_eq!(api.connections(), 3);
}

#[tokio::test]
async fn https_fails_without_the_root() {
    let api = MockApi::builder().tls().start().await;
    // Trusting another mock's certificate is not trusting this one: each start makes a new one.
    let other = MockApi::builder().tls().start().await;
    let client = https_client(mock_roots(&other), true);
    let req = Request::get(api.url("/")).body(Full::default()).unwrap();
    let err = send(&client, req)
        .await
        .expect_err("an unknown issuer is refused");
    assert!(err.is_connect(), "{err:?}");
    assert_eq!(api.request_count(), 0);
    assert_eq!(api.connections(), 1);
}

#[tokio::test]
async fn plain_mode_has_no_certificate() {
    let api = MockApi::start().await;
    assert!(!api.is_tls());
    assert!(api.root_certificate_der().is_none());
}
