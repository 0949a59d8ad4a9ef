//! What the request conveniences put on the wire, as calm-mock receives it.

use calm::Client;
use calm_mock::{Encoding, MockApi, Reply};
use http::header::{AUTHORIZATION, CONTENT_TYPE};

#[derive(serde::Serialize)]
struct Search<'a> {
    q: &'a str,
    tags: &'a str,
    page: u32,
}

#[tokio::test]
async fn query_form_auth_and_headers_arrive_encoded() {
    let api = MockApi::start().await;
    let client = Client::builder(format!("{}v1/", api.base_url()))
        .build()
        .unwrap();

    let mut headers = http::HeaderMap::new();
    headers.insert("x-request-id", "r-1".parse().unwrap());
    client
        .get("search?sort=new")
        .query(&Search {
            q: "red shoes",
            tags: "a&b=c",
            page: 2,
        })
        .bearer_auth("t0ken")
        .headers(headers)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    client
        .post("login")
        .form(&[("user", "ada"), ("pass", "p@ss w0rd")])
        .basic_auth("ada", Some("secret"))
        .send()
        .await
        .unwrap();

    let requests = api.requests();
    let search = &requests[0];
    assert_eq!(
        search.uri.path_and_query().unwrap(),
        "/v1/search?sort=new&q=red+shoes&tags=a%26b%3Dc&page=2"
    );
    assert_eq!(search.headers[AUTHORIZATION], "Bearer t0ken");
    assert_eq!(search.headers["x-request-id"], "r-1");
    let login = &requests[1];
    assert_eq!(login.body, "user=ada&pass=p%40ss+w0rd");
    assert_eq!(
        login.headers[CONTENT_TYPE],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(login.headers[AUTHORIZATION], "Basic YWRhOnNlY3JldA==");
}

#[tokio::test]
async fn a_compressed_body_is_decoded_and_one_that_lies_is_a_decode_error() {
    let api = MockApi::start().await;
    api.script(
        "/v1/items",
        [Reply::ok()
            .body(r#"[{"id":1}]"#)
            .encoded_if_accepted(Encoding::Gzip)],
    );
    api.script(
        "/v1/broken",
        [Reply::ok()
            .header("content-encoding", "gzip")
            .body("not gzip at all")],
    );
    let client = Client::builder(format!("{}v1/", api.base_url()))
        .build()
        .unwrap();
    let items: serde_json::Value = client
        .get("items")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(items[0]["id"], 1);
    let accepted = api.requests()[0].headers["accept-encoding"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(accepted.contains("gzip"), "{accepted}");

    let error = client
        .get("broken")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap_err();
    assert!(error.is_decode(), "{error:?}");
    assert!(
        error
            .to_string()
            .starts_with(&format!("GET {}v1/broken: ", api.base_url())),
        "{error}"
    );
}
