//! The queries the benchmark sends: a mix shaped like a shop's search box.

use edge_api::search::SearchParams;

use super::catalog::{Rng, ADJECTIVES, BRANDS, CATEGORIES};

/// One query of the mix.
pub fn next(rng: &mut Rng) -> SearchParams {
    let (category, nouns) = CATEGORIES[rng.below(CATEGORIES.len())];
    let noun = rng.pick(nouns).to_owned();
    let adjective = rng.pick(&ADJECTIVES);
    let roll = rng.below(100);
    let (q, category) = match roll {
        // A single word: the most common search, and the most hits.
        0..=44 => (noun, None),
        // Two words.
        45..=69 => (format!("{adjective} {noun}"), None),
        // A word within a category.
        70..=79 => (noun, Some(category.to_lowercase())),
        // Brand, adjective and noun: few hits.
        80..=89 => (
            format!("{} {adjective} {noun}", rng.pick(&BRANDS).to_lowercase()),
            None,
        ),
        // Browsing a category without words.
        90..=94 => (String::new(), Some(category.to_owned())),
        // A word nobody sells.
        _ => ("zeppelin".to_owned(), None),
    };
    // Most look at the first page; some go further.
    let offset = if rng.below(20) == 0 {
        20 * (1 + rng.below(5))
    } else {
        0
    };
    SearchParams {
        q,
        category,
        limit: 20,
        offset: u32::try_from(offset).unwrap_or(0),
    }
}
