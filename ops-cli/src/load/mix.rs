//! `--mix succeed=90,decline=5,out_of_stock=5`: which kinds of orders a
//! load run places, by weight, and the exact, shuffled plan for N orders.

use std::collections::BTreeMap;
use std::fmt;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::Serialize;

/// A kind of order, by the outcome it is meant to have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// In-stock products, `tok_visa`: confirmed (then shipped).
    Succeed,
    /// In-stock products, `tok_declined`: rejected by finance.
    Decline,
    /// The sold-out product, `tok_visa`: rejected by the warehouse.
    OutOfStock,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Succeed, Kind::Decline, Kind::OutOfStock];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Succeed => "succeed",
            Kind::Decline => "decline",
            Kind::OutOfStock => "out_of_stock",
        }
    }

    pub fn payment_method(self) -> &'static str {
        match self {
            Kind::Decline => "tok_declined",
            Kind::Succeed | Kind::OutOfStock => "tok_visa",
        }
    }

    /// Whether a settled order of this kind ended as it was meant to.
    pub fn expects(self, status: &str) -> bool {
        match self {
            Kind::Succeed => matches!(status, "confirmed" | "shipped"),
            Kind::Decline | Kind::OutOfStock => status == "rejected",
        }
    }
}

/// Weights per kind; at least one is above zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(BTreeMap<Kind, u32>);

impl Mix {
    pub fn weight(&self, kind: Kind) -> u32 {
        self.0.get(&kind).copied().unwrap_or(0)
    }

    /// Exactly the share of each kind that its weight asks for (largest
    /// remainder), in a shuffled but reproducible order.
    pub fn plan(&self, orders: u64) -> Vec<Kind> {
        let total: u64 = self.0.values().map(|&w| u64::from(w)).sum();
        let mut counts: Vec<(Kind, u64, u64)> = self
            .0
            .iter()
            .map(|(&kind, &w)| {
                let share = orders * u64::from(w);
                (kind, share / total, share % total)
            })
            .collect();
        let assigned: u64 = counts.iter().map(|c| c.1).sum();
        counts.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let short = usize::try_from(orders - assigned).unwrap_or(usize::MAX);
        for count in counts.iter_mut().take(short) {
            count.1 += 1;
        }
        let mut plan: Vec<Kind> = counts
            .iter()
            .flat_map(|&(kind, n, _)| std::iter::repeat_n(kind, usize::try_from(n).unwrap_or(0)))
            .collect();
        plan.shuffle(&mut StdRng::seed_from_u64(orders));
        plan
    }

    pub fn weights(&self) -> &BTreeMap<Kind, u32> {
        &self.0
    }
}

impl fmt::Display for Mix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(k, w)| format!("{}={w}", k.name()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// `succeed=90,decline=5,out_of_stock=5` (weights, not necessarily percent).
pub fn parse(text: &str) -> Result<Mix, String> {
    let mut weights = BTreeMap::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, weight) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?} is not KIND=WEIGHT, e.g. decline=5"))?;
        let kind = match name.trim().replace('-', "_").as_str() {
            "succeed" => Kind::Succeed,
            "decline" => Kind::Decline,
            "out_of_stock" => Kind::OutOfStock,
            other => {
                return Err(format!(
                    "unknown kind {other:?}: use succeed, decline or out_of_stock"
                ))
            }
        };
        let weight: u32 = weight
            .trim()
            .parse()
            .ok()
            .filter(|w| *w <= 1_000_000)
            .ok_or_else(|| format!("the weight of {name} must be a whole number up to 1000000"))?;
        if weights.insert(kind, weight).is_some() {
            return Err(format!("{name} is given twice"));
        }
    }
    weights.retain(|_, w| *w > 0);
    if weights.is_empty() {
        return Err("give at least one kind a weight above 0, e.g. succeed=100".into());
    }
    Ok(Mix(weights))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mix_parses_weights_and_refuses_unknown_kinds_and_all_zero() {
        let mix = parse("succeed=90, decline=5,out-of-stock=5").expect("valid");

        assert_eq!(mix.weight(Kind::Succeed), 90);
        assert_eq!(mix.weight(Kind::OutOfStock), 5);
        assert_eq!(mix.to_string(), "succeed=90,decline=5,out_of_stock=5");
        assert!(parse("refund=5").is_err());
        assert!(parse("succeed=0").is_err());
        assert!(parse("succeed=1,succeed=2").is_err());
        assert!(parse("succeed").is_err());
    }

    #[test]
    fn a_plan_has_exactly_the_weighted_share_of_each_kind_and_is_reproducible() {
        let mix = parse("succeed=2,decline=1").expect("valid");

        let plan = mix.plan(10);

        assert_eq!(plan.len(), 10);
        assert_eq!(plan.iter().filter(|k| **k == Kind::Succeed).count(), 7);
        assert_eq!(plan.iter().filter(|k| **k == Kind::Decline).count(), 3);
        assert_eq!(plan, mix.plan(10));
    }
}
