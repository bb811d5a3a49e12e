//! `GET /api/v1/products`: search the catalog (public). The query goes to
//! every search shard at once and the page is merged from their answers
//! (see `crate::search`).

use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::Json;
use contracts::commands::FieldError;
use contracts::search::SearchHit;
use serde::Deserialize;

use crate::dto::{SearchItem, SearchPage};
use crate::problem::{ApiError, ApiResult};
use crate::search::SearchParams;
use crate::state::AppState;

pub const MAX_Q_CHARS: usize = 200;
pub const MAX_CATEGORY_CHARS: usize = 100;
pub const MAX_LIMIT: u32 = 100;
pub const DEFAULT_LIMIT: u32 = 20;
pub const MAX_OFFSET: u32 = 10_000;

/// The query string, as text: numbers are parsed here so that a bad one
/// is a 422 naming the field, like every other validation error.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSearch {
    q: Option<String>,
    category: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

/// Search products by text, category, or both.
#[utoipa::path(get, path = "/api/v1/products", operation_id = "searchProducts", tag = "products",
    params(
        ("q" = Option<String>, Query, description = "words to find in names (weighted most; a product named exactly so comes first), descriptions, categories or the SKU; every word must match, the last one may be the start of a word of 3 or more letters (`keyb` finds keyboards, after whole-word matches); at most 200 characters; blank lists by name", max_length = 200),
        ("category" = Option<String>, Query, description = "only this category (exact, case-insensitive)"),
        ("limit" = Option<u32>, Query, description = "1 to 100, default 20", minimum = 1, maximum = 100),
        ("offset" = Option<u32>, Query, description = "0 to 10000, default 0", minimum = 0, maximum = 10000),
    ),
    responses(
        (status = 200, description = "a page of results, best first; `partial` when a search shard did not answer in time", body = SearchPage),
        (status = 422, description = "bad q, category, limit or offset", body = crate::dto::Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<AppState>,
    query: Result<Query<RawSearch>, QueryRejection>,
) -> ApiResult<Json<SearchPage>> {
    let started = Instant::now();
    let Query(raw) = query.map_err(crate::query_params::rejected)?;
    let params = validate(raw).map_err(ApiError::Validation)?;
    let results = state
        .search
        .search(&params)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(Json(SearchPage {
        items: results.items.into_iter().map(to_item).collect(),
        total: results.total,
        partial: !results.missing_shards.is_empty(),
        missing_shards: results.missing_shards,
        took_ms: (started.elapsed().as_secs_f64() * 1e6).round() / 1e3,
    }))
}

/// Checks every parameter and reports every bad one at once.
pub fn validate(raw: RawSearch) -> Result<SearchParams, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    let q = raw.q.unwrap_or_default();
    if q.chars().count() > MAX_Q_CHARS {
        fail("q", format!("must be at most {MAX_Q_CHARS} characters"));
    }
    let category = raw
        .category
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty());
    if category
        .as_ref()
        .is_some_and(|c| c.chars().count() > MAX_CATEGORY_CHARS)
    {
        fail(
            "category",
            format!("must be at most {MAX_CATEGORY_CHARS} characters"),
        );
    }
    let mut number = |field: &str, raw: Option<String>, default: u32, min: u32, max: u32| match raw
        .as_deref()
        .map(str::trim)
    {
        None | Some("") => default,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (min..=max).contains(&n) => n,
            _ => {
                fail(field, format!("must be a whole number from {min} to {max}"));
                default
            }
        },
    };
    let limit = number("limit", raw.limit, DEFAULT_LIMIT, 1, MAX_LIMIT);
    let offset = number("offset", raw.offset, 0, 0, MAX_OFFSET);
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(SearchParams {
        q,
        category,
        limit,
        offset,
    })
}

fn to_item(hit: SearchHit) -> SearchItem {
    SearchItem {
        id: hit.product_id,
        sku: hit.sku,
        name: hit.name,
        description: hit.description,
        category: hit.category,
        price: hit.price.into(),
        available: hit.available,
        status: hit.status,
        score: hit.score,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(q: &str, limit: Option<&str>, offset: Option<&str>) -> RawSearch {
        RawSearch {
            q: Some(q.into()),
            category: None,
            limit: limit.map(Into::into),
            offset: offset.map(Into::into),
        }
    }

    fn fields(errors: Vec<FieldError>) -> Vec<String> {
        errors.into_iter().map(|e| e.field).collect()
    }

    #[test]
    fn defaults_apply_when_limit_and_offset_are_absent() {
        let params = validate(raw("computer", None, None)).expect("valid");
        assert_eq!((params.limit, params.offset), (DEFAULT_LIMIT, 0));
    }

    #[test]
    fn every_bad_parameter_is_reported() {
        let long = "x".repeat(MAX_Q_CHARS + 1);
        let errors = validate(raw(&long, Some("0"), Some("10001"))).expect_err("invalid");
        assert_eq!(fields(errors), ["q", "limit", "offset"]);
        let errors = validate(raw("ok", Some("ten"), Some("-1"))).expect_err("invalid");
        assert_eq!(fields(errors), ["limit", "offset"]);
    }

    #[test]
    fn the_bounds_themselves_are_valid() {
        let q = "é".repeat(MAX_Q_CHARS);
        let params = validate(raw(&q, Some("100"), Some("10000"))).expect("valid");
        assert_eq!((params.limit, params.offset), (100, 10_000));
    }
}
