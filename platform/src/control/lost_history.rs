//! Whether a replay from the start would lose rows: the events a view was
//! made from that its stream no longer holds.

use async_nats::jetstream::Context;

use crate::db::Db;
use crate::projection;
use crate::replay::{self, Target};

/// The targets whose stream lost events the view may hold rows of (it
/// was created anew under them, or cut from below by limits or a purge
/// since the view was last rebuilt from the start), each with a warning
/// for the plan.
pub(super) async fn find(
    js: &Context,
    db: &Db,
    targets: &[Target],
) -> anyhow::Result<Vec<(usize, String)>> {
    let mut lost = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        let noticed = projection::stream_restarted_at(db, &target.name).await?;
        // Created anew and not noticed by the follower yet (it looks
        // every few seconds).
        let unnoticed = match projection::stored_incarnation(db, &target.name).await? {
            Some(stored) => {
                let now = crate::started_over::Incarnation::find(js, target.stream, 0).await?;
                stored != now.incarnation.key()
            }
            None => false,
        };
        let when = match (noticed, unnoticed) {
            (Some(at), _) => Some(format!("at {at}")),
            (None, true) => Some("just now".to_owned()),
            (None, false) => None,
        };
        if let Some(when) = when {
            lost.push((
                i,
                format!(
                    "{} was created anew {when}: the events before are gone",
                    target.stream
                ),
            ));
            continue;
        }
        // Cut from below (limits, a purge) since the view was built.
        let floor = projection::rebuilt_floor(db, &target.name).await?;
        let first = replay::first_sequence(js, target.stream)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if first > floor {
            lost.push((
                i,
                format!(
                    "{} no longer holds events #{floor}..#{} (removed by its limits or a \
                     purge), which the view may hold rows of",
                    target.stream,
                    first - 1
                ),
            ));
        }
    }
    Ok(lost)
}
