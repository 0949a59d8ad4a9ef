//! No error message, `Display` or `Debug` output of calm-client repeats a credential.
#![allow(missing_docs)]

use calm_client::{BaseUrl, SharedClientLayer};
use http::header::HeaderValue;
use http::{Request, Response, Uri};
use tower::{Layer, ServiceExt};

const SECRET: &str = "Zm9vYmFyc2VjcmV0";

/// Passwords (each holding `SECRET` or a piece of it) that end the authority early or hide
/// in other ways.
fn nasty_passwords() -> Vec<String> {
    let long = format!("{}{SECRET}", "x".repeat(10_000));
    vec![
        format!("{SECRET}"),
        format!("Zm9v/{SECRET}"),
        format!("{SECRET}/YmFy"),
        format!("Zm9v?{SECRET}"),
        format!("Zm9v#{SECRET}"),
        format!("Zm9v@{SECRET}"),
        format!("{SECRET}@x"),
        format!("Zm9v%2F{SECRET}%3F%40"),
        format!("Zm9v/{SECRET}?x#y"),
        format!("{SECRET}:{SECRET}"),
        format!("{SECRET}/"),
        format!("/{SECRET}"),
        long,
    ]
}

/// Base URL and request URI shapes carrying `user:password@`.
fn nasty_urls() -> Vec<String> {
    let mut urls = Vec::new();
    for password in nasty_passwords() {
        for shape in [
            "https://svc:{p}@api.example.com/v1",
            "https://svc:{p}@api.example.com",
            "https://{p}@api.example.com/v1",
            "http://svc:{p}@127.0.0.1:8080/v1?x=1",
            "https://svc:{p}@[::1]/v1#top",
            "svc:{p}@api.example.com/v1",
            "//svc:{p}@api.example.com/v1",
            "https://svc:{p}@bücher.example/v1",
            "https://svc:{p}@api.example.com:70000/v1",
            "HTTPS://svc:{p}@API.example.com/v1/../x",
        ] {
            urls.push(shape.replace("{p}", &password));
        }
    }
    urls
}

fn assert_hidden(what: &str, input: &str, outputs: &[String]) {
    // NOTE: the secret itself, and any 8-character piece of it, is never shown.
    for output in outputs {
        for start in 0..=SECRET.len() - 8 {
            let piece = &SECRET[start..start + 8];
            assert!(
                !output.contains(piece),
                "{what} of {:?} shows {piece:?}: {output}",
                &input[..input.len().min(120)]
            );
        }
    }
}

fn all_forms<E: std::fmt::Display + std::fmt::Debug>(err: &E) -> Vec<String> {
    vec![err.to_string(), format!("{err:?}"), format!("{err:#?}")]
}

#[test]
fn invalid_base_url_errors_never_show_the_password() {
    for url in nasty_urls() {
        match BaseUrl::parse(&url) {
            Err(err) => assert_hidden("InvalidBaseUrl", &url, &all_forms(&err)),
            // NOTE: a valid URL is one whose `@` is in its path: then it has no userinfo.
            Ok(base) => panic!("{url:?} was accepted as {base}"),
        }
    }
}

#[test]
fn build_errors_never_show_the_password() {
    for url in nasty_urls() {
        let builder = SharedClientLayer::builder(url.as_str());
        assert_hidden(
            "SharedClientBuilder",
            &url,
            &[format!("{builder:?}"), format!("{builder:#?}")],
        );
        let err = builder.build().unwrap_err();
        let mut forms = all_forms(&err);
        let source = std::error::Error::source(&err).unwrap();
        forms.push(source.to_string());
        forms.push(format!("{source:?}"));
        assert_hidden("BuildError", &url, &forms);
    }
}

#[test]
fn resolve_errors_never_show_the_password() {
    let base = BaseUrl::parse("https://api.example.com/v1").unwrap();
    for url in nasty_urls() {
        if let Ok(uri) = url.parse::<Uri>() {
            if let Err(err) = base.resolve(&uri) {
                assert_hidden("ResolveError (resolve)", &url, &all_forms(&err));
            }
        }
        if let Err(err) = base.resolve_str(&url) {
            assert_hidden("ResolveError (resolve_str)", &url, &all_forms(&err));
        }
    }
    // A password with `/` reads as host `svc`, port `Zm9v`: refused, and not echoed.
    let uri: Result<Uri, _> = format!("https://svc:1234/{SECRET}@evil.example/x").parse();
    let err = base.resolve(&uri.unwrap()).unwrap_err();
    assert_hidden("ResolveError", "port", &all_forms(&err));
    let err = base
        .resolve_str(&format!("https://svc:1234/x/../{SECRET}@evil.example/x"))
        .unwrap_err();
    assert_hidden("ResolveError", "dot", &all_forms(&err));
}

#[tokio::test]
async fn shared_client_errors_and_debug_never_show_secrets() {
    let mut key = HeaderValue::from_str(SECRET).unwrap();
    key.set_sensitive(true);
    let layer = SharedClientLayer::builder("https://api.example.com/v1")
        .bearer_auth(SECRET)
        .default_header("x-api-key", key)
        .build()
        .unwrap();
    let backend = tower::service_fn(|_req: Request<()>| async move {
        Ok::<_, std::convert::Infallible>(Response::new(()))
    });
    let client = layer.layer(backend);
    assert_hidden(
        "SharedClient",
        "debug",
        &[format!("{layer:?}"), format!("{client:#?}")],
    );
    for url in nasty_urls() {
        let Ok(request) = Request::get(url.as_str()).body(()) else {
            continue;
        };
        if let Err(err) = client.clone().oneshot(request).await {
            assert_hidden(
                "SharedClient error",
                &url,
                &[err.to_string(), format!("{err:?}")],
            );
        }
    }
    // A bearer token that cannot be sent: the error names the setting, not the token.
    let err = SharedClientLayer::builder("https://api.example.com")
        .bearer_auth(format!("{SECRET}\n"))
        .build()
        .unwrap_err();
    assert_hidden("BuildError", "bearer", &all_forms(&err));
}
