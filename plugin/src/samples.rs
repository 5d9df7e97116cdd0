//! Deterministic request bodies for benchmarks, demos and tests: realistic
//! API payloads of a chosen size and the classic hostile shapes. Generated,
//! not committed, so a 10 MB body costs nothing in the repository.

/// A JSON API request body (an order with a customer and line items) of
/// approximately `target` bytes (never less), always valid and within the
/// default limits for sizes up to 2 MiB.
pub fn api_body(target: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(target + 256);
    out.extend_from_slice(
        br#"{"id":"ord_8f14e45fceea167a","created":"2026-11-26T12:00:00Z","customer":{"name":"Zo\u00eb Ng","email":"zoe@example.com","tier":"gold","tags":["vip","eu","b2b"]},"currency":"EUR","items":["#,
    );
    let mut n: u64 = 0;
    let mut first = true;
    loop {
        let budget = target.saturating_sub(out.len() + 64);
        if budget == 0 && !first {
            break;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        n += 1;
        let line = format!(
            r#"{{"sku":"SKU-{:06}","name":"Widget \u2013 size {} café","qty":{},"price":{}.{:02},"discount":{},"attributes":{{"color":"{}","weight_g":{},"fragile":{}}}}}"#,
            n * 7919 % 1_000_000,
            n % 13,
            1 + n % 9,
            n * 37 % 500,
            n % 100,
            if n.is_multiple_of(3) { "null" } else { "0.15" },
            ["red", "green", "blue", "black"][(n % 4) as usize],
            100 + n * 13 % 900,
            n.is_multiple_of(2),
        );
        out.extend_from_slice(line.as_bytes());
        if out.len() + 64 >= target {
            break;
        }
    }
    out.extend_from_slice(br#"],"note":"Leave at the door, please. \u00a1Gracias!","paid":true}"#);
    out
}

/// `depth` nested arrays around a zero: `[[[0]]]`.
pub fn nested_arrays(depth: usize) -> Vec<u8> {
    let mut out = vec![b'['; depth];
    out.push(b'0');
    out.extend(std::iter::repeat_n(b']', depth));
    out
}

/// The start of an object of `keys` distinct members, never closed:
/// `{"k0":0,"k1":0,`. While it is open, its keys are held for duplicate
/// detection (what `max_memory_bytes` bounds).
pub fn open_object(keys: usize) -> Vec<u8> {
    let mut out = b"{".to_vec();
    for k in 0..keys {
        out.extend_from_slice(format!("\"k{k}\":0,").as_bytes());
    }
    out
}

/// An array of `n` small numbers: `[0,1,2,...]`.
pub fn wide_array(n: usize) -> Vec<u8> {
    let mut out = b"[".to_vec();
    for i in 0..n {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice((i % 10).to_string().as_bytes());
    }
    out.push(b']');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspector::{Inspector, JsonOptions, Limits};

    #[test]
    fn api_bodies_have_the_requested_size_and_pass() {
        for target in [1024, 64 * 1024, 1024 * 1024] {
            let body = api_body(target);
            assert!(
                body.len() >= target && body.len() < target + 512,
                "{}",
                body.len()
            );
            serde_json::from_slice::<serde_json::Value>(&body).unwrap();
            Inspector::check(&Limits::default(), &JsonOptions::default(), &body).unwrap();
        }
        assert_eq!(api_body(5000), api_body(5000));
    }

    #[test]
    fn hostile_shapes() {
        assert_eq!(nested_arrays(2), b"[[0]]");
        assert_eq!(wide_array(3), b"[0,1,2]");
    }
}
