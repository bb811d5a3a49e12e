//! Finance's rules, with no I/O: VAT by shipping country, the payment state
//! machine, invoice lines and the invoice number format.

use contracts::checkout::OrderLineV1;
use contracts::finance::InvoiceLineV1;
use contracts::Money;

/// The VAT rate, in percent, charged on goods shipped to `country`
/// (ISO 3166-1 alpha-2). Countries not listed are charged none.
pub fn vat_percent(country: &str) -> i64 {
    match country.trim().to_ascii_uppercase().as_str() {
        "DE" => 19,
        "FR" | "GB" => 20,
        "NL" => 21,
        _ => 0,
    }
}

/// What an order costs the customer: `total` = `net` + `tax`, one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charge {
    pub net: Money,
    pub tax: Money,
    pub total: Money,
}

/// Why an order cannot be charged. Both break the order contract, so the
/// event that carries them can never be handled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChargeError {
    #[error("the order's net amount {0} is negative")]
    NegativeNet(Money),
    #[error("the order's net amount {0} is too large to tax")]
    Overflow(Money),
}

/// The charge for an order of `net` shipped to `country`: VAT rounded half
/// up to the minor unit, in integer arithmetic (money is never a float).
pub fn charge(net: &Money, country: &str) -> Result<Charge, ChargeError> {
    if net.amount_minor < 0 {
        return Err(ChargeError::NegativeNet(net.clone()));
    }
    // net × percent / 100, rounded half up: adding half the divisor before
    // the (truncating) division rounds .5 upwards for non-negative amounts.
    // i128 so that the product cannot overflow on the way.
    let scaled = i128::from(net.amount_minor) * i128::from(vat_percent(country));
    let tax_minor =
        i64::try_from((scaled + 50) / 100).map_err(|_| ChargeError::Overflow(net.clone()))?;
    let tax = Money {
        amount_minor: tax_minor,
        currency: net.currency.clone(),
    };
    let total = net
        .checked_add(&tax)
        .ok_or_else(|| ChargeError::Overflow(net.clone()))?;
    Ok(Charge {
        net: net.clone(),
        tax,
        total,
    })
}

/// Where an order's payment stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The order was rejected or cancelled before its payment was seen:
    /// it must never be authorised.
    Closed,
    /// The authorisation was declined or could not be attempted.
    Failed,
    /// Money is held for the order.
    Authorised,
    /// The hold was released without taking money.
    Voided,
    /// The held money was taken.
    Captured,
    /// The taken money was given back.
    Refunded,
}

impl Status {
    pub const fn as_str(self) -> &'static str {
        match self {
            Status::Closed => "closed",
            Status::Failed => "failed",
            Status::Authorised => "authorised",
            Status::Voided => "voided",
            Status::Captured => "captured",
            Status::Refunded => "refunded",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        [
            Status::Closed,
            Status::Failed,
            Status::Authorised,
            Status::Voided,
            Status::Captured,
            Status::Refunded,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// What the card provider answered to an authorisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Authorised,
    Declined,
    InvalidToken,
}

/// Why a payment failed, as published in `payment.failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailReason {
    Declined,
    InvalidToken,
}

impl FailReason {
    pub const fn as_str(self) -> &'static str {
        match self {
            FailReason::Declined => "declined",
            FailReason::InvalidToken => "invalid_token",
        }
    }
}

/// What happens to an order that finance reacts to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// The order was placed and the provider answered its authorisation.
    Authorisation(Answer),
    /// The order was confirmed: take the money.
    Confirmed,
    /// The order was rejected or cancelled: give back whatever is held or taken.
    Released,
}

/// A fact a step establishes; each becomes one published event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fact {
    Authorised,
    Failed(FailReason),
    Voided,
    Captured,
    InvoiceIssued,
    Refunded,
}

/// One step of the state machine: the status after it and what it established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub next: Status,
    pub facts: Vec<Fact>,
}

/// Whether the provider must be asked for an order whose payment stands at
/// `current`: only an order never seen before is authorised, so duplicate
/// and late `placed` events never reach the provider.
pub fn needs_authorisation(current: Option<Status>) -> bool {
    current.is_none()
}

/// The step `input` causes from `current` (None: no payment yet), or None
/// when the input changes nothing: a duplicate, or an input that arrived
/// after the state it was meant for. Inputs may arrive in any order.
pub fn decide(current: Option<Status>, input: Input) -> Option<Step> {
    use Status::*;
    let step = |next, facts: &[Fact]| {
        Some(Step {
            next,
            facts: facts.to_vec(),
        })
    };
    match (current, input) {
        (None, Input::Authorisation(Answer::Authorised)) => step(Authorised, &[Fact::Authorised]),
        (None, Input::Authorisation(Answer::Declined)) => {
            step(Failed, &[Fact::Failed(FailReason::Declined)])
        }
        (None, Input::Authorisation(Answer::InvalidToken)) => {
            step(Failed, &[Fact::Failed(FailReason::InvalidToken)])
        }
        // The order closed while the provider was answering: the hold it
        // just granted must be released at once.
        (Some(Closed), Input::Authorisation(Answer::Authorised)) => {
            step(Voided, &[Fact::Authorised, Fact::Voided])
        }
        (Some(Authorised), Input::Confirmed) => {
            step(Captured, &[Fact::Captured, Fact::InvoiceIssued])
        }
        // Remember the closing, so that a `placed` seen later is not authorised.
        (None, Input::Released) => step(Closed, &[]),
        (Some(Authorised), Input::Released) => step(Voided, &[Fact::Voided]),
        (Some(Captured), Input::Released) => step(Refunded, &[Fact::Refunded]),
        _ => None,
    }
}

/// The invoice's lines: the order's lines as they were placed.
pub fn invoice_lines(lines: &[OrderLineV1]) -> Vec<InvoiceLineV1> {
    lines
        .iter()
        .map(|l| InvoiceLineV1 {
            product_id: l.product_id,
            name: l.name.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price.clone(),
            line_total: l.line_total.clone(),
        })
        .collect()
}

/// An invoice number: the year and the invoice's place in it, `YYYY-NNNNNN`.
pub fn invoice_number(year: i32, sequence: i64) -> String {
    format!("{year:04}-{sequence:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tax(net: i64, country: &str) -> i64 {
        charge(&Money::eur(net), country)
            .expect("chargeable")
            .tax
            .amount_minor
    }

    #[test]
    fn vat_depends_on_the_shipping_country() {
        assert_eq!(tax(10_000, "DE"), 1_900);
        assert_eq!(tax(10_000, "FR"), 2_000);
        assert_eq!(tax(10_000, "NL"), 2_100);
        assert_eq!(tax(10_000, "GB"), 2_000);
        assert_eq!(tax(10_000, "US"), 0);
        assert_eq!(tax(10_000, ""), 0);
    }

    #[test]
    fn country_codes_are_matched_regardless_of_case_and_spaces() {
        assert_eq!(tax(10_000, " de "), 1_900);
    }

    #[test]
    fn vat_is_rounded_half_up_to_the_cent() {
        assert_eq!(tax(1_050, "DE"), 200, "199.5 rounds up");
        assert_eq!(tax(1_049, "DE"), 199, "199.31 rounds down");
        assert_eq!(tax(1_999, "NL"), 420, "419.79 rounds up");
        assert_eq!(tax(7_997, "DE"), 1_519, "1519.43 rounds down");
        assert_eq!(tax(1, "FR"), 0, "0.2 rounds down");
        assert_eq!(tax(3, "FR"), 1, "0.6 rounds up");
    }

    #[test]
    fn the_total_is_net_plus_tax_in_the_orders_currency() {
        let c = charge(&Money::eur(1_999), "FR").expect("chargeable");
        assert_eq!(
            c,
            Charge {
                net: Money::eur(1_999),
                tax: Money::eur(400),
                total: Money::eur(2_399)
            }
        );
    }

    #[test]
    fn a_negative_or_untaxable_net_is_refused() {
        assert!(matches!(
            charge(&Money::eur(-1), "DE"),
            Err(ChargeError::NegativeNet(_))
        ));
        assert!(matches!(
            charge(&Money::eur(i64::MAX), "DE"),
            Err(ChargeError::Overflow(_))
        ));
        assert!(charge(&Money::eur(i64::MAX), "US").is_ok());
    }

    #[test]
    fn a_new_order_is_authorised_or_failed_by_the_providers_answer() {
        let after = |answer| decide(None, Input::Authorisation(answer));
        assert_eq!(
            after(Answer::Authorised),
            Some(Step {
                next: Status::Authorised,
                facts: vec![Fact::Authorised]
            })
        );
        assert_eq!(
            after(Answer::Declined),
            Some(Step {
                next: Status::Failed,
                facts: vec![Fact::Failed(FailReason::Declined)]
            })
        );
        assert_eq!(
            after(Answer::InvalidToken),
            Some(Step {
                next: Status::Failed,
                facts: vec![Fact::Failed(FailReason::InvalidToken)]
            })
        );
    }

    #[test]
    fn a_confirmed_order_is_captured_and_invoiced_once() {
        let step = decide(Some(Status::Authorised), Input::Confirmed).expect("a step");
        assert_eq!(step.next, Status::Captured);
        assert_eq!(step.facts, [Fact::Captured, Fact::InvoiceIssued]);
        assert_eq!(decide(Some(Status::Captured), Input::Confirmed), None);
    }

    #[test]
    fn releasing_voids_a_hold_and_refunds_a_capture_once() {
        let void = decide(Some(Status::Authorised), Input::Released).expect("a step");
        assert_eq!(
            (void.next, void.facts),
            (Status::Voided, vec![Fact::Voided])
        );
        let refund = decide(Some(Status::Captured), Input::Released).expect("a step");
        assert_eq!(
            (refund.next, refund.facts),
            (Status::Refunded, vec![Fact::Refunded])
        );
        assert_eq!(decide(Some(Status::Voided), Input::Released), None);
        assert_eq!(decide(Some(Status::Refunded), Input::Released), None);
        assert_eq!(decide(Some(Status::Failed), Input::Released), None);
    }

    #[test]
    fn a_confirmation_without_a_hold_changes_nothing() {
        for current in [
            None,
            Some(Status::Closed),
            Some(Status::Failed),
            Some(Status::Voided),
            Some(Status::Refunded),
        ] {
            assert_eq!(decide(current, Input::Confirmed), None, "from {current:?}");
        }
    }

    #[test]
    fn an_order_closed_before_it_was_seen_is_never_charged() {
        let closed = decide(None, Input::Released).expect("a step");
        assert_eq!((closed.next, closed.facts), (Status::Closed, vec![]));
        assert!(!needs_authorisation(Some(Status::Closed)));
        // A hold granted while the order was closing is released at once.
        let late = decide(
            Some(Status::Closed),
            Input::Authorisation(Answer::Authorised),
        )
        .expect("a step");
        assert_eq!(late.next, Status::Voided);
        assert_eq!(late.facts, [Fact::Authorised, Fact::Voided]);
        assert_eq!(
            decide(Some(Status::Closed), Input::Authorisation(Answer::Declined)),
            None
        );
    }

    #[test]
    fn a_repeated_authorisation_changes_nothing() {
        for current in [
            Status::Failed,
            Status::Authorised,
            Status::Voided,
            Status::Captured,
            Status::Refunded,
        ] {
            assert!(!needs_authorisation(Some(current)));
            assert_eq!(
                decide(Some(current), Input::Authorisation(Answer::Authorised)),
                None
            );
        }
        assert!(needs_authorisation(None));
    }

    #[test]
    fn statuses_survive_their_text_form() {
        for status in [
            Status::Closed,
            Status::Failed,
            Status::Authorised,
            Status::Voided,
            Status::Captured,
            Status::Refunded,
        ] {
            assert_eq!(Status::parse(status.as_str()), Some(status));
        }
        assert_eq!(Status::parse("pending"), None);
    }

    #[test]
    fn invoice_numbers_are_the_year_and_a_six_digit_sequence() {
        assert_eq!(invoice_number(2026, 1), "2026-000001");
        assert_eq!(invoice_number(2026, 42), "2026-000042");
        assert_eq!(invoice_number(2027, 999_999), "2027-999999");
    }

    #[test]
    fn invoice_lines_are_the_orders_lines() {
        let line = OrderLineV1 {
            product_id: uuid::Uuid::now_v7(),
            sku: "CUP-1".into(),
            name: "Cup".into(),
            quantity: 2,
            unit_price: Money::eur(1_499),
            line_total: Money::eur(2_998),
        };
        let lines = invoice_lines(std::slice::from_ref(&line));
        assert_eq!(
            lines,
            [InvoiceLineV1 {
                product_id: line.product_id,
                name: line.name,
                quantity: 2,
                unit_price: Money::eur(1_499),
                line_total: Money::eur(2_998),
            }]
        );
    }
}
