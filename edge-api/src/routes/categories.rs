//! `GET /api/v1/categories`: what the search's category filter can take
//! (public), so a storefront's menu lists every category, not only those
//! of the results it happened to show.

use axum::extract::State;
use axum::response::Response;
use uuid::Uuid;

use super::cached;
use crate::dto::{Category, CategoryList};
use crate::problem::{ApiError, ApiResult};
use crate::state::AppState;
use crate::views::products;

/// The categories of products on sale.
#[utoipa::path(get, path = "/api/v1/categories", operation_id = "listCategories", tag = "products",
    responses(
        (status = 200, description = "every category with products on sale, in name order (at most 500), with how many each holds", body = CategoryList),
    ))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Response> {
    let fetch = async {
        let items = products::categories(&state.db)
            .await?
            .into_iter()
            .map(|(name, products)| Category { name, products })
            .collect();
        Ok(CategoryList { items })
    };
    // One entry in a cache of its own, fresh by the catalog's progress.
    let never = || ApiError::Internal(anyhow::anyhow!("the category list has no owner"));
    cached(&state.cache.categories, Uuid::nil(), "", never, fetch).await
}
