//! The oracle for `numbers: interoperable`: Rust's own readings of a number
//! token and plain decimal arithmetic on its digits, shared by the proptest
//! and the inspector fuzz target, so that the inspector's digit-by-digit
//! check is judged against code it does not share.

use json_sanitizer::inspector::MAX_EXACT_INTEGER;

/// Whether a well-formed number token is in the interoperable range: an
/// integer (no fraction, no exponent) within ±(2^53 − 1) by exact `i128`
/// arithmetic; any other number finite as a correctly rounded `f64`, not a
/// non-zero value under 10^-323, and not one of 16 or more significant
/// digits above 2^53 − 1 and under 10^20 (the 64-bit ids a double cannot
/// hold).
pub fn in_interoperable_range(token: &str) -> bool {
    if !token.contains(['.', 'e', 'E']) {
        return token
            .parse::<i128>()
            .is_ok_and(|n| n.unsigned_abs() <= u128::from(MAX_EXACT_INTEGER));
    }
    if !token.parse::<f64>().expect("a valid number").is_finite() {
        return false;
    }
    let unsigned = token.trim_start_matches('-');
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (
            m,
            e.parse::<i64>().unwrap_or(if e.starts_with('-') {
                i64::MIN / 2
            } else {
                i64::MAX / 2
            }),
        ),
        None => (unsigned, 0),
    };
    let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{integer}{fraction}");
    let leading = digits.bytes().take_while(|&b| b == b'0').count();
    let significant = digits[leading..].trim_end_matches('0');
    if significant.is_empty() {
        return true;
    }
    // The value is 0.<significant> × 10^magnitude.
    let magnitude = (integer.len() as i64 - leading as i64).saturating_add(exponent);
    if magnitude <= -323 {
        return false;
    }
    if significant.len() >= 16 && (1..=20).contains(&magnitude) {
        let whole: String = significant
            .chars()
            .chain(std::iter::repeat('0'))
            .take(magnitude as usize)
            .collect();
        let floor: u128 = whole.parse().expect("at most 20 digits");
        let fractional = significant.len() > magnitude as usize;
        let max = u128::from(MAX_EXACT_INTEGER);
        if floor > max || (floor == max && fractional) {
            return false;
        }
    }
    true
}
