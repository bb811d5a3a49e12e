//! The edge's read models, one projector per team stream (a checkpoint per
//! stream), each dispatching to the views that event feeds. Rebuildable
//! from the streams at any time; versions the edge does not declare are
//! filtered out, so a team can publish a new version before the edge reads it.

pub mod baskets;
pub mod catalog;
pub mod orders;
pub mod products;
pub mod touches;

use contracts::consumers::edge_api;
use contracts::{RawEnvelope, Team};
use platform::delivery::{Delivery, HandlerError};
use platform::projection::{ProjectionSpec, Projector};
use platform::Tx;

/// The projection of one team's stream, filtered to the event versions the
/// edge declares it reads (`contracts::consumers::edge_api`).
pub fn spec(team: Team) -> ProjectionSpec {
    ProjectionSpec {
        name: format!("edge.{}", team.name()),
        stream: team.stream(),
        filter_subjects: edge_api::CONSUMER
            .subjects_from(team)
            .into_iter()
            .map(str::to_owned)
            .collect(),
    }
}

/// Feeds every edge view from one team's stream.
pub struct TeamProjector(pub Team);

impl Projector for TeamProjector {
    async fn apply(&self, tx: &mut Tx, d: &Delivery) -> Result<(), HandlerError> {
        if self.0 == Team::Product {
            if !products::apply(tx, d).await? {
                tracing::debug!(subject = %d.subject, "event not projected by the edge");
            }
            return Ok(());
        }
        self.apply_batch(tx, std::slice::from_ref(d)).await
    }

    /// The catalog is written a batch at a time (see `products::batch`);
    /// the order views record every step of the batch on the timelines
    /// together, then apply each step's own change in stream order.
    async fn apply_batch(&self, tx: &mut Tx, batch: &[Delivery]) -> Result<(), HandlerError> {
        if self.0 == Team::Product {
            return products::apply_batch(tx, batch).await;
        }
        let mut steps = Vec::with_capacity(batch.len());
        let mut is_step = Vec::with_capacity(batch.len());
        for d in batch {
            let step = orders::step(self.0, d)?;
            is_step.push(step.is_some());
            steps.extend(step);
        }
        orders::touch(tx, &steps).await?;
        for step in steps {
            orders::apply(tx, step).await?;
        }
        // Baskets and stock levels are other views of the same streams.
        let mut levels = Vec::new();
        for (d, is_step) in batch.iter().zip(is_step) {
            let handled = match self.0 {
                Team::Checkout => baskets::apply(tx, d).await?,
                Team::Warehouse => match catalog::levels_in(d)? {
                    Some(reported) => {
                        levels.extend(reported);
                        true
                    }
                    None => false,
                },
                Team::Finance | Team::Product => false,
            };
            if !handled && !is_step {
                tracing::debug!(subject = %d.subject, "event not projected by the edge");
            }
        }
        catalog::write(tx, levels).await?;
        Ok(())
    }

    /// Order events tell the orders' SSE followers which order moved.
    fn observe(&self, batch: &[Delivery]) {
        if self.0 != Team::Product {
            touches::observe(batch);
        }
    }

    /// Positions recorded before a stream started over would hide the new
    /// stream's smaller ones.
    fn started_over(&self) {
        if self.0 != Team::Product {
            touches::forget_positions();
        }
    }

    /// The tables each stream's events write. The orders' tables are fed by
    /// three streams, so rebuilding one of those from the start rebuilds
    /// all three (see `platform::replay::select`).
    fn tables(&self) -> &'static [&'static str] {
        match self.0 {
            Team::Product => &["product_view"],
            Team::Checkout => &["basket_view", "orders_view", "order_timeline"],
            Team::Warehouse => &["availability_view", "orders_view", "order_timeline"],
            Team::Finance => &["orders_view", "order_timeline", "invoice_view"],
        }
    }
}

/// The envelope, or poison when it is not one.
pub fn envelope(d: &Delivery) -> Result<RawEnvelope, HandlerError> {
    d.raw()
}
