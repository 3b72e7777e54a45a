//! Logging: `tracing` events from the core, sent to the platform's logger.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Log levels, most severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

/// Implemented by the shell (Logcat, OSLog). Called from whichever thread logged; keep it quick.
#[uniffi::export(with_foreign)]
pub trait LogSink: Send + Sync {
    fn log(&self, level: LogLevel, target: String, message: String);
}

struct SinkLayer {
    sink: Arc<dyn LogSink>,
}

/// Renders an event's message and fields as `message key=value …`.
#[derive(Default)]
struct Render(String);

impl Visit for Render {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.0, "{value:?}");
        } else {
            let _ = write!(self.0, " {}={value:?}", field.name());
        }
    }
}

impl<S: Subscriber> Layer<S> for SinkLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            Level::DEBUG => LogLevel::Debug,
            Level::TRACE => LogLevel::Trace,
        };
        let mut text = Render::default();
        event.record(&mut text);
        self.sink
            .log(level, meta.target().to_owned(), text.0.trim().to_owned());
    }
}

static INSTALLED: OnceLock<()> = OnceLock::new();

/// Send the core's log events at `level` and above to `sink`, and Rust panics as errors (on iOS
/// stderr goes nowhere). The first call wins for the life of the process (a global subscriber
/// cannot be replaced); it returns whether this call installed it.
#[uniffi::export]
pub fn init_logging(level: LogLevel, sink: Arc<dyn LogSink>) -> bool {
    let mut installed = false;
    INSTALLED.get_or_init(|| {
        let filter = match level {
            LogLevel::Error => LevelFilter::ERROR,
            LogLevel::Warn => LevelFilter::WARN,
            LogLevel::Info => LevelFilter::INFO,
            LogLevel::Debug => LevelFilter::DEBUG,
            LogLevel::Trace => LevelFilter::TRACE,
        };
        let subscriber =
            tracing_subscriber::registry().with(SinkLayer { sink }.with_filter(filter));
        installed = tracing::subscriber::set_global_default(subscriber).is_ok();
        if installed {
            let previous = std::panic::take_hook();
            std::panic::set_hook(Box::new(move |info| {
                tracing::error!(target: "tessera::panic", "{info}");
                previous(info);
            }));
        }
    });
    installed
}
