//! The oracle for `numbers: interoperable`: Rust's own readings of a number
//! token, shared by the proptest and the inspector fuzz target, so that the
//! inspector's digit-by-digit check is judged against parsers it does not
//! share code with.

use json_sanitizer::inspector::MAX_EXACT_INTEGER;

/// Whether a well-formed number token is in the interoperable range: an
/// integer (no fraction, no exponent) within ±(2^53 − 1) by exact `i128`
/// arithmetic, or any other number finite as a correctly rounded `f64`.
pub fn in_interoperable_range(token: &str) -> bool {
    if token.contains(['.', 'e', 'E']) {
        token.parse::<f64>().expect("a valid number").is_finite()
    } else {
        token
            .parse::<i128>()
            .is_ok_and(|n| n.unsigned_abs() <= u128::from(MAX_EXACT_INTEGER))
    }
}
