//! A process's memory as Linux reports it, for the benches that print it.

/// The `field` (e.g. `VmRSS:`) of `/proc/{process}/status` in KiB; `process` is a pid or `self`.
pub fn vm(process: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{process}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `kib` in MiB with `decimals` decimals; `n/a` when unknown.
pub fn mib(kib: Option<u64>, decimals: usize) -> String {
    kib.map_or_else(
        || "n/a".into(),
        |k| format!("{:.*} MiB", decimals, k as f64 / 1024.0),
    )
}
