//! The request log.
//!
//! Every request is recorded when its head has been read, before anything else can happen to
//! it (a reply delay, reading the body, the client hanging up), and before it uses up a
//! scripted reply: a reply is only ever used up by a request the log counts.
//!
//! The log is kept small, so a long run in one process measures the client and not the mock:
//!
//! - An entry is a compact copy of the request head (method, target, headers as one byte
//!   string), its arrival time and, when bodies are recorded, the body in an allocation of
//!   its own. Nothing in it points into hyper's connection buffers, which would keep
//!   kilobytes alive per request.
//! - Only the most recent [`log_limit`](crate::MockApiBuilder::log_limit) entries are kept
//!   ([`DEFAULT_LOG_LIMIT`] by default); [`request_count`](crate::MockApi::request_count)
//!   still counts every request.
//! - [`RecordedRequest`]s are rebuilt from the compact entries when asked for.

use std::collections::VecDeque;
use std::io::Write as _;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, Request, Uri, Version};
use tokio::time::Instant;

/// How many requests the log keeps by default (the most recent ones); see
/// [`MockApiBuilder::log_limit`](crate::MockApiBuilder::log_limit).
///
/// At about 150 bytes per small request (plus its body, when bodies are recorded) that is
/// under 2 MB, however long the run.
pub const DEFAULT_LOG_LIMIT: usize = 10_000;

/// One request as the [`MockApi`](crate::MockApi) received it.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # use hyper_util::{client::legacy::Client, rt::TokioExecutor};
/// use calm_mock::MockApi;
/// use http::{Method, Request, Version};
///
/// let api = MockApi::start().await;
/// let client = Client::builder(TokioExecutor::new()).build_http::<String>();
/// let req = Request::put(api.url("/v1/items/7?notify=no"))
///     .header("content-type", "application/json")
///     .body(String::from(r#"{"n":1}"#))
///     .unwrap();
/// client.request(req).await.unwrap();
///
/// let r = &api.requests()[0];
/// assert_eq!(r.method, Method::PUT);
/// assert_eq!(r.uri, "/v1/items/7?notify=no"); // origin form over HTTP/1.1
/// assert_eq!(r.version, Version::HTTP_11);
/// assert_eq!(r.headers["content-type"], "application/json");
/// assert_eq!(r.body, r#"{"n":1}"#);
/// assert!(r.at <= tokio::time::Instant::now());
/// # }
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RecordedRequest {
    /// The request method.
    pub method: Method,
    /// The request target as received: origin form (`/v1/x?page=2`) over HTTP/1.1, absolute
    /// over HTTP/2.
    pub uri: Uri,
    /// The HTTP version the request used.
    pub version: Version,
    /// The request headers.
    pub headers: HeaderMap,
    /// The request body: empty until the mock has read it (it does so before answering),
    /// what arrived of it if the client broke off, and always empty when bodies are not
    /// recorded ([`MockApiBuilder::record_bodies`](crate::MockApiBuilder::record_bodies)).
    pub body: Bytes,
    /// When the request head arrived, on tokio's clock.
    pub at: Instant,
}

/// The log: the most recent entries and a count of every request.
#[derive(Debug)]
pub(crate) struct Log {
    entries: VecDeque<Entry>,
    /// Requests recorded so far, evicted ones included; also the next sequence number.
    total: u64,
    limit: usize,
    bodies: bool,
}

/// A request as the log keeps it.
///
/// NOTE: the head and body are shared (`Arc`), so [`Log::snapshot`] copies an entry under the
/// log's lock with two reference counts, and the rebuilding happens outside it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    at: Instant,
    version: Version,
    /// The method, the target, then each header name and value; every field is a `u32`
    /// little-endian length followed by that many bytes.
    head: Arc<[u8]>,
    /// The body in an exact-size allocation of its own (never a slice of a connection
    /// buffer); `None` while not read, when empty, or when bodies are not recorded.
    body: Option<Arc<[u8]>>,
}

impl Log {
    pub(crate) fn new(limit: usize, bodies: bool) -> Self {
        Log {
            entries: VecDeque::new(),
            total: 0,
            limit,
            bodies,
        }
    }

    /// Records the head of `req`; the number returned names it for [`Log::fill_body`].
    pub(crate) fn record<B>(&mut self, req: &Request<B>, at: Instant) -> u64 {
        let seq = self.total;
        self.total += 1;
        if self.limit == 0 {
            return seq;
        }
        if self.entries.len() >= self.limit {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry {
            at,
            version: req.version(),
            head: Arc::from(encode_head(req)),
            body: None,
        });
        seq
    }

    /// Whether request bodies are kept.
    pub(crate) fn records_bodies(&self) -> bool {
        self.bodies
    }

    /// Fills in the body of request `seq`, if it is still in the log.
    pub(crate) fn fill_body(&mut self, seq: u64, body: &[u8]) {
        if !self.bodies || body.is_empty() {
            return;
        }
        let first = self.total - self.entries.len() as u64;
        let Some(index) = seq.checked_sub(first) else {
            return;
        };
        if let Some(entry) = usize::try_from(index)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
        {
            entry.body = Some(Arc::from(body));
        }
    }

    /// How many requests were recorded, evicted ones included.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// The entries kept, oldest first; cheap enough to take under the lock.
    pub(crate) fn snapshot(&self) -> Vec<Entry> {
        self.entries.iter().cloned().collect()
    }

    /// The entries kept, oldest first, as [`RecordedRequest`]s.
    #[cfg(test)]
    pub(crate) fn requests(&self) -> Vec<RecordedRequest> {
        self.entries.iter().map(Entry::to_request).collect()
    }

    /// The bytes the entries take: the queue's slots and every entry's own allocations.
    #[cfg(test)]
    fn footprint(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self
                .entries
                .iter()
                .map(|e| e.head.len() + e.body.as_ref().map_or(0, |b| b.len()))
                .sum::<usize>()
    }
}

fn encode_head<B>(req: &Request<B>) -> Box<[u8]> {
    let headers = req.headers();
    let size = 8 * (1 + headers.len())
        + req.method().as_str().len()
        + 64
        + headers
            .iter()
            .map(|(n, v)| n.as_str().len() + v.len())
            .sum::<usize>();
    let mut head = Vec::with_capacity(size);
    put(&mut head, req.method().as_str().as_bytes());
    // NOTE: the length is patched in once the target is written: `Uri` has no byte view
    // that covers every form (origin, absolute, authority, `*`), only `Display`.
    let at = head.len();
    head.extend_from_slice(&[0; 4]);
    let _ = write!(head, "{}", req.uri());
    let len = u32::try_from(head.len() - at - 4).unwrap_or(u32::MAX);
    head[at..at + 4].copy_from_slice(&len.to_le_bytes());
    for (name, value) in headers {
        put(&mut head, name.as_str().as_bytes());
        put(&mut head, value.as_bytes());
    }
    head.into_boxed_slice()
}

fn put(head: &mut Vec<u8>, field: &[u8]) {
    // NOTE: hyper refuses heads far smaller than 4 GiB, so the length always fits.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(field);
}

/// Reads the fields `put` wrote, in order.
struct Fields<'a>(&'a [u8]);

impl<'a> Iterator for Fields<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
        let field = rest.get(..len)?;
        self.0 = &rest[len..];
        Some(field)
    }
}

impl Entry {
    pub(crate) fn to_request(&self) -> RecordedRequest {
        let mut fields = Fields(&self.head);
        // NOTE: every field was valid when hyper handed it over, so parsing it again
        // cannot fail; the fallbacks only keep this code free of panics.
        let method = fields
            .next()
            .and_then(|m| Method::from_bytes(m).ok())
            .unwrap_or_default();
        let uri = fields
            .next()
            .and_then(|u| Uri::from_maybe_shared(Bytes::copy_from_slice(u)).ok())
            .unwrap_or_default();
        let mut headers = HeaderMap::new();
        while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
            if let (Ok(name), Ok(value)) =
                (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
            {
                headers.append(name, value);
            }
        }
        RecordedRequest {
            method,
            uri,
            version: self.version,
            headers,
            body: self
                .body
                .as_deref()
                .map_or_else(Bytes::new, Bytes::copy_from_slice),
            at: self.at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request as hyper-util's client sends it through calm: a few ordinary headers.
    fn typical() -> Request<()> {
        Request::get("/v1/items/12345?page=2")
            .header("host", "127.0.0.1:40123")
            .header("user-agent", "calm/0.1.0")
            .header("accept", "application/json")
            .header("authorization", "Bearer t0k3n")
            .body(())
            .unwrap()
    }

    #[test]
    fn entries_are_rebuilt_as_they_arrived() {
        let mut log = Log::new(10, true);
        let mut req = Request::post("http://api.example/v1/x?y=1")
            .header("x-many", "one")
            .header("x-many", "two")
            .header("x-bytes", HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap())
            .body(())
            .unwrap();
        *req.version_mut() = Version::HTTP_2;
        let at = Instant::now();
        let seq = log.record(&req, at);
        log.fill_body(seq, b"{\"a\":1}");
        let [r] = &log.requests()[..] else {
            panic!("one entry")
        };
        assert_eq!(r.method, Method::POST);
        assert_eq!(r.uri, "http://api.example/v1/x?y=1");
        assert_eq!(r.version, Version::HTTP_2);
        assert_eq!(r.headers, *req.headers());
        assert_eq!(r.body, "{\"a\":1}");
        assert_eq!(r.at, at);

        for uri in ["*", "api.example:443", "/"] {
            let req = Request::builder().uri(uri).body(()).unwrap();
            log.record(&req, at);
            assert_eq!(log.requests().last().unwrap().uri, uri);
        }
    }

    #[test]
    fn the_log_keeps_the_most_recent_entries_and_counts_every_one() {
        let mut log = Log::new(3, true);
        let at = Instant::now();
        let seqs: Vec<u64> = (0..5)
            .map(|i| {
                let req = Request::get(format!("/{i}")).body(()).unwrap();
                log.record(&req, at)
            })
            .collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        assert_eq!(log.total(), 5);
        let paths: Vec<_> = log.requests().iter().map(|r| r.uri.to_string()).collect();
        assert_eq!(paths, ["/2", "/3", "/4"]);

        // A body that arrives after its entry was evicted goes nowhere; the others land.
        log.fill_body(seqs[1], b"gone");
        log.fill_body(seqs[3], b"kept");
        let bodies: Vec<_> = log.requests().into_iter().map(|r| r.body).collect();
        assert_eq!(bodies, ["", "kept", ""]);

        let mut none = Log::new(0, true);
        none.record(&typical(), at);
        assert_eq!((none.total(), none.requests().len()), (1, 0));
    }

    #[test]
    fn bodies_are_kept_only_when_asked() {
        let at = Instant::now();
        let mut log = Log::new(10, false);
        let seq = log.record(&typical(), at);
        log.fill_body(seq, b"payload");
        assert!(log.requests()[0].body.is_empty());
    }

    #[test]
    fn an_entry_is_small_and_the_log_is_bounded() {
        // NOTE: this bounds what the log holds per request, deterministically; the example
        // `log_memory` measures the whole process over a real run.
        let at = Instant::now();
        let mut log = Log::new(DEFAULT_LOG_LIMIT, true);
        let head = encode_head(&typical());
        assert!(head.len() <= 160, "{} bytes", head.len());
        for _ in 0..DEFAULT_LOG_LIMIT {
            log.record(&typical(), at);
        }
        let full = log.footprint();
        let per_entry = full / DEFAULT_LOG_LIMIT;
        assert!(per_entry <= 256, "{per_entry} bytes per entry");
        // Past the limit the log holds no more, however many requests come.
        for _ in 0..3 * DEFAULT_LOG_LIMIT {
            log.record(&typical(), at);
        }
        assert_eq!(log.footprint(), full);
        assert_eq!(log.total(), 4 * DEFAULT_LOG_LIMIT as u64);
        assert_eq!(log.requests().len(), DEFAULT_LOG_LIMIT);
    }
}
