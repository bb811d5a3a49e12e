//! Checkout's rules, with no I/O: validating baskets, orders and contact
//! addresses, pricing them from the price replica, and the order saga's
//! state machine.

pub mod contact;
pub mod countries;
pub mod order;
pub mod saga;

pub use contact::*;
pub use order::*;
pub use saga::*;
