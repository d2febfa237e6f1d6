//! What the bench binaries share: a secret the service accepts. (They generate their data with
//! the sandbox's seeded mixer, `escalation_gate::sandbox::sample::mix`, so every run generates
//! the same data.)

/// A shared secret long and varied enough for `validate` (32 characters at least).
pub const SECRET: &str = "bench-signing-secret-0123456789abcdef";
