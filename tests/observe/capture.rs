//! A `tracing` layer that keeps every span and event, with their fields as text, so tests can
//! assert the span tree, the levels and what no field may contain.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The subscriber of one test, in force until dropped.
pub(crate) struct Installed(
    #[allow(dead_code)] tracing::subscriber::DefaultGuard,
    #[allow(dead_code)] crate::support::Serial,
);

/// One span as it was opened and recorded.
#[derive(Clone, Debug)]
pub(crate) struct SpanData {
    pub(crate) id: u64,
    pub(crate) name: &'static str,
    pub(crate) level: Level,
    pub(crate) parent: Option<u64>,
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) closed: bool,
}

impl SpanData {
    /// A field's value as text, if it was recorded.
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

/// One event, with the span it happened in.
#[derive(Clone, Debug)]
pub(crate) struct EventData {
    pub(crate) level: Level,
    pub(crate) message: String,
    pub(crate) fields: BTreeMap<String, String>,
    pub(crate) span: Option<u64>,
}

impl EventData {
    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }
}

#[derive(Default)]
struct Store {
    spans: Vec<SpanData>,
    events: Vec<EventData>,
}

/// What a test subscriber saw; clones share it.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Store>>);

impl Captured {
    /// Installs a subscriber recording at `level` and up for the current thread, until the
    /// guard is dropped (and keeps other tests of the binary waiting until then).
    pub(crate) fn install(level: LevelFilter) -> (Captured, Installed) {
        let serial = crate::support::serial();
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(captured.clone().with_filter(level));
        let default = tracing::subscriber::set_default(subscriber);
        (captured, Installed(default, serial))
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn spans(&self) -> Vec<SpanData> {
        self.store().spans.clone()
    }

    pub(crate) fn events(&self) -> Vec<EventData> {
        self.store().events.clone()
    }

    /// The spans named `name`, in the order they were opened.
    pub(crate) fn spans_named(&self, name: &str) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.name == name)
            .collect()
    }

    /// The spans whose parent is `parent`, in the order they were opened.
    pub(crate) fn children(&self, parent: u64) -> Vec<SpanData> {
        self.spans()
            .into_iter()
            .filter(|s| s.parent == Some(parent))
            .collect()
    }

    /// Every name, message and field value seen, for "never shows" assertions.
    pub(crate) fn all_text(&self) -> String {
        let store = self.store();
        let spans = store.spans.iter().flat_map(|s| {
            std::iter::once(s.name.to_string())
                .chain(s.fields.iter().map(|(k, v)| format!("{k}={v}")))
        });
        let events = store.events.iter().flat_map(|e| {
            std::iter::once(e.message.clone())
                .chain(e.fields.iter().map(|(k, v)| format!("{k}={v}")))
        });
        spans.chain(events).collect::<Vec<_>>().join("\n")
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

/// A span's number in `Store::spans` (tracing's own ids are reused once a span closes).
struct Seq(usize);

fn seq<S>(ctx: &Context<'_, S>, id: &Id) -> Option<usize>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    ctx.span(id)?.extensions().get::<Seq>().map(|seq| seq.0)
}

impl<S> Layer<S> for Captured
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attrs.record(&mut Fields(&mut fields));
        let Some(span) = ctx.span(id) else { return };
        let parent = span
            .parent()
            .and_then(|parent| parent.extensions().get::<Seq>().map(|seq| seq.0 as u64));
        let mut store = self.store();
        let number = store.spans.len();
        span.extensions_mut().insert(Seq(number));
        store.spans.push(SpanData {
            id: number as u64,
            name: attrs.metadata().name(),
            level: *attrs.metadata().level(),
            parent,
            fields,
            closed: false,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(number) = seq(&ctx, id) {
            values.record(&mut Fields(&mut self.store().spans[number].fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        let message = fields.remove("message").unwrap_or_default();
        let span = ctx
            .event_span(event)
            .and_then(|span| span.extensions().get::<Seq>().map(|seq| seq.0 as u64));
        self.store().events.push(EventData {
            level: *event.metadata().level(),
            message,
            fields,
            span,
        });
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(number) = seq(&ctx, &id) {
            self.store().spans[number].closed = true;
        }
    }
}
