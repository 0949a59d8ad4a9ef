//! `FollowRedirectLayer`: which redirects are followed, with what method, body and headers,
//! and how hops are marked. The backend answers by path, and records what it received.

use std::sync::{Arc, Mutex};

use calm_client::redirect::{FollowRedirectLayer, RedirectHop};
use calm_retry::follow_up::FollowUp;
use http::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, USER_AGENT};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower::{service_fn, Layer, ServiceExt};

/// What one request looked like at the backend.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    uri: String,
    body: String,
    headers: http::HeaderMap,
    hop: Option<RedirectHop>,
}

/// Every request the backend received, in order.
type Log = Arc<Mutex<Vec<Seen>>>;

/// A backend answering `route(uri)` (status and `Location`), recording every request.
fn backend(
    route: fn(&str) -> (u16, Option<&'static str>),
) -> (
    impl tower::Service<
            Request<String>,
            Response = Response<String>,
            Error = std::convert::Infallible,
            Future = impl Send,
        > + Clone,
    Log,
) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let svc = service_fn(move |req: Request<String>| {
        let log = Arc::clone(&log);
        async move {
            let uri = req.uri().to_string();
            let (status, location) = route(&uri);
            log.lock().unwrap().push(Seen {
                method: req.method().clone(),
                uri,
                headers: req.headers().clone(),
                hop: req.extensions().get::<RedirectHop>().copied(),
                body: req.into_body(),
            });
            let mut res = Response::new(String::new());
            *res.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Some(location) = location {
                res.headers_mut()
                    .insert(LOCATION, HeaderValue::from_static(location));
            }
            Ok::<_, std::convert::Infallible>(res)
        }
    });
    (svc, seen)
}

fn get(uri: &str) -> Request<String> {
    Request::get(uri).body(String::new()).unwrap()
}

fn post(uri: &str, body: &str) -> Request<String> {
    Request::post(uri)
        .header(CONTENT_TYPE, "text/plain")
        .body(body.to_owned())
        .unwrap()
}

#[tokio::test]
async fn a_303_is_followed_with_a_get_without_body_or_payload_headers() {
    let (svc, seen) = backend(|uri| match uri {
        "http://api.test/form" => (303, Some("/done?x=1")),
        _ => (200, None),
    });
    let svc = FollowRedirectLayer::new(10).layer(svc);
    let res = svc
        .oneshot(post("http://api.test/form", "a=1"))
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    assert_eq!(
        res.extensions().get::<FollowUp>().map(FollowUp::hop),
        Some(1)
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (&seen[0].method, seen[0].body.as_str()),
        (&Method::POST, "a=1")
    );
    assert_eq!(seen[1].method, Method::GET);
    assert_eq!(seen[1].uri, "http://api.test/done?x=1");
    assert_eq!(seen[1].body, "");
    assert!(seen[1].headers.get(CONTENT_TYPE).is_none());
    let hop = seen[1].hop.expect("a hop is marked");
    assert_eq!(hop.hop(), 1);
    assert!(hop.is_same_origin() && !hop.has_left_origin());
}

#[tokio::test]
async fn a_post_answered_301_becomes_a_get_and_a_put_keeps_its_method() {
    let (svc, seen) = backend(|uri| match uri {
        "http://api.test/old" => (301, Some("http://api.test/new")),
        _ => (200, None),
    });
    let layer = FollowRedirectLayer::new(10);
    layer
        .layer(svc.clone())
        .oneshot(post("http://api.test/old", "x"))
        .await
        .unwrap();
    let put = Request::put("http://api.test/old")
        .body(String::new())
        .unwrap();
    layer.layer(svc).oneshot(put).await.unwrap();

    let methods: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|s| s.method.clone())
        .collect();
    assert_eq!(
        methods,
        [Method::POST, Method::GET, Method::PUT, Method::PUT]
    );
}

#[tokio::test]
async fn a_307_is_not_followed_when_the_body_cannot_be_sent_again() {
    let (svc, seen) = backend(|uri| match uri {
        "http://api.test/upload" => (307, Some("/elsewhere")),
        _ => (200, None),
    });
    let svc = FollowRedirectLayer::new(10).layer(svc);
    let res = svc
        .oneshot(post("http://api.test/upload", "data"))
        .await
        .unwrap();

    assert_eq!(res.status(), 307, "the redirect comes back as it is");
    assert_eq!(seen.lock().unwrap().len(), 1, "the POST was sent once");
}

#[tokio::test]
async fn an_empty_body_is_sent_again_by_a_308_with_the_same_method() {
    let (svc, seen) = backend(|uri| match uri {
        "http://api.test/a" => (308, Some("b")),
        _ => (200, None),
    });
    let svc = FollowRedirectLayer::new(10).layer(svc);
    let req = Request::delete("http://api.test/a")
        .body(String::new())
        .unwrap();
    let res = svc.oneshot(req).await.unwrap();

    assert_eq!(res.status(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].method, Method::DELETE);
    assert_eq!(
        seen[1].uri, "http://api.test/b",
        "resolved against the previous URI"
    );
}

#[tokio::test]
async fn at_most_max_redirects_are_followed_and_zero_follows_none() {
    let (svc, seen) = backend(|_| (302, Some("/loop")));
    let res = FollowRedirectLayer::new(3)
        .layer(svc.clone())
        .oneshot(get("http://api.test/loop"))
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(seen.lock().unwrap().len(), 4, "the request and 3 hops");

    seen.lock().unwrap().clear();
    let res = FollowRedirectLayer::new(0)
        .layer(svc)
        .oneshot(get("http://api.test/loop"))
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_redirect_without_a_usable_location_comes_back_as_it_is() {
    let (svc, seen) = backend(|_| (302, None));
    let res = FollowRedirectLayer::new(10)
        .layer(svc)
        .oneshot(get("http://api.test/x"))
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn credentials_never_follow_a_request_once_it_left_its_origin() {
    let (svc, seen) = backend(|uri| match uri {
        "https://api.test/a" => (302, Some("https://other.test/b")),
        "https://other.test/b" => (302, Some("https://api.test/c")),
        _ => (200, None),
    });
    let mut key = HeaderValue::from_static("k");
    key.set_sensitive(true);
    let req = Request::get("https://api.test/a")
        .header(AUTHORIZATION, "Bearer t")
        .header("x-api-key", key)
        .header(USER_AGENT, "agent/1")
        .body(String::new())
        .unwrap();
    let res = FollowRedirectLayer::new(10)
        .layer(svc)
        .oneshot(req)
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let seen = seen.lock().unwrap();
    assert!(seen[0].headers.contains_key(AUTHORIZATION));
    for hop in &seen[1..] {
        assert!(hop.headers.get(AUTHORIZATION).is_none(), "{}", hop.uri);
        assert!(hop.headers.get("x-api-key").is_none(), "{}", hop.uri);
        assert_eq!(hop.headers[USER_AGENT], "agent/1");
    }
    let (to_other, back) = (seen[1].hop.unwrap(), seen[2].hop.unwrap());
    assert!(!to_other.is_same_origin() && to_other.has_left_origin());
    assert!(back.is_same_origin() && back.has_left_origin());
    assert_eq!(back.hop(), 2);
}

#[tokio::test]
async fn a_hop_goes_through_the_service_that_sent_the_request() {
    // NOTE: the count lives in this clone of the service only, as in a scripted test double.
    let mut calls = 0;
    let svc = service_fn(move |_req: Request<String>| {
        calls += 1;
        let first = calls == 1;
        async move {
            let mut res = Response::new(String::new());
            if first {
                *res.status_mut() = StatusCode::FOUND;
                res.headers_mut()
                    .insert(LOCATION, HeaderValue::from_static("/next"));
            }
            Ok::<_, std::convert::Infallible>(res)
        }
    });
    let res = FollowRedirectLayer::new(10)
        .layer(svc)
        .oneshot(get("http://api.test/"))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the hop saw the first call");
}

/// A service that answers every request with a redirect to `/next`, and whose readiness fails
/// once it has been called: the hop's `poll_ready` fails after the request went out.
#[derive(Clone)]
struct ClosesAfterOneCall {
    calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl tower::Service<Request<String>> for ClosesAfterOneCall {
    type Response = Response<String>;
    type Error = tower::BoxError;
    type Future = std::future::Ready<Result<Response<String>, tower::BoxError>>;

    fn poll_ready(
        &mut self,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), tower::BoxError>> {
        let called = self.calls.load(std::sync::atomic::Ordering::SeqCst) > 0;
        std::task::Poll::Ready(if called {
            Err("the connection pool closed".into())
        } else {
            Ok(())
        })
    }

    fn call(&mut self, _req: Request<String>) -> Self::Future {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mut res = Response::new(String::new());
        *res.status_mut() = StatusCode::TEMPORARY_REDIRECT;
        res.headers_mut()
            .insert(LOCATION, HeaderValue::from_static("/next"));
        std::future::ready(Ok(res))
    }
}

#[tokio::test]
async fn a_hop_whose_service_is_not_ready_fails_as_a_follow_up() {
    let svc = ClosesAfterOneCall {
        calls: Arc::default(),
    };
    let err = FollowRedirectLayer::new(10)
        .layer(svc)
        .oneshot(get("http://api.test/"))
        .await
        .unwrap_err();
    // NOTE: the request itself went out, so the retry layer above must not take this for
    // a request that was never sent.
    let hop = err
        .downcast_ref::<calm_retry::follow_up::FollowUpError>()
        .map(calm_retry::follow_up::FollowUpError::hop);
    assert_eq!(hop, Some(1), "{err}");
}
