//! Numbers that every parser reads alike: the number rule of I-JSON
//! (RFC 7493, section 2.2), checked as the digits stream past.
//!
//! RFC 8259 puts no bound on numbers, and parsers disagree beyond a double's
//! reach. `9007199254740993` is that integer to Python, Go's `int64` and Java's
//! `long`, but 9007199254740992 to JavaScript and to every parser that reads
//! numbers as doubles; `1e400` is infinity to JavaScript and Python, an error
//! to Go and serde_json. A request that a JavaScript gateway and a Go service
//! read as two different amounts, or that one of them refuses, is the same
//! parser-differential trick as a duplicate key. [`NumberRange`] refuses:
//!
//! - an integer (no fraction, no exponent) beyond ±(2^53 − 1), the range in
//!   which every integer is exactly a double;
//! - a number written otherwise with 16 or more significant digits and a
//!   magnitude above 2^53 − 1 and under 10^20 (`9007199254740993.0`,
//!   `9.007199254740993e15`): a double cannot hold it, while readers of big
//!   decimals (Jackson into a `BigInteger`, json-bigint) keep every digit, so
//!   it is the same 64-bit id read two ways. Numbers with fewer digits
//!   (`6.022e23`, `1e19`) and larger ones (`1.7976931348623157e308`, how
//!   doubles print at full precision) pass: measurements, not ids;
//! - any number whose magnitude rounds to infinity as a double (at least
//!   2^1024 − 2^970, halfway between the largest double and 2^1024);
//! - a number that is not zero but below 10^-323, which a double rounds to
//!   zero or to one of its two smallest values while a big decimal keeps it:
//!   an amount that is `0` to one reader and positive to another.
//!
//! All are decided from the digits alone, exactly and in constant memory: the
//! integer as a saturating `u64`, the overflow by comparing the significant
//! digits with those of the threshold and adding the exponent, the rest from
//! the count and the first 16 of the significant digits.

use std::cmp::Ordering;

/// 2^53 − 1: every integer up to this magnitude is exactly a double.
pub const MAX_EXACT_INTEGER: u64 = (1 << 53) - 1;

/// The digits of 2^1024 − 2^970, the smallest magnitude that rounds to
/// infinity as a double (it is halfway to 2^1024, and ties round to even,
/// which is 2^1024). A 309-digit integer.
const OVERFLOW_DIGITS: &[u8; 309] =
    b"179769313486231580793728971405303415079934132710037826936173778980444968\
    292764750946649017977587207096330286416692887910946555547851940402630657\
    488671505820681908902000708383676273854845817711531764475730270069855571\
    366959622842914819860834936475292719074168444365510704342711559699508093\
    042880177904174497792";

/// The decimal exponent of [`OVERFLOW_DIGITS`] as `0.d1d2… × 10^309`.
const OVERFLOW_MAGNITUDE: i64 = 309;

/// The decimal exponents `d` of `0.d1d2… × 10^d` above 2^53 and under 10^20,
/// where 64-bit ids are (2^53 itself is 0.9007… × 10^16).
const ID_MAGNITUDES: std::ops::RangeInclusive<i64> = 17..=20;

/// The decimal exponent `d` of `0.d1d2… × 10^d` at and below which a number
/// that is not zero is under 10^-323.
const TINY_MAGNITUDE: i64 = -323;

/// Exponents are counted up to this; anything larger is out of range (or
/// zero) whatever the digits before it.
const EXPONENT_CAP: u64 = 1 << 40;

/// Which part of the number the next digit belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Part {
    #[default]
    Integer,
    Fraction,
    Exponent,
}

/// The running check of one number token, fed its bytes in order, in as many
/// pieces as the chunks cut it into. The grammar is checked elsewhere; this
/// only reads digits, `.`, `e`/`E` and the exponent's sign.
#[derive(Debug, Clone, Copy)]
pub(super) struct NumberRange {
    part: Part,
    /// The integer part, saturating above [`MAX_EXACT_INTEGER`].
    integer: u64,
    /// Once a digit is significant (from the first that is not a zero),
    /// the decimal exponent `d` of the value written as `0.d1d2… × 10^d`,
    /// before the exponent part is added.
    magnitude: i64,
    /// How the significant digits so far compare with [`OVERFLOW_DIGITS`]
    /// (padded with zeros).
    order: Ordering,
    exponent: u64,
    negative_exponent: bool,
    /// Significant digits so far (saturating; none before the first that
    /// is not a zero), the place of the last that is not a zero, and the
    /// value of the first 16.
    significant_digits: u32,
    last_nonzero: u32,
    first16: u64,
}

impl Default for NumberRange {
    fn default() -> Self {
        Self {
            part: Part::Integer,
            integer: 0,
            magnitude: 0,
            order: Ordering::Equal,
            exponent: 0,
            negative_exponent: false,
            significant_digits: 0,
            last_nonzero: 0,
            first16: 0,
        }
    }
}

impl NumberRange {
    /// Reads the next bytes of the number.
    pub(super) fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match b {
                b'0'..=b'9' => self.digit(b - b'0'),
                b'.' => self.part = Part::Fraction,
                b'e' | b'E' => self.part = Part::Exponent,
                b'-' if self.part == Part::Exponent => self.negative_exponent = true,
                _ => {}
            }
        }
    }

    fn digit(&mut self, d: u8) {
        match self.part {
            Part::Integer => {
                self.integer = self
                    .integer
                    .saturating_mul(10)
                    .saturating_add(u64::from(d))
                    .min(MAX_EXACT_INTEGER + 1);
                if self.significant_digits > 0 || d != 0 {
                    self.magnitude = self.magnitude.saturating_add(1);
                    self.significant_digit(d);
                }
            }
            Part::Fraction => {
                if self.significant_digits > 0 || d != 0 {
                    self.significant_digit(d);
                } else {
                    self.magnitude = self.magnitude.saturating_sub(1);
                }
            }
            Part::Exponent => {
                self.exponent = (self.exponent * 10 + u64::from(d)).min(EXPONENT_CAP);
            }
        }
    }

    /// The next significant digit: counted, and compared with the
    /// threshold's while the digits so far are equal to it.
    fn significant_digit(&mut self, d: u8) {
        let place = self.significant_digits as usize;
        self.significant_digits = self.significant_digits.saturating_add(1);
        if self.significant_digits <= 16 {
            self.first16 = self.first16 * 10 + u64::from(d);
        }
        if d != 0 {
            self.last_nonzero = self.significant_digits;
        }
        if self.order != Ordering::Equal {
            return;
        }
        match OVERFLOW_DIGITS.get(place) {
            Some(&t) => self.order = d.cmp(&(t - b'0')),
            // Past the threshold's last digit it is padded with zeros.
            None if d != 0 => self.order = Ordering::Greater,
            None => {}
        }
    }

    /// Whether the number has neither a fraction nor an exponent.
    pub(super) fn is_integer(&self) -> bool {
        self.part == Part::Integer
    }

    /// Whether the whole number, now complete, is one every parser reads
    /// alike.
    pub(super) fn in_range(&self) -> bool {
        if self.significant_digits == 0 {
            return true;
        }
        if self.part == Part::Integer {
            return self.integer <= MAX_EXACT_INTEGER;
        }
        let exponent = self.exponent as i64;
        let magnitude = if self.negative_exponent {
            self.magnitude.saturating_sub(exponent)
        } else {
            self.magnitude.saturating_add(exponent)
        };
        // Below 10^-323 (the value is 0.d… × 10^magnitude), if not zero.
        if magnitude <= TINY_MAGNITUDE && self.last_nonzero > 0 {
            return false;
        }
        // 16 digits or more from 2^53 to 10^20, where 64-bit ids live: more
        // than a double holds there. (Larger numbers with that many digits
        // are the full-precision printing of doubles, 1.7976931348623157e308.)
        let above_exact = self.first16 > MAX_EXACT_INTEGER
            || (self.first16 == MAX_EXACT_INTEGER && self.last_nonzero > 16);
        if self.last_nonzero >= 16
            && (ID_MAGNITUDES.contains(&magnitude) || (magnitude == 16 && above_exact))
        {
            return false;
        }
        match magnitude.cmp(&OVERFLOW_MAGNITUDE) {
            Ordering::Less => true,
            Ordering::Greater => false,
            // Equal so far but shorter than the threshold: the threshold's
            // remaining digits end in a 2, so the number is smaller.
            Ordering::Equal => match self.order {
                Ordering::Less => true,
                Ordering::Equal => (self.significant_digits as usize) < OVERFLOW_DIGITS.len(),
                Ordering::Greater => false,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict on the whole token `n`.
    fn check(n: &str) -> bool {
        let mut range = NumberRange::default();
        range.push(n.as_bytes());
        range.in_range()
    }

    fn threshold() -> String {
        String::from_utf8(OVERFLOW_DIGITS.to_vec()).unwrap()
    }

    #[test]
    fn the_threshold_is_where_doubles_overflow() {
        // The digits are 2^1024 - 2^970: check them by long multiplication.
        let mut n = vec![1u32];
        let double = |n: &mut Vec<u32>| {
            let mut carry = 0;
            for d in n.iter_mut() {
                let v = *d * 2 + carry;
                *d = v % 10;
                carry = v / 10;
            }
            if carry > 0 {
                n.push(carry);
            }
        };
        for _ in 0..970 {
            double(&mut n);
        }
        let low = n.clone();
        for _ in 970..1024 {
            double(&mut n);
        }
        let mut borrow = 0;
        for (k, d) in n.iter_mut().enumerate() {
            let sub = low.get(k).copied().unwrap_or(0) + borrow;
            borrow = u32::from(*d < sub);
            *d = *d + 10 * borrow - sub;
        }
        let digits: String = n
            .iter()
            .rev()
            .skip_while(|&&d| d == 0)
            .map(|&d| char::from(b'0' + d as u8))
            .collect();
        assert_eq!(digits, threshold());
        // And Rust's correctly rounded parser agrees on both sides of it.
        let below = format!("{}1", &threshold()[..308]);
        assert!(threshold().parse::<f64>().unwrap().is_infinite());
        assert!(below.parse::<f64>().unwrap().is_finite());
    }

    #[test]
    fn integers_are_exact_up_to_two_to_the_fifty_three() {
        for (n, ok) in [
            ("0", true),
            ("-0", true),
            ("123456789012345", true),
            ("-1234567890123456", true),
            ("1.5e99", true),
            ("-0.5E-07", true),
            ("1e+99", true),
            ("999999999999999e+99", true),
            ("1e100", true),
            ("9007199254740991", true),
            ("-9007199254740991", true),
            ("9007199254740992", false),
            ("-9007199254740992", false),
            ("9007199254740993", false),
            ("18446744073709551616", false),
            ("1000000000000000000000000000000000000000", false),
            // Written as a fraction or with an exponent, with 16 significant
            // digits or more at 2^53 or beyond: a double cannot hold it, a big
            // decimal does (the id read two ways).
            ("9007199254740993.0", false),
            ("9.007199254740993e15", false),
            ("90071992547409930e-1", false),
            ("9007199254740992.5", false),
            ("-9007199254740993.0", false),
            // Just below, or with fewer digits (measurements, not ids).
            ("9007199254740991.0", true),
            ("9.007199254740991e15", true),
            ("9007199254740990.5", true),
            // Between 2^53 − 1 and 2^53: 9007199254740992 as a double.
            ("9007199254740991.5", false),
            ("9.0071992547409915e15", false),
            ("-9007199254740991.000001", false),
            ("900719925474099.3e1", false),
            ("1.8446744073709552e19", false),
            ("12345678901234567890.5", false),
            ("1234567890123456.7", true),
            ("1e20", true),
            ("6.022e23", true),
            ("900719925474099e5", true),
            // The full-precision printing of doubles beyond 10^20.
            ("1.2345678901234567e20", true),
            ("123456789012345678e3", true),
            ("1.7976931348623157e308", true),
        ] {
            assert_eq!(check(n), ok, "{n}");
        }
    }

    #[test]
    fn numbers_that_round_to_infinity_are_out_of_range() {
        let t = threshold();
        let cases = [
            ("1e308".to_string(), true),
            ("1.7976931348623157e308".to_string(), true),
            ("1.7976931348623158e308".to_string(), true),
            ("1.797693134862315807937289714053e308".to_string(), true),
            ("1.8e308".to_string(), false),
            ("2e308".to_string(), false),
            ("1e309".to_string(), false),
            ("-1e309".to_string(), false),
            ("0.1e310".to_string(), false),
            ("0.01e310".to_string(), true),
            ("0.0001797693134862316e312".to_string(), false),
            (format!("{t}.0"), false),
            (format!("{t}.0000000000001"), false),
            (format!("{}.9999", &t[..308]), true),
            (format!("{}e1", &t[..308]), true),
            (format!("{}3e-1", &t[..309]), false),
            (format!("{}1e-1", &t[..308]), true),
            (format!("{t}000e-3"), false),
            (format!("{t}001e-3"), false),
            (format!("0.{t}e309"), false),
            (format!("0.{}1e309", &t[..308]), true),
            ("1e99999999999999999999999999".to_string(), false),
            // Tiny values a double rounds to zero (or to its two smallest)
            // while a big decimal keeps them; zeros are zero everywhere.
            ("1e-400".to_string(), false),
            ("1e-324".to_string(), false),
            ("9.9e-324".to_string(), false),
            ("0.00001e-319".to_string(), false),
            ("1e-323".to_string(), true),
            ("2.5e-308".to_string(), true),
            ("1e-99999999999999999999999999".to_string(), false),
            ("0e99999999999999".to_string(), true),
            ("0.000e400".to_string(), true),
            ("-0.0e+999".to_string(), true),
            ("1E+308".to_string(), true),
            ("1E+309".to_string(), false),
        ];
        for (n, ok) in cases {
            assert_eq!(check(&n), ok, "{n}");
            if n.contains(['.', 'e', 'E']) && !n.contains("e-") {
                let parsed: f64 = n.parse().unwrap();
                assert_eq!(parsed.is_finite(), ok, "Rust's parser on {n}");
            }
        }
    }

    #[test]
    fn any_split_of_the_token_gives_the_same_answer() {
        let t = threshold();
        for n in [
            "9007199254740992".to_string(),
            "9007199254740991".to_string(),
            format!("{t}.0"),
            format!("{}.9e0", &t[..308]),
            "1.8e+308".to_string(),
            "9.007199254740993e15".to_string(),
            "90071992547409930e-1".to_string(),
            "0.00001e-319".to_string(),
        ] {
            let whole = check(&n);
            for cut in 0..=n.len() {
                let mut range = NumberRange::default();
                range.push(&n.as_bytes()[..cut]);
                range.push(&n.as_bytes()[cut..]);
                assert_eq!(range.in_range(), whole, "{n} cut at {cut}");
            }
        }
    }
}
