//! The edge's read models, one projector per team stream (a checkpoint per
//! stream), each dispatching to the views that event feeds. Rebuildable
//! from the streams at any time; unknown event versions are skipped so a
//! team can publish a new version before the edge reads it.

pub mod baskets;
pub mod catalog;
pub mod orders;
pub mod products;

use contracts::{RawEnvelope, Team};
use platform::delivery::{Delivery, HandlerError};
use platform::projection::{ProjectionSpec, Projector};
use platform::Tx;

/// The projection of one team's stream.
pub fn spec(team: Team) -> ProjectionSpec {
    ProjectionSpec {
        name: format!("edge.{}", team.name()),
        stream: team.stream(),
        filter_subjects: vec![team.event_prefix().to_owned()],
    }
}

/// Feeds every edge view from one team's stream.
pub struct TeamProjector(pub Team);

impl Projector for TeamProjector {
    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<(), HandlerError> {
        let handled = match self.0 {
            Team::Product => products::apply(tx, d).await?,
            Team::Checkout => baskets::apply(tx, d).await? || orders::apply_checkout(tx, d).await?,
            Team::Warehouse => {
                let stock = catalog::apply_stock(tx, d).await?;
                orders::apply_warehouse(tx, d).await? || stock
            }
            Team::Finance => orders::apply_finance(tx, d).await?,
        };
        if !handled {
            tracing::debug!(subject = %d.subject, "event not projected by the edge");
        }
        Ok(())
    }
}

/// The envelope, or poison when it is not one.
pub fn envelope(d: &Delivery) -> Result<RawEnvelope, HandlerError> {
    d.raw()
}
