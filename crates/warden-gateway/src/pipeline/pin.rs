//! The tool-pin check shared by the pipeline's pin step and the approval snapshot read: a
//! tool whose announced definition changed since it was approved does not run.

use crate::state::AppState;

/// Why tool `server`/`name` may not run because of its pin: its definition changed since it
/// was approved, or the pin could not be read (fail closed). `None`: it may run.
pub(crate) async fn pin_refusal(
    state: &AppState,
    server: &str,
    name: &str,
    qualified: &str,
) -> Option<String> {
    match state.store.pins().is_blocked(server, name).await {
        Ok(false) => None,
        Ok(true) => Some(format!(
            "the definition of `{qualified}` changed since it was approved (possible rug pull); it is blocked until an admin reviews it (`warden tools review`, `warden tools approve`)"
        )),
        Err(error) => {
            tracing::error!(message = "tool pin could not be read; call refused", %error);
            Some("the tool's pinned definition could not be checked, so the call is refused (fail closed)".to_string())
        }
    }
}
