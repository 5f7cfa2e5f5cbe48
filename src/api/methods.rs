//! A user's security info: list, add and delete methods, change the default sign-in method.
//! Every change is one Lua script (methods + audit + default upkeep) and queues a portal event.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;

use super::auth::Caller;
use super::idempotency;
use super::json::Json;
use crate::error::{ApiError, Problem};
use crate::events::EventType;
use crate::ids::{MethodId, TenantId, UserId, user_tag};
use crate::methods::{DefaultMethod, Method, MethodDetails, MethodsDocument, NewMethod};
use crate::policy::Policy;
use crate::state::AppState;
use crate::store::methods::{AddOutcome, DefaultChange, DeleteOutcome, SetDefaultOutcome};

/// The user id from the path, or a 422 naming the charset.
pub(super) fn user_id(user: &str) -> Result<UserId, ApiError> {
    UserId::parse(user).map_err(|e| ApiError::InvalidRequest(e.to_string()))
}

/// The user's methods with the default as it takes effect under `policy`.
async fn document(
    state: &AppState,
    tag: &str,
    policy: &Policy,
) -> Result<MethodsDocument, ApiError> {
    let stored = state.store.methods(tag).await?;
    Ok(stored.with_effective_default(&policy.enabled_options()))
}

/// List a user's methods
///
/// The user's security-info methods, oldest first, and the default sign-in method as it takes
/// effect under the tenant policy.
#[utoipa::path(get, path = "/v1/tenants/{tenant}/users/{user}/methods", operation_id = "list_methods", tag = "methods",
    params(("tenant" = String, Path), ("user" = String, Path, description = "1-64 of A-Z a-z 0-9 . _ @ -")),
    responses(
        (status = 200, body = MethodsDocument, description = "Methods (oldest first) and the default sign-in method as it takes effect under the tenant policy"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Bad user id"),
    ))]
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, user)): Path<(String, String)>,
) -> Result<axum::Json<MethodsDocument>, ApiError> {
    let tag = user_tag(&caller.tenant, &user_id(&user)?);
    let policy = super::policy::current(&state, &caller.tenant).await?;
    Ok(axum::Json(document(&state, &tag, &policy).await?))
}

/// Add a method
///
/// Adds a method the portal proved itself (authenticator app, security key, e-mail, security
/// questions; phones come from an approved registration call). The first method that backs a
/// sign-in option becomes the default. Send an `Idempotency-Key` to retry safely: the same key
/// with the same body answers the same method for 24 h and adds it once.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/users/{user}/methods", operation_id = "add_method", tag = "methods",
    params(("tenant" = String, Path), ("user" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "1-255 visible ASCII characters: the same key with the same body answers the same method for 24 h (added once); with another body, 422 `idempotency-key-reused`")),
    request_body(content = NewMethod, description = "A non-phone method the portal proved; unknown fields are refused"),
    responses(
        (status = 201, body = Method, description = "Added; the first method backing a sign-in option becomes the default. A repeated `Idempotency-Key` answers the first request's method"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "`conflict`: the same security key, a second e-mail or security-questions method, or too many of a kind"),
        (status = 413, body = Problem, content_type = "application/problem+json", description = "`payload-too-large`"),
        (status = 415, body = Problem, content_type = "application/problem+json", description = "`unsupported-media-type`"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`invalid-request` (malformed JSON, unknown field, bad value), `phone-method-needs-verification` (kind phone), `method-disabled` (policy), `idempotency-key-reused`"),
    ))]
pub(super) async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, user)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Result<Response, ApiError> {
    let user = user_id(&user)?;
    let tag = user_tag(&caller.tenant, &user);
    let idem = idempotency::from_request(&headers, "add_method", &body)?;
    let lock = std::time::Duration::from_secs(60);
    let store = state.store.clone();
    let add = async move {
        let (status, method) = add_method(&state, &caller, user, body).await?;
        let method = serde_json::to_value(method).map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok((status, method))
    };
    idempotency::once(&store, &tag, idem, lock, add).await
}

async fn add_method(
    state: &AppState,
    caller: &Caller,
    user: UserId,
    body: serde_json::Value,
) -> Result<(StatusCode, Method), ApiError> {
    let details = NewMethod::from_body(body)?;
    let policy = super::policy::current(state, &caller.tenant).await?;
    if !policy.kind_enabled(details.kind()) {
        return Err(ApiError::MethodDisabled(format!(
            "the tenant policy disables {} methods",
            details.kind().as_str()
        )));
    }
    let tag = user_tag(&caller.tenant, &user);
    let id = MethodId::generate();
    let outcome = state
        .store
        .add_method(&tag, &id, &details, &policy.enabled_options())
        .await?;
    match outcome {
        AddOutcome::Added { method, default } => {
            let data = json!({ "method": method.masked() });
            emit(
                state,
                &caller.tenant,
                &user,
                EventType::MethodRegistered,
                data,
            )
            .await;
            emit_default_change(state, &caller.tenant, &user, default).await;
            Ok((StatusCode::CREATED, method))
        }
        AddOutcome::LimitReached => Err(ApiError::Conflict(format!(
            "a user has at most {} {} methods",
            details.kind().max_per_user(),
            details.kind().as_str()
        ))),
        AddOutcome::Duplicate => Err(ApiError::Conflict(match details {
            MethodDetails::SecurityKey { .. } => "this security key is already registered".into(),
            _ => format!(
                "the user already has a {} method: delete it first",
                details.kind().as_str()
            ),
        })),
    }
}

/// Delete a method
///
/// Deletes one of the user's methods (audited, `method.deleted` sent). A default it backed
/// moves to the best remaining enabled option, or to null.
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/users/{user}/methods/{id}", operation_id = "delete_method", tag = "methods",
    params(("tenant" = String, Path), ("user" = String, Path), ("id" = String, Path, description = "Method id (lowercase UUID)")),
    responses(
        (status = 204, description = "Deleted (audited); a default it backed moved to the best remaining option or to null"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Unknown or malformed method id"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "The mobile phone while an alternate mobile exists"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Bad user id"),
    ))]
pub(super) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, user, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let user = user_id(&user)?;
    let not_found = || ApiError::NotFound("no such method for this user".into());
    let id = MethodId::parse(&id).map_err(|_| not_found())?;
    let policy = super::policy::current(&state, &caller.tenant).await?;
    let tag = user_tag(&caller.tenant, &user);
    match state
        .store
        .delete_method(&tag, &id, &policy.enabled_options())
        .await?
    {
        DeleteOutcome::Deleted { method, default } => {
            let data = json!({ "method": method.masked() });
            emit(
                &state,
                &caller.tenant,
                &user,
                EventType::MethodDeleted,
                data,
            )
            .await;
            emit_default_change(&state, &caller.tenant, &user, default).await;
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteOutcome::Missing => Err(not_found()),
        DeleteOutcome::MobileHasAlternate => Err(ApiError::Conflict(
            "delete the alternate mobile phone before the mobile phone".into(),
        )),
    }
}

/// `PUT …/default-method` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultMethodRequest {
    /// One of security_key, authenticator_push, authenticator_code, voice_mobile, sms,
    /// voice_alternate_mobile, voice_office.
    #[schema(value_type = DefaultMethod)]
    default_method: String,
}

/// Change the default sign-in method
///
/// Sets the option the user signs in with by default; a registered, policy-enabled method must
/// back it. Answers the new methods document.
#[utoipa::path(put, path = "/v1/tenants/{tenant}/users/{user}/default-method", operation_id = "set_default_method", tag = "methods",
    params(("tenant" = String, Path), ("user" = String, Path)),
    request_body = DefaultMethodRequest,
    responses(
        (status = 200, body = MethodsDocument, description = "The new methods document"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "No or unknown key"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Another tenant's key"),
        (status = 422, body = Problem, content_type = "application/problem+json", description = "`invalid-default-method` (not an option, e-mail/security questions, or no method backs it), `method-disabled` (policy), `invalid-request`"),
    ))]
pub(super) async fn set_default(
    State(state): State<AppState>,
    caller: Caller,
    Path((_tenant, user)): Path<(String, String)>,
    Json(request): Json<DefaultMethodRequest>,
) -> Result<axum::Json<MethodsDocument>, ApiError> {
    let user = user_id(&user)?;
    let option = parse_option(&request.default_method)?;
    let policy = super::policy::current(&state, &caller.tenant).await?;
    let disabled = || {
        ApiError::MethodDisabled(format!(
            "the tenant policy disables {} as a sign-in method",
            option.as_str()
        ))
    };
    if !policy.option_enabled(option) {
        return Err(disabled());
    }
    let tag = user_tag(&caller.tenant, &user);
    match state
        .store
        .set_default(&tag, option, &policy.enabled_options())
        .await?
    {
        SetDefaultOutcome::Set(change) => {
            emit_default_change(&state, &caller.tenant, &user, change).await
        }
        SetDefaultOutcome::Disabled => return Err(disabled()),
        SetDefaultOutcome::NotBacked => {
            return Err(ApiError::InvalidDefaultMethod(format!(
                "no registered method of the user backs {}",
                option.as_str()
            )));
        }
    }
    Ok(axum::Json(document(&state, &tag, &policy).await?))
}

fn parse_option(value: &str) -> Result<DefaultMethod, ApiError> {
    if let Some(option) = DefaultMethod::parse(value) {
        return Ok(option);
    }
    Err(ApiError::InvalidDefaultMethod(match value {
        "email" | "security_questions" => format!(
            "{value} serves password reset only and can never be the default sign-in method"
        ),
        _ => {
            let all: Vec<_> = DefaultMethod::ALL.iter().map(|d| d.as_str()).collect();
            format!("default_method must be one of {}", all.join(", "))
        }
    }))
}

async fn emit(
    state: &AppState,
    tenant: &TenantId,
    user: &UserId,
    type_: EventType,
    data: serde_json::Value,
) {
    state
        .flow
        .events
        .emit(&state.store, tenant.as_str(), user.as_str(), type_, data)
        .await;
}

async fn emit_default_change(
    state: &AppState,
    tenant: &TenantId,
    user: &UserId,
    change: DefaultChange,
) {
    if change.changed {
        let data = json!({ "default_method": change.default, "previous": change.previous });
        emit(state, tenant, user, EventType::DefaultMethodChanged, data).await;
    }
}
