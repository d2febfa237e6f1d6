//! What the bench binaries share: a secret the service accepts and a seeded mixer, so every run
//! generates the same data.

/// A shared secret long and varied enough for `validate` (32 characters at least).
pub const SECRET: &str = "bench-signing-secret-0123456789abcdef";

/// The increment of the splitmix64 sequence.
pub const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64: small, fast and the same on every platform and crate version.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
