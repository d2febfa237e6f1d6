//! Logging: `RUST_LOG` filters, text or JSON lines.

use clap::ValueEnum;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the global subscriber; logs go to standard error.
pub fn init(format: LogFormat) {
    init_with(format, "info,tantivy=warn");
}

/// For the one-shot commands (`check`, `sweep`), whose result goes to standard output: text
/// logs on standard error, warnings and errors only unless `RUST_LOG` says otherwise.
pub fn init_quiet() {
    init_with(LogFormat::Text, "warn");
}

fn init_with(format: LogFormat, default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    // Colours only on a terminal: a log file or collector gets plain text.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init(),
    }
}
