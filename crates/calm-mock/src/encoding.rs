//! Compressed replies: [`Encoding`], for [`Reply::encoded`](crate::Reply::encoded) and
//! [`Reply::encoded_if_accepted`](crate::Reply::encoded_if_accepted).
//!
//! The body is compressed when the reply is sent, after the request was read, so a scripted
//! reply can be written with its plain body in any order of calls. The encoders are the
//! crates tower-http's decoders are built on (flate2, brotli, zstd), at their default levels.

use std::io::{self, Write as _};

use bytes::Bytes;
use http::header::ACCEPT_ENCODING;
use http::HeaderMap;

/// A `Content-Encoding` the mock can compress a reply's body with.
///
/// ```
/// use calm_mock::Encoding;
/// use std::io::Read as _;
///
/// let gzipped = Encoding::Gzip.encode(b"hello").unwrap();
/// assert_ne!(&gzipped[..], b"hello");
/// let mut plain = String::new();
/// flate2::read::GzDecoder::new(&gzipped[..]).read_to_string(&mut plain).unwrap();
/// assert_eq!(plain, "hello");
/// assert_eq!(Encoding::Gzip.name(), "gzip");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Encoding {
    /// `gzip` (RFC 1952).
    Gzip,
    /// `br`: Brotli (RFC 7932).
    Brotli,
    /// `zstd`: Zstandard (RFC 8878).
    Zstd,
    /// `deflate`: the zlib format (RFC 1950), which is what `Content-Encoding: deflate`
    /// means (RFC 9110), not a raw deflate stream.
    Deflate,
}

impl Encoding {
    /// Every encoding, in the order of this enum.
    pub const ALL: [Encoding; 4] = [
        Encoding::Gzip,
        Encoding::Brotli,
        Encoding::Zstd,
        Encoding::Deflate,
    ];

    /// The `Content-Encoding` token: `gzip`, `br`, `zstd` or `deflate`.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Gzip => "gzip",
            Encoding::Brotli => "br",
            Encoding::Zstd => "zstd",
            Encoding::Deflate => "deflate",
        }
    }

    /// `data` compressed, as the mock sends it.
    ///
    /// # Errors
    ///
    /// When the encoder fails (it writes to memory, so only on a bug in it).
    pub fn encode(self, data: &[u8]) -> io::Result<Bytes> {
        let encoded = match self {
            Encoding::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data)?;
                encoder.finish()?
            }
            Encoding::Deflate => {
                let mut encoder =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data)?;
                encoder.finish()?
            }
            Encoding::Brotli => {
                // NOTE: quality 5 and a 4 MiB window (22) are the usual choices for HTTP.
                let mut encoder = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
                encoder.write_all(data)?;
                encoder.flush()?;
                encoder.into_inner()
            }
            Encoding::Zstd => zstd::encode_all(data, 0)?,
        };
        Ok(Bytes::from(encoded))
    }

    /// Whether `headers` hold an `Accept-Encoding` that accepts this encoding: it is listed
    /// (or `*` is), with a `q` above 0.
    pub(crate) fn accepted_by(self, headers: &HeaderMap) -> bool {
        let mut star = false;
        for value in headers.get_all(ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for item in value.split(',') {
                let mut parts = item.split(';');
                let token = parts.next().unwrap_or_default().trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                if token.eq_ignore_ascii_case(self.name()) {
                    return !refused;
                }
                if token == "*" {
                    star = !refused;
                }
            }
        }
        star
    }
}

/// When a reply's body is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Encode {
    /// Always.
    Always(Encoding),
    /// Only when the request's `Accept-Encoding` accepts the encoding.
    IfAccepted(Encoding),
}

impl Encode {
    /// The encoding to use for a request with `headers`, if any.
    pub(crate) fn choose(self, headers: &HeaderMap) -> Option<Encoding> {
        match self {
            Encode::Always(encoding) => Some(encoding),
            Encode::IfAccepted(encoding) => encoding.accepted_by(headers).then_some(encoding),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn accept(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn accept_encoding_is_read_with_q_values_and_star() {
        assert!(Encoding::Gzip.accepted_by(&accept("zstd,gzip,deflate,br")));
        assert!(Encoding::Brotli.accepted_by(&accept("gzip, br;q=0.5")));
        assert!(!Encoding::Brotli.accepted_by(&accept("gzip, br;q=0")));
        assert!(!Encoding::Zstd.accepted_by(&accept("gzip")));
        assert!(Encoding::Zstd.accepted_by(&accept("*")));
        assert!(!Encoding::Zstd.accepted_by(&accept("*, zstd;q=0")));
        assert!(!Encoding::Gzip.accepted_by(&HeaderMap::new()));
    }

    #[test]
    fn every_encoding_shrinks_a_repetitive_body() {
        let data = b"calm ".repeat(1000);
        for encoding in Encoding::ALL {
            let encoded = encoding.encode(&data).unwrap();
            assert!(encoded.len() < data.len() / 10, "{encoding:?}");
        }
    }
}
