//! Data the grader sends: datasets declared in the grader file (CSV plus a feature schema),
//! seeded sampling of rows, drift transforms that shift what is sent, and the statistics used
//! to score quality and to recompute drift on the harness side.
//!
//! Everything random here is driven by a portable seeded generator (ChaCha8), so the same seed
//! draws the same rows on every machine.

pub mod dataset;
pub mod schema;
pub mod stats;
pub mod transform;

pub use dataset::{Dataset, DatasetError};
pub use schema::{Feature, FeatureKind, Schema};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// A generator for one purpose of one run: the same seed and purpose always give the same
/// stream, and different purposes do not disturb each other's draws.
pub fn rng(seed: u64, purpose: &str) -> ChaCha8Rng {
    let salt = purpose.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    ChaCha8Rng::seed_from_u64(seed ^ salt)
}
