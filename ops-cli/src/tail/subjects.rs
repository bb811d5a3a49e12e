//! NATS subject patterns (`*` one token, `>` one or more at the end): which
//! streams a `bazaar tail` filter reaches.

/// Whether some subject matches both patterns.
pub fn overlap(a: &str, b: &str) -> bool {
    let mut a = a.split('.');
    let mut b = b.split('.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) | (Some(_), Some(">")) => return true,
            (Some(x), Some(y)) if x == y || x == "*" || y == "*" => {}
            _ => return false,
        }
    }
}

/// Whether every subject matching `a` also matches `b`.
pub fn subset(a: &str, b: &str) -> bool {
    let mut a = a.split('.');
    let mut b = b.split('.');
    loop {
        match (a.next(), b.next()) {
            (None, None) => return true,
            (Some(_), Some(">")) => return true,
            (Some(">"), Some(_)) => return false,
            (Some(x), Some("*")) if x != ">" => {}
            (Some(x), Some(y)) if x == y && x != "*" => {}
            _ => return false,
        }
    }
}

/// A pattern `nats-server` accepts: non-empty tokens, `>` only last.
pub fn valid(pattern: &str) -> bool {
    let tokens: Vec<&str> = pattern.split('.').collect();
    tokens.iter().enumerate().all(|(i, t)| {
        !t.is_empty()
            && !t.contains(char::is_whitespace)
            && (*t != ">" || i + 1 == tokens.len())
            && (t.len() == 1 || !t.contains(['*', '>']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_overlap_when_one_subject_matches_both() {
        assert!(overlap("evt.>", "evt.checkout.>"));
        assert!(overlap("evt.*.order.placed.v1", "evt.checkout.>"));
        assert!(overlap("evt.checkout.order.placed.v1", "evt.checkout.>"));
        assert!(!overlap("evt.checkout.>", "evt.product.>"));
        assert!(!overlap("dlq.>", "evt.>"));
        assert!(!overlap("evt", "evt.>"));
    }

    #[test]
    fn a_pattern_is_a_subset_when_all_it_matches_the_other_matches() {
        assert!(subset("evt.checkout.>", "evt.>"));
        assert!(subset("evt.checkout.>", "evt.checkout.>"));
        assert!(!subset("evt.>", "evt.checkout.>"));
        assert!(subset("evt.checkout.order.placed.v1", "evt.checkout.>"));
        assert!(!subset("evt.*.order.placed.v1", "evt.checkout.>"));
    }

    #[test]
    fn only_well_formed_patterns_are_valid() {
        assert!(valid("evt.checkout.>"));
        assert!(valid("evt.*.order.*.v1"));
        assert!(!valid("evt..x"));
        assert!(!valid("evt.>.x"));
        assert!(!valid("evt.ch*"));
    }
}
