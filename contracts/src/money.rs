//! Money: integer minor units and an ISO 4217 currency code, never floats.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The one currency the shop trades in today.
pub const EUR: &str = "EUR";

/// An amount of money in minor units (cents), e.g. `{"amount_minor": 1999, "currency": "EUR"}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub struct Money {
    /// Minor units (cents for EUR).
    pub amount_minor: i64,
    /// ISO 4217 alphabetic code, upper case.
    #[schemars(regex(pattern = r"^[A-Z]{3}$"))]
    pub currency: String,
}

impl Money {
    pub fn eur(amount_minor: i64) -> Self {
        Money {
            amount_minor,
            currency: EUR.to_owned(),
        }
    }

    /// Zero in the given currency.
    pub fn zero(currency: &str) -> Self {
        Money {
            amount_minor: 0,
            currency: currency.to_owned(),
        }
    }

    /// The sum of two amounts, or `None` on a currency mismatch or overflow.
    pub fn checked_add(&self, other: &Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money {
            amount_minor: self.amount_minor.checked_add(other.amount_minor)?,
            currency: self.currency.clone(),
        })
    }

    /// This amount times a quantity, or `None` on overflow.
    pub fn checked_mul(&self, quantity: i64) -> Option<Money> {
        Some(Money {
            amount_minor: self.amount_minor.checked_mul(quantity)?,
            currency: self.currency.clone(),
        })
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let abs = self.amount_minor.unsigned_abs();
        write!(f, "{sign}{}.{:02} {}", abs / 100, abs % 100, self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_different_currencies_is_refused() {
        let eur = Money::eur(100);
        let usd = Money {
            amount_minor: 100,
            currency: "USD".into(),
        };
        assert_eq!(eur.checked_add(&usd), None);
        assert_eq!(eur.checked_add(&Money::eur(5)), Some(Money::eur(105)));
    }

    #[test]
    fn money_displays_in_major_units() {
        assert_eq!(Money::eur(1999).to_string(), "19.99 EUR");
        assert_eq!(Money::eur(-5).to_string(), "-0.05 EUR");
    }
}
