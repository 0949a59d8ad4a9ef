use std::time::Duration;

use bytes::Bytes;
use calm_mock::{MockApi, Reply};
use http::Request;
use http_body_util::{BodyExt, Full};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{client, get, h2_client, header, send, LIMIT};

#[tokio::test]
async fn close_yields_a_client_error_after_the_request_is_read() {
    let api = MockApi::start().await;
    api.script("/bye", [Reply::close(), Reply::ok()]);
    let client = client();
    let req = Request::post(api.url("/bye"))
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let err = send(&client, req).await.expect_err("no response was sent");
    assert!(!err.is_connect(), "the request was sent: {err:?}");

    // The request was read and recorded before the hang-up.
    assert_eq!(api.request_count(), 1);
    assert_eq!(api.requests()[0].body, "payload");

    // The script moves on; the client needs a new connection.
    let ok = get(&client, &api.url("/bye")).await;
    assert_eq!(ok.status, 200);
    assert_eq!(api.connections(), 2);
}

#[tokio::test]
async fn close_fails_http2_too() {
    let api = MockApi::start().await;
    api.script("/bye", [Reply::close(), Reply::ok()]);
    let client = h2_client();
    let req = Request::get(api.url("/bye")).body(Full::default()).unwrap();
    assert!(send(&client, req).await.is_err());
    assert_eq!(get(&client, &api.url("/bye")).await.status, 200);
}

#[tokio::test]
async fn stall_never_answers_and_dropping_the_mock_ends_it() {
    let api = MockApi::start().await;
    api.script("/hang", [Reply::stall()]);
    let client = client();
    let url = api.url("/hang");
    let pending = tokio::spawn(async move {
        let req = Request::get(url).body(Full::default()).unwrap();
        client.request(req).await.map(|r| r.status())
    });
    let arrived = tokio::time::timeout(LIMIT, async {
        while api.request_count() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(arrived.is_ok(), "the stalled request was recorded");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!pending.is_finished(), "a stalled request gets no answer");

    drop(api);
    let outcome = tokio::time::timeout(LIMIT, pending)
        .await
        .expect("dropping the mock ends the stalled exchange")
        .unwrap();
    assert!(outcome.is_err(), "the client sees an error: {outcome:?}");
}

#[tokio::test]
async fn delay_still_answers_with_the_script() {
    let api = MockApi::start().await;
    api.script(
        "/late",
        [Reply::status(202)
            .body("late")
            .delay(Duration::from_millis(50))],
    );
    let a = get(&client(), &api.url("/late")).await;
    assert_eq!((a.status.as_u16(), a.body), (202, Bytes::from("late")));
}

#[tokio::test]
async fn slow_body_arrives_whole_in_several_pieces() {
    let api = MockApi::start().await;
    api.script(
        "/drip",
        [Reply::ok()
            .body("abcdefghi")
            .slow_body(3, Duration::from_millis(100))],
    );
    let req = Request::get(api.url("/drip"))
        .body(Full::default())
        .unwrap();
    let response = tokio::time::timeout(LIMIT, client().request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(response.headers()["content-length"], "9");
    let mut body = response.into_body();
    let mut pieces = Vec::new();
    while let Some(frame) = tokio::time::timeout(LIMIT, body.frame()).await.unwrap() {
        if let Ok(data) = frame.unwrap().into_data() {
            pieces.push(data);
        }
    }
    assert_eq!(pieces.concat(), b"abcdefghi");
    assert!(pieces.len() >= 2, "the body came in pieces: {pieces:?}");
}

#[tokio::test]
async fn garbage_input_gets_an_error_and_the_server_keeps_serving() {
    let api = MockApi::start().await;
    let mut tcp = TcpStream::connect(api.addr()).await.unwrap();
    tcp.write_all(b"\x00\x01NOT HTTP AT ALL\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(LIMIT, tcp.read_to_end(&mut reply)).await;
    assert!(
        reply.is_empty() || reply.starts_with(b"HTTP/1.1 400"),
        "{}",
        String::from_utf8_lossy(&reply)
    );

    let a = get(&client(), &api.url("/")).await;
    assert_eq!(a.status, 200);
    assert_eq!(header(&a, "content-length"), "2");
}

#[tokio::test]
async fn dropping_the_mock_stops_accepting() {
    let api = MockApi::start().await;
    let addr = api.addr();
    get(&client(), &api.url("/")).await;
    drop(api);
    // NOTE: the accept task ends asynchronously after the drop; a connect racing it may be
    // accepted into the backlog or reset, so wait for the first plain refusal.
    tokio::time::timeout(LIMIT, async {
        loop {
            match TcpStream::connect(addr).await {
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return,
                _ => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .expect("the port refuses connections after the drop");
}

/// Clients that send a request head and hang up at once, without reading the answer.
async fn hang_up_after_sending(api: &MockApi, path: &str, clients: usize) {
    let head = format!("GET {path} HTTP/1.1\r\nhost: {}\r\n\r\n", api.addr());
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let addr = api.addr();
        let head = head.clone();
        tasks.spawn(async move {
            let mut tcp = TcpStream::connect(addr).await.unwrap();
            tcp.write_all(head.as_bytes()).await.unwrap();
            if i % 2 == 0 {
                // half of them close the write side, the other half drop the socket
                let _ = tcp.shutdown().await;
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_at_once_is_still_recorded() {
    const CLIENTS: usize = 200;
    let api = MockApi::start().await;
    // One slow reply per raw client, then a marker for the request that checks the script.
    let mut script: Vec<Reply> = (0..CLIENTS)
        .map(|_| Reply::status(503).delay(Duration::from_secs(30)))
        .collect();
    script.push(Reply::status(201).body("next"));
    api.script("/gone", script);

    hang_up_after_sending(&api, "/gone", CLIENTS).await;
    // NOTE: the mock reads the heads asynchronously; wait (bounded) for all of them.
    let _ = tokio::time::timeout(LIMIT, async {
        while api.request_count() < CLIENTS {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(
        api.request_count(),
        CLIENTS,
        "every request head that arrived is recorded"
    );
    assert_eq!(api.requests().len(), CLIENTS);
    assert!(api.requests().iter().all(|r| r.uri.path() == "/gone"));

    // Each recorded request used up exactly one reply: the next one gets the marker.
    let next = get(&client(), &api.url("/gone")).await;
    assert_eq!(
        (next.status.as_u16(), next.body),
        (201, Bytes::from("next"))
    );
    assert_eq!(api.request_count(), CLIENTS + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_client_that_hangs_up_at_once_is_counted_as_refused() {
    const CLIENTS: usize = 60;
    let api = MockApi::builder()
        .quota(10, Duration::from_secs(3600))
        .start()
        .await;
    hang_up_after_sending(&api, "/q", CLIENTS).await;
    let _ = tokio::time::timeout(LIMIT, async {
        while api.request_count() < CLIENTS || api.count_429() < CLIENTS - 10 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert_eq!(api.request_count(), CLIENTS);
    assert_eq!(
        api.count_429(),
        CLIENTS - 10,
        "every request over the quota was refused"
    );
}

#[tokio::test]
async fn a_request_is_recorded_at_its_head_and_its_body_filled_in_later() {
    let api = MockApi::start().await;
    let mut tcp = TcpStream::connect(api.addr()).await.unwrap();
    let head = format!(
        "POST /upload HTTP/1.1\r\nhost: {}\r\ncontent-length: 10\r\n\r\nabc",
        api.addr()
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let arrived = tokio::time::timeout(LIMIT, async {
        while api.request_count() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(arrived.is_ok(), "the head alone makes an entry");
    let r = &api.requests()[0];
    assert_eq!((r.method.as_str(), r.uri.path()), ("POST", "/upload"));
    assert_eq!(r.headers["content-length"], "10");
    assert!(r.body.is_empty(), "the body is not in yet: {:?}", r.body);

    // The client breaks off after 3 of its 10 bytes: what arrived is kept.
    drop(tcp);
    let filled = tokio::time::timeout(LIMIT, async {
        while api.requests()[0].body.is_empty() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(filled.is_ok(), "the partial body was filled in");
    assert_eq!(api.requests()[0].body, "abc");
    assert_eq!(api.request_count(), 1);
}
