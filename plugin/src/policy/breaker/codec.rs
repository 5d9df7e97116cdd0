//! The shared-data encoding of a breaker state: compact little-endian binary,
//! rewritten on every counted request, so it is kept small (14 to 94 bytes,
//! at most 395 with 32 probes in flight).
//!
//! ```text
//! byte 0      format version (FORMAT_VERSION)
//! byte 1      state tag: 0 closed, 1 open, 2 half-open
//! closed      consecutive u32, head_epoch u64, 10 × (failures u32, total u32)
//! open        until_ms u64, reopens u32
//! half-open   reopens u32, next_seq u32, n u8 (<= 32), n × (seq u32, taken_at_ms u64)
//! ```
//!
//! Decoding is total: any byte string either decodes to a consistent state
//! or is refused (`None`), never a panic. A refused value (garbage, another
//! format version, a truncated write) is treated by the caller as a fresh
//! closed breaker, and overwritten by the next write.

use super::config::MAX_HALF_OPEN_PROBES;
use super::state::{Bucket, Closed, HalfOpen, Lease, State, WINDOW_BUCKETS};

/// Version of this encoding. A future incompatible layout takes another
/// number, and every version reads the others as "fresh closed breaker" —
/// safe during a rolling upgrade where two plugin versions share a key.
pub const FORMAT_VERSION: u8 = 1;

const TAG_CLOSED: u8 = 0;
const TAG_OPEN: u8 = 1;
const TAG_HALF_OPEN: u8 = 2;

/// Encodes a state (see the module documentation for the layout).
pub fn encode(state: &State) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    out.push(FORMAT_VERSION);
    match state {
        State::Closed(c) => {
            out.push(TAG_CLOSED);
            out.extend_from_slice(&c.consecutive.to_le_bytes());
            out.extend_from_slice(&c.head_epoch.to_le_bytes());
            for b in &c.buckets {
                out.extend_from_slice(&b.failures.to_le_bytes());
                out.extend_from_slice(&b.total.to_le_bytes());
            }
        }
        State::Open { until_ms, reopens } => {
            out.push(TAG_OPEN);
            out.extend_from_slice(&until_ms.to_le_bytes());
            out.extend_from_slice(&reopens.to_le_bytes());
        }
        State::HalfOpen(h) => {
            out.push(TAG_HALF_OPEN);
            out.extend_from_slice(&h.reopens.to_le_bytes());
            out.extend_from_slice(&h.next_seq.to_le_bytes());
            // More leases than the maximum never exist (plan_admit keeps at
            // most half_open_probes <= 32); truncate rather than overflow.
            let leases = &h.leases[..h.leases.len().min(MAX_HALF_OPEN_PROBES as usize)];
            out.push(leases.len() as u8);
            for l in leases {
                out.extend_from_slice(&l.seq.to_le_bytes());
                out.extend_from_slice(&l.taken_at_ms.to_le_bytes());
            }
        }
    }
    out
}

/// Decodes a stored value; `None` for anything that is not exactly a valid
/// encoding of this version.
pub fn decode(bytes: &[u8]) -> Option<State> {
    let mut r = Reader(bytes);
    if r.u8()? != FORMAT_VERSION {
        return None;
    }
    let state = match r.u8()? {
        TAG_CLOSED => {
            let consecutive = r.u32()?;
            let head_epoch = r.u64()?;
            let mut buckets = [Bucket::default(); WINDOW_BUCKETS];
            for b in &mut buckets {
                b.failures = r.u32()?;
                b.total = r.u32()?;
                if b.failures > b.total {
                    return None;
                }
            }
            State::Closed(Closed {
                consecutive,
                head_epoch,
                buckets,
            })
        }
        TAG_OPEN => State::Open {
            until_ms: r.u64()?,
            reopens: r.u32()?,
        },
        TAG_HALF_OPEN => {
            let reopens = r.u32()?;
            let next_seq = r.u32()?;
            let n = r.u8()?;
            if u32::from(n) > MAX_HALF_OPEN_PROBES {
                return None;
            }
            let mut leases = Vec::with_capacity(usize::from(n));
            for _ in 0..n {
                leases.push(Lease {
                    seq: r.u32()?,
                    taken_at_ms: r.u64()?,
                });
            }
            State::HalfOpen(HalfOpen {
                reopens,
                next_seq,
                leases,
            })
        }
        _ => return None,
    };
    r.0.is_empty().then_some(state)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take::<1>().map(|[b]| b)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take().map(u32::from_le_bytes)
    }
    fn u64(&mut self) -> Option<u64> {
        self.take().map(u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn samples() -> Vec<State> {
        let mut closed = Closed {
            consecutive: 2,
            head_epoch: 1_700_000_000,
            ..Closed::default()
        };
        closed.buckets[3] = Bucket {
            failures: 4,
            total: 9,
        };
        closed.buckets[9] = Bucket {
            failures: u32::MAX,
            total: u32::MAX,
        };
        vec![
            State::default(),
            State::Closed(closed),
            State::Open {
                until_ms: 1_700_000_030_000,
                reopens: 0,
            },
            State::Open {
                until_ms: u64::MAX,
                reopens: u32::MAX,
            },
            State::HalfOpen(HalfOpen::default()),
            State::HalfOpen(HalfOpen {
                reopens: 3,
                next_seq: 7,
                leases: (0..32)
                    .map(|i| Lease {
                        seq: i,
                        taken_at_ms: 1000 + u64::from(i),
                    })
                    .collect(),
            }),
        ]
    }

    #[test]
    fn round_trips_and_sizes() {
        for s in samples() {
            let bytes = encode(&s);
            assert_eq!(decode(&bytes), Some(s.clone()));
            assert_eq!(bytes[0], FORMAT_VERSION);
            let expected = match &s {
                State::Closed(_) => 94,
                State::Open { .. } => 14,
                State::HalfOpen(h) => 11 + 12 * h.leases.len(),
            };
            assert_eq!(bytes.len(), expected);
            assert!(bytes.len() <= 395);
        }
    }

    #[test]
    fn garbage_and_other_versions_are_refused() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"\x01"), None);
        assert_eq!(decode(b"hello world"), None);
        assert_eq!(decode(b"{\"state\":\"open\"}"), None);
        for s in samples() {
            let bytes = encode(&s);
            // Unknown version.
            let mut v2 = bytes.clone();
            v2[0] = 2;
            assert_eq!(decode(&v2), None);
            v2[0] = 0;
            assert_eq!(decode(&v2), None);
            // Unknown tag.
            let mut t = bytes.clone();
            t[1] = 3;
            assert_eq!(decode(&t), None);
            // Every truncation and a trailing byte.
            for len in 0..bytes.len() {
                assert_eq!(decode(&bytes[..len]), None, "{s:?} truncated to {len}");
            }
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(decode(&long), None);
        }
        // Inconsistent counts and too many leases.
        let mut c = encode(&State::default());
        c[14] = 1; // failures of bucket 0 = 1 > total 0
        assert_eq!(decode(&c), None);
        let mut h = encode(&State::HalfOpen(HalfOpen::default()));
        h[10] = 33;
        h.extend(std::iter::repeat_n(0u8, 33 * 12));
        assert_eq!(decode(&h), None);
    }

    proptest! {
        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Some(s) = decode(&bytes) {
                prop_assert_eq!(encode(&s), bytes);
            }
        }

        #[test]
        fn decode_of_mutated_values_never_panics(i in 0usize..94, b in any::<u8>()) {
            let mut bytes = encode(&samples()[1]);
            bytes[i] = b;
            let _ = decode(&bytes);
        }
    }
}
