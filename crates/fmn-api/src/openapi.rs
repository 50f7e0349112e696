//! The OpenAPI 3 document, generated from the handlers' annotations and the models.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{addresses, catalog, history, inbox, prefs, preview, public, tokens};

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .description(Some(
                            "A personal token (fmn_…) or an OpenID Connect access token",
                        ))
                        .build(),
                ),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "fmn", description = "Personal notifications from Fedora's message bus: \
        preferences, addresses, filters, rules, tokens, previews, feeds, the inbox. Every error is \
        {\"error\", \"message\", \"field\"?}; see docs/api.md for the limits."),
    paths(
        prefs::me, prefs::list_users, prefs::get_preferences, prefs::import_fmn3,
        prefs::get_context, prefs::put_context, prefs::delete_context, prefs::copy_context,
        prefs::apply_template, prefs::list_filters, prefs::create_filter, prefs::get_filter,
        prefs::patch_filter, prefs::delete_filter, prefs::order_filters, prefs::add_rule,
        prefs::put_rule, prefs::delete_rule,
        addresses::list_addresses, addresses::add_address, addresses::delete_address,
        addresses::confirm_address,
        tokens::list_tokens, tokens::create_token, tokens::revoke_token,
        tokens::rotate_feed_token,
        catalog::rules, catalog::applications, catalog::templates, catalog::limits,
        preview::preview,
        history::list_history,
        inbox::list_inbox, inbox::mark_read, inbox::mark_all_read, inbox::socket,
        public::rss, public::atom, public::unsubscribe_page, public::unsubscribe,
        public::confirm_page, public::confirm,
    ),
    // Path parameter schemas, which utoipa does not collect from `params` by itself.
    components(schemas(crate::model::UserName, crate::model::FilterId)),
    modifiers(&Security),
    tags(
        (name = "preferences"), (name = "contexts"), (name = "filters"), (name = "addresses"),
        (name = "templates"), (name = "catalog"), (name = "preview"), (name = "tokens"),
        (name = "feeds"), (name = "links"), (name = "users"), (name = "history"),
        (name = "inbox"),
    )
)]
struct ApiDoc;

/// The OpenAPI document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document as pretty JSON.
pub fn openapi_json() -> String {
    openapi()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
