use std::{
    fmt,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{ready, Context, Poll, Wake, Waker},
};

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http_body::{Body, Frame, SizeHint};
use tower::BoxError;

use super::TryCloneBody;
use crate::error::ReplayError;

/// The default cap of a [`ReplayBody`]'s buffer: 64 KiB.
pub const DEFAULT_MAX_REPLAY_BYTES: usize = 64 * 1024;

/// Data frames shorter than this are copied together into pieces of at least this size
/// instead of being kept one by one.
const SMALL_FRAME: usize = 1024;

/// A request body that can be sent again: it buffers the bytes of the body it wraps, lazily,
/// as the first attempt streams them, up to a cap.
///
/// [`try_clone_body`](TryCloneBody::try_clone_body) makes a copy that yields the buffered
/// bytes and then goes on reading the original body where it stopped — so a retry can start
/// even when the first attempt did not read the whole body. All copies share one buffer and
/// see the same sequence of bytes, in whatever order they are polled.
///
/// When the body grows past the cap the buffer is dropped: the copy being read goes on
/// streaming normally (the attempt finishes as if nothing happened), but no copy can be made
/// any more — `try_clone_body` returns `None` and [`Retry`](crate::Retry) records
/// [`StopReason::BodyNotReplayable`](crate::StopReason::BodyNotReplayable). A copy that was
/// already behind fails with [`ReplayError`].
///
/// The cap bounds the buffer's memory, not only its bytes: empty data frames are passed on but
/// not stored, and frames under 1 KiB are copied together into pieces of at least 1 KiB, so
/// a body of a million one-byte frames is buffered (up to the cap) in a few pieces, not a
/// million. A copy replays the same bytes, not necessarily in the same frames.
///
/// Trailers are kept (outside the cap) and replayed after the data. Data frames are turned
/// into [`Bytes`] (free for bodies whose data already is `Bytes`). The size hint of a copy is
/// exact when the original's is, so `Content-Length` framing survives a replay.
///
/// `ReplayBody<B>` is `Send + Sync` when `B: Send`, always `Unpin` (the original body is
/// pinned on the heap), and `Default` when `B: Default` (tower-http's `FollowRedirect` needs
/// that).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use bytes::Bytes;
/// use calm_retry::{ReplayBody, TryCloneBody};
/// use http_body_util::{BodyExt, StreamBody};
/// use http_body::Frame;
///
/// let chunks = ["a", "b", "c"]
///     .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c))));
/// let first = ReplayBody::new(StreamBody::new(futures_util::stream::iter(chunks)));
/// let second = first.try_clone_body().unwrap();
///
/// assert_eq!(first.collect().await.unwrap().to_bytes(), "abc");
/// assert_eq!(second.collect().await.unwrap().to_bytes(), "abc");
///
/// // Past the cap, no more copies.
/// let big = ReplayBody::with_max_bytes(http_body_util::Full::new(Bytes::from("0123456789")), 4);
/// let _ = big.try_clone_body().unwrap().collect().await.unwrap();
/// assert!(big.try_clone_body().is_none());
/// # }
/// ```
pub struct ReplayBody<B> {
    shared: Arc<Mutex<Shared<B>>>,
    /// How many bytes this copy has yielded.
    pos: u64,
    /// Where byte `pos` is in the buffer: a piece (`pieces.len()` is the tail) and an offset
    /// in it. Only meaningful while `pos < read` and the buffer is not capped.
    cursor: (usize, usize),
    trailers_sent: bool,
}

struct Shared<B> {
    /// The original body; `None` once it ended or failed.
    body: Option<Pin<Box<B>>>,
    /// The bytes read so far, while under the cap: frames of `SMALL_FRAME` bytes or more as
    /// they came, smaller ones copied together.
    pieces: Vec<Bytes>,
    /// Small frames not yet made a piece: the piece after the last one.
    ///
    /// NOTE: when it becomes a piece it keeps its index and its bytes, so the cursor of a
    /// copy that was reading it stays right.
    tail: BytesMut,
    /// How many bytes were read from the original body, past the cap too.
    read: u64,
    /// How many bytes `pieces` and `tail` hold (all of `read` until capped, then 0).
    buffered: usize,
    max: usize,
    capped: bool,
    trailers: Option<HeaderMap>,
    ended: bool,
    failed: bool,
    /// The copies waiting for the original body to yield more.
    waiters: Arc<Waiters>,
    /// Wakes every one of `waiters`: the waker the original body is polled with.
    wake_waiters: Waker,
}

/// The tasks of every copy that found the original body pending.
///
/// NOTE: the original keeps only the waker of its last poll, yet any copy can be the one
/// waiting for it (a retry starts while the first attempt still streams, then one of them
/// is dropped). So it is polled with a waker that wakes them all.
#[derive(Default)]
struct Waiters(Mutex<Vec<Waker>>);

impl Waiters {
    fn wake_all(&self) {
        let list = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        list.into_iter().for_each(Waker::wake);
    }

    fn register(&self, waker: &Waker) {
        let mut list = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !list.iter().any(|w| w.will_wake(waker)) {
            list.push(waker.clone());
        }
    }
}

impl Wake for Waiters {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wake_all();
    }
}

impl<B> ReplayBody<B> {
    /// Wraps `body` with the default cap, [`DEFAULT_MAX_REPLAY_BYTES`] (64 KiB).
    ///
    /// When the body goes through [`Retry`](crate::Retry), the policy's
    /// [`max_replay_bytes`](crate::RetryPolicy::max_replay_bytes) replaces the cap.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use bytes::Bytes;
    /// use calm_retry::body::DEFAULT_MAX_REPLAY_BYTES;
    /// use calm_retry::{ReplayBody, TryCloneBody};
    /// use http_body_util::{BodyExt, Full};
    ///
    /// // Exactly the cap is still replayable; one byte more is not.
    /// let cap = DEFAULT_MAX_REPLAY_BYTES; // 64 KiB
    /// for (len, capped) in [(cap, false), (cap + 1, true)] {
    ///     let body = ReplayBody::new(Full::new(Bytes::from(vec![b'x'; len])));
    ///     body.try_clone_body().unwrap().collect().await.unwrap();
    ///     assert_eq!(body.is_capped(), capped);
    /// }
    /// # }
    /// ```
    pub fn new(body: B) -> Self {
        Self::with_max_bytes(body, DEFAULT_MAX_REPLAY_BYTES)
    }

    /// Wraps `body`, buffering at most `max_bytes` of it. See the type's example.
    pub fn with_max_bytes(body: B, max_bytes: usize) -> Self {
        let waiters = Arc::new(Waiters::default());
        ReplayBody {
            shared: Arc::new(Mutex::new(Shared {
                body: Some(Box::pin(body)),
                pieces: Vec::new(),
                tail: BytesMut::new(),
                read: 0,
                buffered: 0,
                max: max_bytes,
                capped: false,
                trailers: None,
                ended: false,
                failed: false,
                wake_waiters: Waker::from(Arc::clone(&waiters)),
                waiters,
            })),
            pos: 0,
            cursor: (0, 0),
            trailers_sent: false,
        }
    }

    /// Whether the body went past its cap (or failed), so it cannot be replayed any more.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use bytes::Bytes;
    /// use calm_retry::{ReplayBody, TryCloneBody};
    /// use http_body_util::{BodyExt, Full};
    ///
    /// let body = ReplayBody::with_max_bytes(Full::new(Bytes::from("0123456789")), 8);
    /// assert!(!body.is_capped()); // nothing read yet
    /// body.try_clone_body().unwrap().collect().await.unwrap();
    /// assert!(body.is_capped());
    /// assert!(body.try_clone_body().is_none());
    /// # }
    /// ```
    pub fn is_capped(&self) -> bool {
        let shared = self.lock();
        shared.capped || shared.failed
    }

    /// How many bytes are buffered right now.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use bytes::Bytes;
    /// use calm_retry::ReplayBody;
    /// use http_body::Frame;
    /// use http_body_util::{BodyExt, StreamBody};
    ///
    /// let chunks = ["ab", "cde"]
    ///     .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c))));
    /// let mut body = ReplayBody::new(StreamBody::new(futures_util::stream::iter(chunks)));
    /// assert_eq!(body.buffered_bytes(), 0); // buffered lazily, as it is read
    /// body.frame().await.unwrap().unwrap();
    /// assert_eq!(body.buffered_bytes(), 2);
    /// # }
    /// ```
    pub fn buffered_bytes(&self) -> usize {
        self.lock().buffered
    }

    /// How many pieces the buffer holds: what its bookkeeping grows with, beside its bytes.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        let shared = self.lock();
        let list = shared
            .waiters
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        list.len()
    }

    #[cfg(test)]
    fn stored_frames(&self) -> usize {
        let shared = self.lock();
        shared.pieces.len() + usize::from(!shared.tail.is_empty())
    }

    fn lock(&self) -> MutexGuard<'_, Shared<B>> {
        // NOTE: a panic in the inner body's poll poisons the lock; the state is still
        // consistent (every update happens after the poll), so go on with it.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<B> Shared<B> {
    fn set_max(&mut self, max: usize) {
        self.max = max;
        if self.buffered > max {
            self.cap();
        }
    }

    fn cap(&mut self) {
        self.capped = true;
        self.pieces = Vec::new();
        self.tail = BytesMut::new();
        self.buffered = 0;
    }

    /// Adds the non-empty `data`, just read, to the buffer, or caps it.
    fn store(&mut self, data: &Bytes) {
        self.read = self.read.saturating_add(data.len() as u64);
        if self.capped {
            return;
        }
        if self.buffered.saturating_add(data.len()) > self.max {
            self.cap();
            return;
        }
        self.buffered += data.len();
        if data.len() >= SMALL_FRAME {
            self.seal_tail();
            self.pieces.push(data.clone());
        } else {
            self.tail.extend_from_slice(data);
            if self.tail.len() >= SMALL_FRAME {
                self.seal_tail();
            }
        }
    }

    /// Makes the tail a piece, if it holds anything.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            let piece = self.tail.split().freeze();
            self.pieces.push(piece);
        }
    }

    /// The cursor of the byte after the last one buffered.
    fn end(&self) -> (usize, usize) {
        (self.pieces.len(), self.tail.len())
    }

    /// The buffered bytes from `cursor` to the end of its piece (empty at a piece's end), and
    /// the cursor after them.
    fn piece_at(&self, (index, offset): (usize, usize)) -> (Bytes, (usize, usize)) {
        match self.pieces.get(index) {
            Some(piece) => (piece.slice(offset..), (index + 1, 0)),
            // NOTE: a copy, not a view: the tail may still grow in place.
            None => (
                Bytes::copy_from_slice(&self.tail[offset..]),
                (index, self.tail.len()),
            ),
        }
    }
}

impl<B> TryCloneBody for ReplayBody<B> {
    fn try_clone_body(&self) -> Option<Self> {
        let shared = self.lock();
        if shared.capped || shared.failed {
            return None;
        }
        drop(shared);
        Some(ReplayBody {
            shared: Arc::clone(&self.shared),
            pos: 0,
            cursor: (0, 0),
            trailers_sent: false,
        })
    }

    fn limit_replay(&mut self, max_bytes: usize) {
        self.lock().set_max(max_bytes);
    }
}

impl<B> Body for ReplayBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let shared = Arc::clone(&this.shared);
        let mut guard = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let shared = &mut *guard;
        loop {
            if this.pos < shared.read {
                if shared.capped {
                    return Poll::Ready(Some(Err(ReplayError::new().into())));
                }
                let (piece, next) = shared.piece_at(this.cursor);
                this.cursor = next;
                if piece.is_empty() {
                    continue;
                }
                this.pos += piece.len() as u64;
                return Poll::Ready(Some(Ok(Frame::data(piece))));
            }
            if shared.ended {
                if !this.trailers_sent {
                    this.trailers_sent = true;
                    if let Some(trailers) = &shared.trailers {
                        return Poll::Ready(Some(Ok(Frame::trailers(trailers.clone()))));
                    }
                }
                return Poll::Ready(None);
            }
            if shared.failed {
                return Poll::Ready(Some(Err(ReplayError::new().into())));
            }
            let Some(body) = shared.body.as_mut() else {
                // NOTE: `body` is only taken when `ended` or `failed` is set, handled above.
                return Poll::Ready(None);
            };
            shared.waiters.register(cx.waker());
            let mut all = Context::from_waker(&shared.wake_waiters);
            let polled = body.as_mut().poll_frame(&mut all);
            if polled.is_ready() {
                // NOTE: the original moved on, so every copy that waited for it may read again;
                // and the list must not keep growing with the wakers of a reader that never
                // had to wait (`will_wake` can be false for two wakers of one task).
                shared.waiters.wake_all();
            }
            match ready!(polled) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(mut data) => {
                        let bytes = data.copy_to_bytes(data.remaining());
                        // NOTE: an empty frame carries nothing to replay: passed on, never
                        // stored, so a stream of them cannot grow the buffer.
                        if !bytes.is_empty() {
                            shared.store(&bytes);
                            this.pos = shared.read;
                            this.cursor = shared.end();
                        }
                        return Poll::Ready(Some(Ok(Frame::data(bytes))));
                    }
                    Err(frame) => {
                        if let Ok(trailers) = frame.into_trailers() {
                            // NOTE: trailers are the last frame; the next poll sees the end.
                            this.trailers_sent = true;
                            shared.trailers = Some(trailers.clone());
                            return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
                        }
                        // An unknown kind of frame: nothing to replay, skip it.
                    }
                },
                Some(Err(err)) => {
                    shared.failed = true;
                    shared.body = None;
                    return Poll::Ready(Some(Err(err.into())));
                }
                None => {
                    shared.ended = true;
                    shared.body = None;
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        let shared = self.lock();
        if self.pos < shared.read {
            return false;
        }
        let no_more_data = shared.ended
            || shared
                .body
                .as_ref()
                .is_some_and(|body| body.is_end_stream());
        no_more_data && (self.trailers_sent || shared.trailers.is_none()) && !shared.failed
    }

    fn size_hint(&self) -> SizeHint {
        let shared = self.lock();
        let rest = match &shared.body {
            Some(body) => body.size_hint(),
            None => SizeHint::with_exact(0),
        };
        if self.pos >= shared.read {
            return rest;
        }
        if shared.capped {
            return SizeHint::default();
        }
        let buffered = shared.read - self.pos;
        let mut hint = SizeHint::new();
        hint.set_lower(rest.lower().saturating_add(buffered));
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(buffered));
        }
        hint
    }
}

impl<B: Default> Default for ReplayBody<B> {
    fn default() -> Self {
        Self::new(B::default())
    }
}

impl<B> fmt::Debug for ReplayBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.lock();
        f.debug_struct("ReplayBody")
            .field("pos", &self.pos)
            .field("read", &shared.read)
            .field("buffered", &shared.buffered)
            .field(
                "pieces",
                &(shared.pieces.len() + usize::from(!shared.tail.is_empty())),
            )
            .field("max", &shared.max)
            .field("capped", &shared.capped)
            .field("ended", &shared.ended)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use http_body_util::{channel::Channel, BodyExt, Empty, Full, StreamBody};

    use super::*;

    fn chunks(parts: &[&'static str]) -> impl Body<Data = Bytes, Error = Infallible> + Unpin {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    async fn read_all<B>(body: B) -> Result<(Bytes, Option<HeaderMap>), BoxError>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        let collected = body.collect().await.map_err(Into::into)?;
        let trailers = collected.trailers().cloned();
        Ok((collected.to_bytes(), trailers))
    }

    fn assert_traits<T: Send + Sync + Unpin + Default + Body>() {}

    #[test]
    fn is_send_sync_unpin_default() {
        assert_traits::<ReplayBody<Full<Bytes>>>();
        assert_traits::<ReplayBody<Empty<Bytes>>>();
    }

    #[tokio::test]
    async fn replays_after_a_full_read() {
        let first = ReplayBody::new(chunks(&["ab", "cd", "e"]));
        let second = first.try_clone_body().unwrap();
        assert_eq!(read_all(first).await.unwrap().0, "abcde");
        let third = second.try_clone_body().unwrap();
        assert_eq!(read_all(second).await.unwrap().0, "abcde");
        assert_eq!(read_all(third).await.unwrap().0, "abcde");
    }

    #[tokio::test]
    async fn replays_a_partial_read_then_continues_the_original() {
        let mut first = ReplayBody::new(chunks(&["ab", "cd", "e"]));
        let frame = first.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "ab");
        let second = first.try_clone_body().unwrap();
        drop(first);
        assert_eq!(read_all(second).await.unwrap().0, "abcde");
    }

    #[tokio::test]
    async fn interleaved_copies_see_the_same_bytes() {
        let mut a = ReplayBody::new(chunks(&["1", "2", "3", "4"]));
        let mut b = a.try_clone_body().unwrap();
        let mut seen_a = Vec::new();
        let mut seen_b = Vec::new();
        seen_a.push(a.frame().await.unwrap().unwrap().into_data().unwrap());
        seen_b.push(b.frame().await.unwrap().unwrap().into_data().unwrap());
        seen_b.push(b.frame().await.unwrap().unwrap().into_data().unwrap());
        seen_b.push(b.frame().await.unwrap().unwrap().into_data().unwrap());
        seen_a.push(a.frame().await.unwrap().unwrap().into_data().unwrap());
        while let Some(f) = a.frame().await {
            seen_a.push(f.unwrap().into_data().unwrap());
        }
        while let Some(f) = b.frame().await {
            seen_b.push(f.unwrap().into_data().unwrap());
        }
        // NOTE: the same bytes, not the same frames: a copy behind the original gets small
        // frames that were buffered together in one piece.
        assert_eq!(seen_a.concat(), b"1234");
        assert_eq!(seen_a.concat(), seen_b.concat());
    }

    #[tokio::test]
    async fn a_copy_reading_small_frames_goes_on_when_they_become_a_piece() {
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
        let mut a = ReplayBody::new(body);
        let mut b = a.try_clone_body().unwrap();
        async fn next(body: &mut ReplayBody<Channel<Bytes, Infallible>>) -> Bytes {
            body.frame().await.unwrap().unwrap().into_data().unwrap()
        }
        tx.send_data(Bytes::from_static(b"abc")).await.unwrap();
        assert_eq!(next(&mut a).await, "abc");
        assert_eq!(next(&mut b).await, "abc"); // from the small frames not yet a piece
        tx.send_data(Bytes::from(vec![b'd'; SMALL_FRAME - 3]))
            .await
            .unwrap();
        assert_eq!(next(&mut a).await.len(), SMALL_FRAME - 3); // now they make a piece
        tx.send_data(Bytes::from(vec![b'e'; 2 * SMALL_FRAME]))
            .await
            .unwrap();
        assert_eq!(next(&mut a).await.len(), 2 * SMALL_FRAME);
        drop(tx);
        assert_eq!(a.stored_frames(), 2);
        let mut expected = b"abc".to_vec();
        expected.extend(vec![b'd'; SMALL_FRAME - 3]);
        expected.extend(vec![b'e'; 2 * SMALL_FRAME]);
        let fresh = a.try_clone_body().unwrap();
        assert!(read_all(a).await.unwrap().0.is_empty());
        assert!(read_all(fresh).await.unwrap().0 == expected[..]);
        let rest = tokio::time::timeout(std::time::Duration::from_secs(5), read_all(b))
            .await
            .expect("the copy does not spin")
            .unwrap();
        assert!(rest.0 == expected[3..], "the copy went on where it was");
    }

    #[tokio::test]
    async fn copies_polled_in_any_order_see_the_same_bytes() {
        // Frames of every size class (empty, small, exactly SMALL_FRAME, large) so the tail is
        // made a piece while copies are reading it.
        let sizes = [
            3, 0, 1, 700, 400, 1024, 2, 0, 3000, 1023, 1, 1, 5000, 9, 0, 1500, 4,
        ];
        let parts: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from(vec![b'a' + i as u8; n]))
            .collect();
        let whole = parts.concat();
        let frames = parts
            .into_iter()
            .map(|p| Ok::<_, Infallible>(Frame::data(p)));
        let first = ReplayBody::new(StreamBody::new(futures_util::stream::iter(frames)));
        let mut copies = vec![(first.try_clone_body().unwrap(), Vec::new(), false)];
        copies.push((first, Vec::new(), false));
        // A fixed pseudo-random schedule; a third copy joins half-way.
        let mut state = 0x2545_f491_u32;
        for step in 0..400 {
            if step == 20 {
                let late = copies[0].0.try_clone_body().unwrap();
                copies.push((late, Vec::new(), false));
            }
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let which = state as usize % copies.len();
            let (body, seen, done) = &mut copies[which];
            if *done {
                continue;
            }
            match body.frame().await {
                Some(frame) => seen.extend_from_slice(&frame.unwrap().into_data().unwrap()),
                None => *done = true,
            }
        }
        for (body, mut seen, done) in copies {
            if !done {
                seen.extend_from_slice(&read_all(body).await.unwrap().0);
            }
            assert_eq!(seen, whole);
        }
    }

    #[tokio::test]
    async fn past_the_cap_the_attempt_finishes_but_no_copy_can_be_made() {
        let first = ReplayBody::with_max_bytes(chunks(&["abc", "def", "ghi"]), 5);
        let behind = first.try_clone_body().unwrap();
        assert_eq!(read_all(first).await.unwrap().0, "abcdefghi");
        assert!(behind.is_capped());
        assert!(behind.try_clone_body().is_none());
        let err = read_all(behind).await.unwrap_err();
        assert!(err.is::<ReplayError>());
    }

    #[tokio::test]
    async fn exactly_the_cap_is_still_replayable() {
        let first = ReplayBody::with_max_bytes(chunks(&["abc", "de"]), 5);
        let second = first.try_clone_body().unwrap();
        assert_eq!(read_all(first).await.unwrap().0, "abcde");
        assert_eq!(second.buffered_bytes(), 5);
        assert_eq!(read_all(second).await.unwrap().0, "abcde");
    }

    #[tokio::test]
    async fn limit_replay_lowers_the_cap() {
        let mut first = ReplayBody::new(Full::new(Bytes::from_static(b"0123456789")));
        first.limit_replay(0);
        let _ = read_all(first.try_clone_body().unwrap()).await.unwrap();
        assert!(first.try_clone_body().is_none());
    }

    #[tokio::test]
    async fn trailers_are_replayed() {
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
        let first = ReplayBody::new(body);
        let second = first.try_clone_body().unwrap();
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "abc".parse().unwrap());
        tx.send_data(Bytes::from_static(b"data")).await.unwrap();
        tx.send_trailers(trailers.clone()).await.unwrap();
        drop(tx);
        let (data, t) = read_all(first).await.unwrap();
        assert_eq!(data, "data");
        assert_eq!(t.as_ref(), Some(&trailers));
        let (data, t) = read_all(second).await.unwrap();
        assert_eq!(data, "data");
        assert_eq!(t.as_ref(), Some(&trailers));
    }

    #[tokio::test]
    async fn size_hint_stays_exact() {
        let first = ReplayBody::new(Full::new(Bytes::from_static(b"hello")));
        assert_eq!(first.size_hint().exact(), Some(5));
        let second = first.try_clone_body().unwrap();
        let _ = read_all(first).await.unwrap();
        assert_eq!(second.size_hint().exact(), Some(5));
        assert!(!second.is_end_stream());
        let empty = ReplayBody::new(Empty::<Bytes>::new());
        assert!(empty.is_end_stream());
        assert_eq!(empty.size_hint().exact(), Some(0));
    }

    #[tokio::test]
    async fn every_copy_waiting_on_the_original_is_woken() {
        // Two copies wait on the original at once (a retry started while the first attempt
        // is still streaming); the original keeps one waker only, the last one it was given.
        let (mut tx, body) = Channel::<Bytes, Infallible>::new(4);
        let mut first = ReplayBody::new(body);
        let mut retry = first.try_clone_body().unwrap();
        let mut a = tokio_test::task::spawn(first.frame());
        let mut b = tokio_test::task::spawn(retry.frame());
        tokio_test::assert_pending!(a.poll());
        tokio_test::assert_pending!(b.poll());
        tx.send_data(Bytes::from_static(b"x")).await.unwrap();
        assert!(b.is_woken());
        // the copy that polled last goes away without polling again (a cancelled attempt)
        drop(b);
        assert!(a.is_woken(), "the other copy must not sleep forever");
        let frame = tokio_test::assert_ready!(a.poll()).unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), "x");
    }

    /// A body of `n` data frames, each `frame` long (`b'a' + i % 26` repeated).
    fn frames(n: usize, frame: usize) -> impl Body<Data = Bytes, Error = Infallible> + Unpin {
        let frames = (0..n).map(move |i| {
            let byte = b'a' + (i % 26) as u8;
            Ok(Frame::data(Bytes::from(vec![byte; frame])))
        });
        StreamBody::new(futures_util::stream::iter(frames))
    }

    fn expected(n: usize, frame: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| std::iter::repeat_n(b'a' + (i % 26) as u8, frame))
            .collect()
    }

    /// Two wakers of one task need not `will_wake` each other; a reader that never had to wait
    /// must not leave one behind per frame (that made reading quadratic).
    #[test]
    fn a_reader_that_never_waits_leaves_no_wakers_behind() {
        struct Noop;
        impl std::task::Wake for Noop {
            fn wake(self: Arc<Self>) {}
        }
        let mut body = ReplayBody::with_max_bytes(frames(1000, 1), 64 * 1024);
        let copy = body.try_clone_body().unwrap();
        for _ in 0..1000 {
            let waker = Waker::from(Arc::new(Noop));
            let mut cx = Context::from_waker(&waker);
            assert!(Pin::new(&mut body).poll_frame(&mut cx).is_ready());
        }
        assert_eq!(copy.waiting(), 0);
    }

    #[tokio::test]
    async fn empty_frames_are_not_stored() {
        let first = ReplayBody::with_max_bytes(frames(2_000_000, 0), 1024);
        let second = first.try_clone_body().unwrap();
        assert!(read_all(first).await.unwrap().0.is_empty());
        assert_eq!(second.stored_frames(), 0);
        assert_eq!(second.buffered_bytes(), 0);
        assert!(!second.is_capped());
        assert!(read_all(second).await.unwrap().0.is_empty());
    }

    #[tokio::test]
    async fn tiny_frames_are_stored_in_few_pieces() {
        // Within the cap: replayed exactly, from a handful of pieces.
        let first = ReplayBody::with_max_bytes(frames(1000, 1), 1024);
        let second = first.try_clone_body().unwrap();
        assert_eq!(read_all(first).await.unwrap().0, expected(1000, 1));
        assert_eq!(second.buffered_bytes(), 1000);
        assert!(
            second.stored_frames() <= 4,
            "{} pieces",
            second.stored_frames()
        );
        assert_eq!(read_all(second).await.unwrap().0, expected(1000, 1));

        // Past the cap: the attempt streams on, the buffer goes, no copy can be made.
        let first = ReplayBody::with_max_bytes(frames(200_000, 1), 1024);
        let behind = first.try_clone_body().unwrap();
        let mut reader = first.try_clone_body().unwrap();
        let mut most = 0;
        let mut read = Vec::new();
        while let Some(frame) = reader.frame().await {
            read.extend_from_slice(&frame.unwrap().into_data().unwrap());
            most = most.max(behind.stored_frames());
        }
        assert_eq!(read, expected(200_000, 1));
        assert!(most <= 4, "at most {most} pieces were held");
        assert_eq!((behind.stored_frames(), behind.buffered_bytes()), (0, 0));
        assert!(behind.try_clone_body().is_none());
        assert!(read_all(behind).await.unwrap_err().is::<ReplayError>());
    }

    #[tokio::test]
    async fn errors_end_replay() {
        let frames: Vec<Result<Frame<Bytes>, std::io::Error>> = vec![
            Ok(Frame::data(Bytes::from_static(b"x"))),
            Err(std::io::Error::other("boom")),
        ];
        let first = ReplayBody::new(StreamBody::new(futures_util::stream::iter(frames)));
        let second = first.try_clone_body().unwrap();
        assert!(read_all(first).await.is_err());
        assert!(second.try_clone_body().is_none());
        assert!(read_all(second).await.unwrap_err().is::<ReplayError>());
    }
}
