//! The W3C `traceparent` that carries trace context on messages and HTTP
//! requests.

use rand::Rng;

/// A W3C `traceparent`: `00-<trace id>-<parent span id>-<flags>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

impl TraceParent {
    /// A new trace.
    pub fn new_root() -> Self {
        let mut rng = rand::thread_rng();
        TraceParent {
            trace_id: format!("{:032x}", rng.gen::<u128>() | 1),
            span_id: format!("{:016x}", rng.gen::<u64>() | 1),
            flags: "01".into(),
        }
    }

    /// Parses a header value; `None` when it is not a valid version-00 traceparent.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
        if version != "00"
            || parts.next().is_some()
            || !hex(trace_id, 32)
            || !hex(span_id, 16)
            || !hex(flags, 2)
        {
            return None;
        }
        if trace_id.bytes().all(|b| b == b'0') || span_id.bytes().all(|b| b == b'0') {
            return None;
        }
        Some(TraceParent {
            trace_id: trace_id.to_ascii_lowercase(),
            span_id: span_id.to_ascii_lowercase(),
            flags: flags.to_owned(),
        })
    }

    /// The same trace with a new span: what a handler passes on.
    pub fn child(&self) -> Self {
        TraceParent {
            trace_id: self.trace_id.clone(),
            span_id: format!("{:016x}", rand::thread_rng().gen::<u64>() | 1),
            flags: self.flags.clone(),
        }
    }

    /// Continues `incoming` when valid, or starts a new trace.
    pub fn continue_or_start(incoming: Option<&str>) -> Self {
        incoming
            .and_then(TraceParent::parse)
            .map(|t| t.child())
            .unwrap_or_else(TraceParent::new_root)
    }
}

impl std::fmt::Display for TraceParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

/// The header that carries trace context on NATS messages (lower case: NATS
/// header names are case-sensitive).
pub const TRACEPARENT: &str = "traceparent";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_keeps_the_trace_and_changes_the_span() {
        let root = TraceParent::new_root();
        let parsed = TraceParent::parse(&root.to_string()).expect("own output parses");
        assert_eq!(parsed, root);
        let child = root.child();
        assert_eq!(child.trace_id, root.trace_id);
        assert_ne!(child.span_id, root.span_id);
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-abc-def-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad:?}");
        }
    }
}
