//! Preferences, contexts, filters and rules.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use fmn_rules::{Address, Context, Preferences};

use super::{context, context_mut, etag_header, fresh_filter_id, load, modify, remove_where};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{ApiJson, UserAccess};
use crate::model::{
    ContextDoc, ContextIn, CopyIn, FilterDoc, FilterIn, FilterOrder, FilterPatch, PreferencesDoc,
    RuleDoc,
};
use crate::state::AppState;

/// A user's whole preferences.
#[utoipa::path(get, path = "/api/v1/users/{user}/preferences", tag = "preferences",
    params(("user" = crate::model::UserName, Path, description = "Account name")),
    responses((status = 200, body = PreferencesDoc, description = "With an ETag for If-Match"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_preferences(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let prefs = load(&state, user).await?;
    Ok((etag_header(&prefs), Json(PreferencesDoc::from(prefs))))
}

/// A context.
#[utoipa::path(get, path = "/api/v1/users/{user}/contexts/{context}", tag = "contexts",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path)),
    responses((status = 200, body = ContextDoc), (status = 404, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_context(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let kind = access.context()?;
    let prefs = load(&state, user).await?;
    let doc = ContextDoc::from(context(&prefs, kind)?.clone());
    Ok((etag_header(&prefs), Json(doc)))
}

/// Creates a context, or sets its switch and settings (addresses and filters stay).
#[utoipa::path(put, path = "/api/v1/users/{user}/contexts/{context}", tag = "contexts",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("If-Match" = Option<String>, Header, description = "ETag of the preferences read")),
    request_body = ContextIn,
    responses((status = 200, body = ContextDoc), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 412, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_context(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<ContextIn>,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let kind = access.context()?;
    let ((), prefs) = modify(&state, &headers, user, |prefs| {
        let ctx = prefs.contexts.entry(kind).or_default();
        ctx.enabled = body.enabled;
        ctx.settings = body.settings.clone().into();
        Ok(())
    })
    .await?;
    let doc = ContextDoc::from(context(&prefs, kind)?.clone());
    Ok((etag_header(&prefs), Json(doc)))
}

/// Deletes a context with its addresses and filters.
#[utoipa::path(delete, path = "/api/v1/users/{user}/contexts/{context}", tag = "contexts",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_context(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let user = &access.user;
    let kind = access.context()?;
    modify(&state, &headers, user, |prefs| {
        prefs
            .contexts
            .remove(&kind)
            .map(|_| ())
            .ok_or_else(|| ApiError::not_found(format!("no {} context", kind.as_str())))
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Copies a context's filters to another context (created if missing), with new ids and
/// no address selection.
#[utoipa::path(post, path = "/api/v1/users/{user}/contexts/{context}/copy", tag = "contexts",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path)),
    request_body = CopyIn,
    responses((status = 200, body = ContextDoc, description = "The target context"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn copy_context(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CopyIn>,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let from = access.context()?;
    let to = body.to.into();
    if from == to {
        return Err(ApiError::invalid("to", "copying a context onto itself"));
    }
    let ((), prefs) = modify(&state, &headers, user, |prefs| {
        let filters = context(prefs, from)?.filters.clone();
        let target = prefs.contexts.entry(to).or_default();
        for mut f in filters {
            f.id = fresh_filter_id(target, &f.id);
            f.addresses = None;
            target.filters.push(f);
        }
        Ok(())
    })
    .await?;
    let doc = ContextDoc::from(context(&prefs, to)?.clone());
    Ok((etag_header(&prefs), Json(doc)))
}

/// Applies a template to a context (created if missing): its filters are appended.
#[utoipa::path(post, path = "/api/v1/users/{user}/contexts/{context}/templates/{template}",
    tag = "templates",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("template" = String, Path, description = "A template name, e.g. packager")),
    responses((status = 200, body = ContextDoc), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn apply_template(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let kind = access.context()?;
    let name = access.params().raw("template")?;
    let template = crate::templates::templates()
        .into_iter()
        .find(|t| t.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no template {name:?}")).at("template"))?;
    let ((), prefs) = modify(&state, &headers, user, |prefs| {
        let ctx = prefs.contexts.entry(kind).or_default();
        for mut f in template.filters.clone() {
            f.id = fresh_filter_id(ctx, &f.id);
            ctx.filters.push(f);
        }
        Ok(())
    })
    .await?;
    let doc = ContextDoc::from(context(&prefs, kind)?.clone());
    Ok((etag_header(&prefs), Json(doc)))
}

/// A context's filters.
#[utoipa::path(get, path = "/api/v1/users/{user}/contexts/{context}/filters", tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path)),
    responses((status = 200, body = Vec<FilterDoc>), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_filters(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<FilterDoc>>> {
    let user = &access.user;
    let kind = access.context()?;
    let prefs = load(&state, user).await?;
    let ctx = context(&prefs, kind)?;
    Ok(Json(ctx.filters.iter().cloned().map(Into::into).collect()))
}

/// Adds a filter to a context (created if missing).
#[utoipa::path(post, path = "/api/v1/users/{user}/contexts/{context}/filters", tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path)),
    request_body = FilterIn,
    responses((status = 201, body = FilterDoc), (status = 400, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create_filter(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FilterIn>,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let kind = access.context()?;
    if let Some(id) = &body.id {
        if !crate::validate::valid_id(id) {
            return Err(ApiError::invalid("id", "1-64 of A-Z a-z 0-9 . _ -"));
        }
    }
    let (filter, prefs) = modify(&state, &headers, user, |prefs| {
        let ctx = prefs.contexts.entry(kind).or_default();
        if let Some(id) = &body.id {
            if ctx.filters.iter().any(|f| &f.id == id) {
                return Err(ApiError::conflict(format!("a filter {id} already exists")).at("id"));
            }
        }
        let id = fresh_filter_id(ctx, "");
        let filter = body.clone().into_filter(id);
        ctx.filters.push(filter.clone());
        Ok(filter)
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        etag_header(&prefs),
        Json(FilterDoc::from(filter)),
    ))
}

fn find_filter<'a>(ctx: &'a mut Context, id: &str) -> ApiResult<&'a mut fmn_rules::Filter> {
    ctx.filters
        .iter_mut()
        .find(|f| f.id == id)
        .ok_or_else(|| ApiError::not_found(format!("no filter {id}")).at("filter"))
}

/// Changes the filter the path names (`{user}`, `{context}`, `{filter}`) as [`modify`]
/// changes preferences; returns the filter afterwards.
async fn modify_filter(
    state: &AppState,
    headers: &HeaderMap,
    access: &UserAccess,
    mut change: impl FnMut(&mut fmn_rules::Filter) -> ApiResult<()>,
) -> ApiResult<(fmn_rules::Filter, Preferences)> {
    let kind = access.context()?;
    let id = access.params().id("filter")?;
    modify(state, headers, &access.user, |prefs| {
        let f = find_filter(context_mut(prefs, kind)?, &id)?;
        change(f)?;
        Ok(f.clone())
    })
    .await
}

/// A filter.
#[utoipa::path(get, path = "/api/v1/users/{user}/contexts/{context}/filters/{filter}",
    tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("filter" = crate::model::FilterId, Path)),
    responses((status = 200, body = FilterDoc), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn get_filter(
    access: UserAccess,
    State(state): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let kind = access.context()?;
    let id = access.params().id("filter")?;
    let mut prefs = load(&state, user).await?;
    let tag = etag_header(&prefs);
    let filter = find_filter(context_mut(&mut prefs, kind)?, &id)?.clone();
    Ok((tag, Json(FilterDoc::from(filter))))
}

/// Changes a filter: rename, (de)activate, oneshot, rules, addresses.
#[utoipa::path(patch, path = "/api/v1/users/{user}/contexts/{context}/filters/{filter}",
    tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("filter" = crate::model::FilterId, Path)),
    request_body = FilterPatch,
    responses((status = 200, body = FilterDoc), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn patch_filter(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FilterPatch>,
) -> ApiResult<impl IntoResponse> {
    let (filter, prefs) = modify_filter(&state, &headers, &access, |f| {
        if let Some(name) = &body.name {
            f.name.clone_from(name);
        }
        if let Some(active) = body.active {
            f.active = active;
        }
        if let Some(oneshot) = body.oneshot {
            f.oneshot = oneshot;
        }
        if let Some(rules) = &body.rules {
            f.rules = rules.iter().map(|r| r.0.clone()).collect();
        }
        if let Some(addresses) = &body.addresses {
            f.addresses = Some(addresses.clone()).filter(|a| !a.is_empty());
        }
        Ok(())
    })
    .await?;
    Ok((etag_header(&prefs), Json(FilterDoc::from(filter))))
}

/// Deletes a filter.
#[utoipa::path(delete, path = "/api/v1/users/{user}/contexts/{context}/filters/{filter}",
    tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("filter" = crate::model::FilterId, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_filter(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let user = &access.user;
    let kind = access.context()?;
    let id = access.params().id("filter")?;
    modify(&state, &headers, user, |prefs| {
        remove_where(
            &mut context_mut(prefs, kind)?.filters,
            |f| f.id != id,
            ApiError::not_found(format!("no filter {id}")).at("filter"),
        )
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reorders a context's filters.
#[utoipa::path(put, path = "/api/v1/users/{user}/contexts/{context}/filter-order",
    tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path)),
    request_body = FilterOrder,
    responses((status = 200, body = Vec<FilterDoc>), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn order_filters(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<FilterOrder>,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let kind = access.context()?;
    let (filters, prefs) = modify(&state, &headers, user, |prefs| {
        let ctx = context_mut(prefs, kind)?;
        let mut sorted_new = body.ids.clone();
        sorted_new.sort();
        let mut sorted_old: Vec<String> = ctx.filters.iter().map(|f| f.id.clone()).collect();
        sorted_old.sort();
        if sorted_new != sorted_old {
            return Err(ApiError::invalid(
                "ids",
                "must list every filter id of the context exactly once",
            ));
        }
        let mut old = std::mem::take(&mut ctx.filters);
        for id in &body.ids {
            if let Some(i) = old.iter().position(|f| &f.id == id) {
                ctx.filters.push(old.swap_remove(i));
            }
        }
        Ok(ctx.filters.clone())
    })
    .await?;
    let docs: Vec<FilterDoc> = filters.into_iter().map(Into::into).collect();
    Ok((etag_header(&prefs), Json(docs)))
}

/// Appends a rule to a filter.
#[utoipa::path(post, path = "/api/v1/users/{user}/contexts/{context}/filters/{filter}/rules",
    tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("filter" = crate::model::FilterId, Path)),
    request_body = RuleDoc,
    responses((status = 201, body = FilterDoc), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn add_rule(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(rule): ApiJson<RuleDoc>,
) -> ApiResult<impl IntoResponse> {
    let (filter, prefs) = modify_filter(&state, &headers, &access, |f| {
        f.rules.push(rule.0.clone());
        Ok(())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        etag_header(&prefs),
        Json(FilterDoc::from(filter)),
    ))
}

/// Replaces a filter's rule (by position, from 0).
#[utoipa::path(put, path = "/api/v1/users/{user}/contexts/{context}/filters/{filter}/rules/{index}",
    tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("filter" = crate::model::FilterId, Path), ("index" = usize, Path)),
    request_body = RuleDoc,
    responses((status = 200, body = FilterDoc), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn put_rule(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(rule): ApiJson<RuleDoc>,
) -> ApiResult<impl IntoResponse> {
    let index = access.params().index("index")?;
    let (filter, prefs) = modify_filter(&state, &headers, &access, |f| {
        let slot = f
            .rules
            .get_mut(index)
            .ok_or_else(|| ApiError::not_found(format!("no rule {index}")).at("index"))?;
        *slot = rule.0.clone();
        Ok(())
    })
    .await?;
    Ok((etag_header(&prefs), Json(FilterDoc::from(filter))))
}

/// Removes a filter's rule (by position, from 0).
#[utoipa::path(delete, path = "/api/v1/users/{user}/contexts/{context}/filters/{filter}/rules/{index}",
    tag = "filters",
    params(("user" = crate::model::UserName, Path), ("context" = crate::model::ContextName, Path),
        ("filter" = crate::model::FilterId, Path), ("index" = usize, Path)),
    responses((status = 200, body = FilterDoc), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn delete_rule(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<impl IntoResponse> {
    let index = access.params().index("index")?;
    let (filter, prefs) = modify_filter(&state, &headers, &access, |f| {
        if index >= f.rules.len() {
            return Err(ApiError::not_found(format!("no rule {index}")).at("index"));
        }
        f.rules.remove(index);
        Ok(())
    })
    .await?;
    Ok((etag_header(&prefs), Json(FilterDoc::from(filter))))
}

/// Imports FMN 3 rules (as FMN 3's API serves them: one rule or a list) for this user:
/// each imported context's filters are replaced; destinations become addresses, confirmed
/// only if already confirmed here.
#[utoipa::path(post, path = "/api/v1/users/{user}/import/fmn3", tag = "preferences",
    params(("user" = crate::model::UserName, Path)),
    request_body(content = Object, description = "FMN 3 rules JSON"),
    responses((status = 200, body = PreferencesDoc), (status = 400, body = ErrorBody),
        (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn import_fmn3(
    access: UserAccess,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<impl IntoResponse> {
    let user = &access.user;
    let text =
        std::str::from_utf8(&body).map_err(|_| ApiError::bad_request("the body is not UTF-8"))?;
    let rules = fmn_rules::fmn3::parse(text)
        .map_err(|e| ApiError::bad_request(format!("not FMN 3 rules: {e}")))?;
    if let Some((i, r)) = rules.iter().enumerate().find(|(_, r)| r.user.name != *user) {
        return Err(ApiError::invalid(
            format!("[{i}].user.name"),
            format!("rule of {}, not {user}", r.user.name),
        ));
    }
    let imported =
        fmn_rules::fmn3::import(&rules).map_err(|e| ApiError::invalid("", e.to_string()))?;
    let ((), prefs) = modify(&state, &headers, user, |prefs| {
        for new in imported.clone() {
            for (kind, ctx) in new.contexts {
                let target = prefs.contexts.entry(kind).or_default();
                target.filters = ctx.filters;
                for a in ctx.addresses {
                    if !target.addresses.iter().any(|b| b.address == a.address) {
                        target.addresses.push(Address {
                            address: a.address,
                            confirmed: false,
                            disabled: None,
                            secret: None,
                        });
                    }
                }
            }
        }
        Ok(())
    })
    .await?;
    Ok((etag_header(&prefs), Json(PreferencesDoc::from(prefs))))
}

/// Every user with stored preferences (admins only).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = crate::model::UserList), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list_users(
    caller: Caller,
    State(state): State<AppState>,
) -> ApiResult<Json<crate::model::UserList>> {
    if !caller.admin {
        return Err(ApiError::forbidden("only admins may list users"));
    }
    let mut users: Vec<String> = state
        .prefs()
        .load_all()
        .await?
        .into_iter()
        .map(|p: Preferences| p.user)
        .collect();
    users.sort();
    Ok(Json(crate::model::UserList { users }))
}

/// The caller.
#[utoipa::path(get, path = "/api/v1/me", tag = "users",
    responses((status = 200, body = crate::model::Me), (status = 401, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn me(caller: Caller) -> Json<crate::model::Me> {
    Json(crate::model::Me {
        user: caller.user,
        admin: caller.admin,
    })
}
