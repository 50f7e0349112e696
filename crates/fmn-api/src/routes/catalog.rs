//! Catalogs: rule kinds, applications, templates.

use axum::Json;

use crate::catalog::{RuleKindInfo, rule_kinds};
use crate::model::{ApplicationList, FilterDoc, TemplateDoc};

/// Every rule kind, with its argument schema, description and an example.
#[utoipa::path(get, path = "/api/v1/rules", tag = "catalog",
    responses((status = 200, body = Vec<RuleKindInfo>)))]
pub async fn rules() -> Json<Vec<RuleKindInfo>> {
    Json(rule_kinds())
}

/// The applications the message catalog knows (for `application` rules).
#[utoipa::path(get, path = "/api/v1/applications", tag = "catalog",
    responses((status = 200, body = ApplicationList)))]
pub async fn applications() -> Json<ApplicationList> {
    Json(ApplicationList {
        applications: fmn_messages::Catalog::builtin().applications().to_vec(),
    })
}

/// The templates.
#[utoipa::path(get, path = "/api/v1/templates", tag = "templates",
    responses((status = 200, body = Vec<TemplateDoc>)))]
pub async fn templates() -> Json<Vec<TemplateDoc>> {
    Json(
        crate::templates::templates()
            .into_iter()
            .map(|t| TemplateDoc {
                name: t.name.into(),
                description: t.description.into(),
                filters: t.filters.into_iter().map(FilterDoc::from).collect(),
            })
            .collect(),
    )
}

/// The limits the API enforces.
#[utoipa::path(get, path = "/api/v1/limits", tag = "catalog",
    responses((status = 200, body = crate::config::Limits)))]
pub async fn limits(
    axum::extract::State(state): axum::extract::State<crate::state::AppState>,
) -> Json<crate::config::Limits> {
    Json(state.config().limits.clone())
}
