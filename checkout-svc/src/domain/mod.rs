//! Checkout's rules, with no I/O: validating baskets and orders, pricing
//! them from the price replica, and the order saga's state machine.

pub mod countries;
pub mod order;
pub mod saga;

pub use order::*;
pub use saga::*;
