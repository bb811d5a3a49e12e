//! The order saga (choreography, DESIGN §5) as a pure state machine. It
//! accepts warehouse's and finance's answers in any order, ignores
//! duplicates, and decides what checkout announces.

/// Where an order is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Confirmed,
    Rejected,
    Cancelled,
    Shipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Rejected => "rejected",
            Status::Cancelled => "cancelled",
            Status::Shipped => "shipped",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "confirmed" => Status::Confirmed,
            "rejected" => Status::Rejected,
            "cancelled" => Status::Cancelled,
            "shipped" => Status::Shipped,
            _ => return None,
        })
    }
}

/// What one team answered about an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Unknown,
    Ok,
    Failed(String),
}

impl Verdict {
    /// Stored as NULL, `ok` or `failed:<reason>`.
    pub fn to_db(&self) -> Option<String> {
        match self {
            Verdict::Unknown => None,
            Verdict::Ok => Some("ok".into()),
            Verdict::Failed(reason) => Some(format!("failed:{reason}")),
        }
    }

    pub fn from_db(value: Option<&str>) -> Verdict {
        match value {
            None => Verdict::Unknown,
            Some("ok") => Verdict::Ok,
            Some(other) => {
                Verdict::Failed(other.strip_prefix("failed:").unwrap_or(other).to_owned())
            }
        }
    }
}

/// The saga's state of one order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SagaState {
    pub status: Status,
    pub stock: Verdict,
    pub payment: Verdict,
    pub reason: Option<String>,
    /// The customer asked to cancel this confirmed order; the warehouse
    /// has not answered yet (released: cancelled; dispatched: shipped).
    pub cancel_requested: bool,
}

impl SagaState {
    pub fn placed() -> Self {
        SagaState {
            status: Status::Pending,
            stock: Verdict::Unknown,
            payment: Verdict::Unknown,
            reason: None,
            cancel_requested: false,
        }
    }
}

/// What can happen to an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    StockReserved,
    StockFailed(String),
    /// The warehouse gave the order's stock back (after a rejection, a
    /// cancellation, or a cancellation request it granted).
    StockReleased,
    PaymentAuthorized,
    PaymentFailed(String),
    Shipped,
    TimedOut,
    CancelRequested,
}

/// What checkout announces as a result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Nothing,
    Confirm,
    Reject(String),
    Cancel {
        was_confirmed: bool,
    },
    /// Ask the warehouse to stop a confirmed order's shipment.
    RequestCancel,
    MarkShipped,
}

/// Why a customer's request cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SagaError {
    #[error("the order has already shipped")]
    AlreadyShipped,
    #[error("the order is already {0}")]
    AlreadyClosed(&'static str),
}

/// Decides the next state and announcement for `input`.
pub fn decide(state: &SagaState, input: Input) -> Result<(SagaState, Decision), SagaError> {
    let mut next = state.clone();
    let decision = match (state.status, input) {
        (_, Input::StockReserved) => {
            next.stock = settle(&state.stock, Verdict::Ok);
            progress(&mut next)
        }
        (_, Input::StockFailed(reason)) => {
            next.stock = settle(&state.stock, Verdict::Failed(reason));
            progress(&mut next)
        }
        (_, Input::PaymentAuthorized) => {
            next.payment = settle(&state.payment, Verdict::Ok);
            progress(&mut next)
        }
        (_, Input::PaymentFailed(reason)) => {
            next.payment = settle(&state.payment, Verdict::Failed(reason));
            progress(&mut next)
        }
        (Status::Pending, Input::TimedOut) => reject(&mut next, "timeout".into()),
        (_, Input::TimedOut) => Decision::Nothing,
        (Status::Confirmed, Input::Shipped) => {
            next.status = Status::Shipped;
            Decision::MarkShipped
        }
        // Shipped twice. (A cancelled order never ships: a confirmed one is
        // cancelled only once the warehouse released its stock.)
        (_, Input::Shipped) => Decision::Nothing,
        // The warehouse granted the cancellation request: nothing ships.
        (Status::Confirmed, Input::StockReleased) if state.cancel_requested => {
            next.status = Status::Cancelled;
            next.reason = Some("cancelled_by_customer".into());
            next.cancel_requested = false;
            Decision::Cancel {
                was_confirmed: true,
            }
        }
        // The echo of a rejection or of a pending order's cancellation.
        (_, Input::StockReleased) => Decision::Nothing,
        (Status::Pending, Input::CancelRequested) => {
            next.status = Status::Cancelled;
            next.reason = Some("cancelled_by_customer".into());
            Decision::Cancel {
                was_confirmed: false,
            }
        }
        // The shipment may be leaving right now: only the warehouse can
        // stop it, so the order stays confirmed until it answers.
        (Status::Confirmed, Input::CancelRequested) if state.cancel_requested => Decision::Nothing,
        (Status::Confirmed, Input::CancelRequested) => {
            next.cancel_requested = true;
            Decision::RequestCancel
        }
        (Status::Shipped, Input::CancelRequested) => return Err(SagaError::AlreadyShipped),
        (closed, Input::CancelRequested) => return Err(SagaError::AlreadyClosed(closed.as_str())),
    };
    Ok((next, decision))
}

/// The first answer counts; a later contradicting duplicate is ignored.
fn settle(current: &Verdict, answer: Verdict) -> Verdict {
    match current {
        Verdict::Unknown => answer,
        known => known.clone(),
    }
}

/// A pending order moves once both answers are in, or at the first failure.
fn progress(next: &mut SagaState) -> Decision {
    if next.status != Status::Pending {
        return Decision::Nothing;
    }
    match (&next.stock, &next.payment) {
        (Verdict::Failed(reason), _) => reject(next, reason.clone()),
        (_, Verdict::Failed(reason)) => reject(next, format!("payment_{reason}")),
        (Verdict::Ok, Verdict::Ok) => {
            next.status = Status::Confirmed;
            Decision::Confirm
        }
        _ => Decision::Nothing,
    }
}

fn reject(next: &mut SagaState, reason: String) -> Decision {
    next.status = Status::Rejected;
    next.reason = Some(reason.clone());
    Decision::Reject(reason)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(inputs: &[Input]) -> (SagaState, Vec<Decision>) {
        let mut state = SagaState::placed();
        let mut decisions = Vec::new();
        for input in inputs {
            let (next, decision) = decide(&state, input.clone()).expect("accepted");
            state = next;
            if decision != Decision::Nothing {
                decisions.push(decision);
            }
        }
        (state, decisions)
    }

    #[test]
    fn reserved_and_authorised_in_either_order_confirm_once() {
        for inputs in [
            vec![Input::StockReserved, Input::PaymentAuthorized],
            vec![Input::PaymentAuthorized, Input::StockReserved],
            vec![
                Input::PaymentAuthorized,
                Input::PaymentAuthorized,
                Input::StockReserved,
                Input::StockReserved,
            ],
        ] {
            let (state, decisions) = run(&inputs);
            assert_eq!(state.status, Status::Confirmed);
            assert_eq!(decisions, vec![Decision::Confirm], "{inputs:?}");
        }
    }

    #[test]
    fn the_first_failure_rejects_and_later_answers_change_nothing() {
        let (state, decisions) = run(&[
            Input::PaymentFailed("declined".into()),
            Input::StockReserved,
            Input::StockFailed("out_of_stock".into()),
        ]);
        assert_eq!(state.status, Status::Rejected);
        assert_eq!(decisions, vec![Decision::Reject("payment_declined".into())]);
    }

    #[test]
    fn out_of_stock_rejects_with_its_reason() {
        let (state, decisions) = run(&[
            Input::PaymentAuthorized,
            Input::StockFailed("out_of_stock".into()),
        ]);
        assert_eq!(state.reason.as_deref(), Some("out_of_stock"));
        assert_eq!(decisions, vec![Decision::Reject("out_of_stock".into())]);
    }

    #[test]
    fn a_pending_order_times_out_but_a_settled_one_does_not() {
        let (state, decisions) = run(&[
            Input::StockReserved,
            Input::TimedOut,
            Input::PaymentAuthorized,
        ]);
        assert_eq!(state.status, Status::Rejected);
        assert_eq!(decisions, vec![Decision::Reject("timeout".into())]);
        let (state, _) = run(&[
            Input::StockReserved,
            Input::PaymentAuthorized,
            Input::TimedOut,
        ]);
        assert_eq!(state.status, Status::Confirmed);
    }

    #[test]
    fn cancelling_is_allowed_until_shipped() {
        let (_, decisions) = run(&[Input::CancelRequested]);
        assert_eq!(
            decisions,
            vec![Decision::Cancel {
                was_confirmed: false
            }]
        );
        let (state, decisions) = run(&[
            Input::StockReserved,
            Input::PaymentAuthorized,
            Input::CancelRequested,
            Input::CancelRequested,
            Input::StockReleased,
        ]);
        assert_eq!(state.status, Status::Cancelled);
        assert_eq!(
            decisions,
            vec![
                Decision::Confirm,
                Decision::RequestCancel,
                Decision::Cancel {
                    was_confirmed: true
                }
            ]
        );
        let (shipped, _) = run(&[
            Input::StockReserved,
            Input::PaymentAuthorized,
            Input::Shipped,
        ]);
        assert_eq!(shipped.status, Status::Shipped);
        assert_eq!(
            decide(&shipped, Input::CancelRequested),
            Err(SagaError::AlreadyShipped)
        );
    }

    #[test]
    fn a_confirmed_order_waits_for_the_warehouse_and_ships_if_it_was_too_late() {
        let (state, decisions) = run(&[
            Input::StockReserved,
            Input::PaymentAuthorized,
            Input::CancelRequested,
        ]);
        assert_eq!(
            state.status,
            Status::Confirmed,
            "not cancelled before the warehouse answers"
        );
        assert!(state.cancel_requested);
        assert_eq!(decisions, vec![Decision::Confirm, Decision::RequestCancel]);
        // The shipment had already left: the order ships, the request lapses.
        let (shipped, decision) = decide(&state, Input::Shipped).expect("accepted");
        assert_eq!(shipped.status, Status::Shipped);
        assert_eq!(decision, Decision::MarkShipped);
        assert_eq!(
            decide(&shipped, Input::StockReleased).expect("accepted").1,
            Decision::Nothing
        );
    }

    #[test]
    fn a_release_without_a_request_changes_nothing() {
        let (state, decisions) = run(&[
            Input::StockReserved,
            Input::PaymentAuthorized,
            Input::StockReleased,
        ]);
        assert_eq!(state.status, Status::Confirmed);
        assert_eq!(decisions, vec![Decision::Confirm]);
        let (state, decisions) = run(&[Input::CancelRequested, Input::StockReleased]);
        assert_eq!(state.status, Status::Cancelled);
        assert_eq!(
            decisions,
            vec![Decision::Cancel {
                was_confirmed: false
            }]
        );
    }

    #[test]
    fn a_rejected_order_cannot_be_cancelled() {
        let (rejected, _) = run(&[Input::TimedOut]);
        assert_eq!(
            decide(&rejected, Input::CancelRequested),
            Err(SagaError::AlreadyClosed("rejected"))
        );
    }

    #[test]
    fn verdicts_round_trip_through_the_database_form() {
        for v in [
            Verdict::Unknown,
            Verdict::Ok,
            Verdict::Failed("declined".into()),
        ] {
            assert_eq!(Verdict::from_db(v.to_db().as_deref()), v);
        }
    }
}
