//! `Json` that rejects with our problem+json (not axum's plain text) and names what was wrong.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};

use crate::error::ApiError;

pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Json(value)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(ApiError::UnsupportedMediaType(
                "send the body as Content-Type: application/json".into(),
            )),
            Err(JsonRejection::BytesRejection(e)) if e.status() == 413 => Err(
                ApiError::PayloadTooLarge("the request body is larger than allowed".into()),
            ),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(ApiError::InvalidRequest(format!(
                "malformed JSON: {}",
                e.body_text()
            ))),
            Err(JsonRejection::JsonDataError(e)) => Err(ApiError::InvalidRequest(format!(
                "invalid body: {}",
                e.body_text()
            ))),
            Err(other) => Err(ApiError::InvalidRequest(other.body_text())),
        }
    }
}
