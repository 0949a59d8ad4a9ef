//! The future of [`Transport`](super::Transport).

use super::body::{DecompressFuture, ResponseBody};
use super::service::FollowingFuture;
use super::TransportError;
use calm_retry::follow_up::FollowUp;
use http::header::CONTENT_ENCODING;
use http::uri::{Authority, Scheme};
use http::Response;
use http_body::Body;
use hyper::body::Incoming;
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tower::util::future::EitherResponseFuture;
use tower::BoxError;

pin_project! {
    /// The response future of [`Transport`](super::Transport).
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<B>
    where
        B: Body,
        B: Send,
        B: Unpin,
        B: 'static,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        #[pin]
        inner: DecompressFuture<Redirecting>,
        // NOTE: the request body type, kept so the type's name stays as it was.
        _body: PhantomData<fn(B)>,
    }
}

type Redirecting = EitherResponseFuture<FollowingFuture, HyperFuture>;

/// Marks a response that came with a `Content-Encoding`, whose body the decoder may change;
/// taken out of the response again before it leaves the transport.
#[derive(Clone, Copy, Debug)]
struct Encoded;

impl<B> ResponseFuture<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    pub(crate) fn new(inner: DecompressFuture<Redirecting>) -> Self {
        ResponseFuture {
            inner,
            _body: PhantomData,
        }
    }
}

impl<B> Future for ResponseFuture<B>
where
    B: Body + Default + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Output = Result<Response<ResponseBody>, TransportError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        let encoded = response.extensions_mut().remove::<Encoded>().is_some();
        Poll::Ready(Ok(response.map(|body| ResponseBody::new(body, encoded))))
    }
}

impl<B> fmt::Debug for ResponseFuture<B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// One hop: hyper-util's future with its error classified.
    pub(crate) struct HyperFuture {
        #[pin]
        inner: hyper_util::client::legacy::ResponseFuture,
        scheme: Option<Scheme>,
        authority: Option<Authority>,
        hop: Option<u32>,
    }
}

impl HyperFuture {
    pub(crate) fn new(
        inner: hyper_util::client::legacy::ResponseFuture,
        scheme: Option<Scheme>,
        authority: Option<Authority>,
        hop: Option<u32>,
    ) -> Self {
        HyperFuture {
            inner,
            scheme,
            authority,
            hop,
        }
    }
}

impl Future for HyperFuture {
    type Output = Result<Response<Incoming>, TransportError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let hop = *this.hop;
        Poll::Ready(match result {
            Ok(mut res) => {
                if res.headers().contains_key(CONTENT_ENCODING) {
                    res.extensions_mut().insert(Encoded);
                }
                if let Some(hop) = hop {
                    res.extensions_mut().insert(FollowUp::new(hop));
                }
                Ok(res)
            }
            Err(error) => {
                let error = TransportError::from_client(
                    error,
                    this.scheme.as_ref(),
                    this.authority.as_ref(),
                );
                Err(match hop {
                    Some(hop) => error.after_redirect(hop),
                    None => error,
                })
            }
        })
    }
}

impl fmt::Debug for HyperFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HyperFuture")
            .field("scheme", &self.scheme)
            .field("authority", &self.authority)
            .field("hop", &self.hop)
            .finish_non_exhaustive()
    }
}
