//! The seeded hash every figure and fault decision is drawn from, so a seed always gives the
//! same customer, the same figures and the same faults.

/// SplitMix64's finalizer: a stable mix (std's hashers promise no stability across releases).
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

pub(in crate::simulator) fn hash(parts: &[u64]) -> u64 {
    parts.iter().fold(0x0B11_1000, |h, p| mix(h ^ p))
}

/// An index in `0..len` from hash bits.
pub(super) fn pick(h: u64, len: usize) -> usize {
    (h % len.max(1) as u64) as usize
}

/// A uniform draw in `[0, 1)` from a hash, for ratio decisions (never money).
pub(in crate::simulator) fn unit_interval(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}
