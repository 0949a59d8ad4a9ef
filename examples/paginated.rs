//! A paginated JSON client: every page of `/v1/items`, through a server that throttles with
//! 429 + `Retry-After`, and a lookup whose 404 means "no such item".
//!
//! ```sh
//! cargo run --example paginated
//! ```
//!
//! No downcast, no hand-written encoder: `query` encodes the parameters, `error_for_status`
//! turns a 404 into an error that says so, and `calm::Error`'s methods tell the cases apart.

use std::num::NonZeroU32;

use calm::{Client, Quota};
use calm_mock::{MockApi, Reply};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Page {
    items: Vec<Item>,
    next: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct Item {
    id: u32,
    name: String,
}

#[derive(serde::Serialize)]
struct Query<'a> {
    page: u32,
    per_page: u32,
    filter: &'a str,
}

/// Every item, page after page. A 429 is retried by the client (after its `Retry-After`).
async fn all_items(client: &Client) -> Result<Vec<Item>, calm::Error> {
    let mut items = Vec::new();
    let mut page = Some(1);
    while let Some(number) = page {
        let query = Query {
            page: number,
            per_page: 2,
            filter: "in stock & on sale",
        };
        let response = client.get("items").query(&query).send().await?;
        let body: Page = response.error_for_status()?.json().await?;
        items.extend(body.items);
        page = body.next;
    }
    Ok(items)
}

/// One item, or `None` when the API says 404.
async fn item(client: &Client, id: u32) -> Result<Option<Item>, calm::Error> {
    let response = client.get(format!("items/{id}")).send().await?;
    match response.error_for_status() {
        Ok(response) => Ok(Some(response.json().await?)),
        Err(error) if error.status() == Some(http::StatusCode::NOT_FOUND) => Ok(None),
        Err(error) => Err(error),
    }
}

async fn run() -> Result<(Vec<Item>, Option<Item>, Option<Item>), calm::Error> {
    let api = MockApi::start().await;
    api.script(
        "/v1/items",
        [
            Reply::ok()
                .body(r#"{"items":[{"id":1,"name":"bolt"},{"id":2,"name":"nut"}],"next":2}"#),
            Reply::status(429).header("retry-after", "1"),
            Reply::ok().body(r#"{"items":[{"id":3,"name":"washer"}],"next":null}"#),
        ],
    );
    api.script(
        "/v1/items/3",
        [Reply::ok().body(r#"{"id":3,"name":"washer"}"#)],
    );
    api.script(
        "/v1/items/9",
        [Reply::status(404).body(r#"{"message":"Not Found"}"#)],
    );

    let client = Client::builder(format!("{}v1/", api.base_url()))
        .rate_limit(Quota::per_second(NonZeroU32::new(10).expect("10")))
        .build()
        .expect("a valid configuration");
    let items = all_items(&client).await?;
    let found = item(&client, 3).await?;
    let missing = item(&client, 9).await?;

    let first = &api.requests()[0];
    println!("first request: {}", first.uri);
    let stats = client.stats();
    println!("{} requests, {} retried", stats.requests, stats.retries());
    Ok((items, found, missing))
}

#[tokio::main]
async fn main() -> Result<(), calm::Error> {
    let (items, found, missing) = run().await?;
    for item in &items {
        println!("item {}: {}", item.id, item.name);
    }
    println!("item 3: {found:?}");
    println!("item 9: {missing:?}");
    Ok(())
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn every_page_is_read_and_a_404_is_none() {
        let (items, found, missing) = super::run().await.unwrap();
        let ids: Vec<u32> = items.iter().map(|i| i.id).collect();
        assert_eq!(ids, [1, 2, 3]);
        assert_eq!(found.unwrap().name, "washer");
        assert!(missing.is_none());
    }
}
