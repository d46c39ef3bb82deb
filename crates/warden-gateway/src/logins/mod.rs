//! People's logins: enrolment, login with password + TOTP, cookie sessions, step-up,
//! break-glass. (Not to be confused with `crate::sessions`, the agents' taint state.)
//!
//! The approval UI and any admin API log people in through this module:
//! - [`users`]: enrolment ([`add_user`], Argon2id password, TOTP seed sealed under the master
//!   key), [`disable_user`] and [`check_totp`] (RFC 6238, ±1 step, each step accepted once per
//!   user);
//! - [`login`]: `POST /v1/login` checks a password and a TOTP code and opens a session;
//!   `/v1/logout` and `/v1/session`;
//! - [`cookie_session`]: [`HumanSession`] is an axum extractor: it checks the session cookie
//!   (idle and absolute time-outs) and, for state-changing methods, the CSRF token in the
//!   `X-CSRF-Token` header; it yields the user, the role and the time of the last TOTP
//!   verification. A `Authorization: Bearer wdn_bg_…` break-glass credential passes as an
//!   admin, raising a high-severity alert record on every use. The session cookies are built
//!   here too;
//! - [`step_up`]: re-verifies a TOTP code inside a session (for approvals).
//!
//! MFA cannot be turned off for admins and approvers: they are enrolled with TOTP and a login
//! without a valid code is refused. Repeated failures lock the account with doubling back-off.

mod cookie_session;
pub(crate) mod login;
pub(crate) mod step_up;
pub(crate) mod throttle;
mod users;

pub(crate) use cookie_session::{ended_session_cookie, SecureCookie};
pub use cookie_session::{require_session, HumanSession, CSRF_HEADER, SESSION_COOKIE};
pub(crate) use login::{login_handler, logout_handler};
pub use step_up::{current_totp_step, step_up};
pub use users::{add_user, check_totp, disable_user, generate_password, Enrollment, UserError};

/// A person's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Approver,
    Auditor,
    Owner,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "approver" => Some(Self::Approver),
            "auditor" => Some(Self::Auditor),
            "owner" => Some(Self::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Approver => "approver",
            Self::Auditor => "auditor",
            Self::Owner => "owner",
        }
    }

    /// Admins and approvers always need a second factor.
    pub fn requires_mfa(self) -> bool {
        matches!(self, Self::Admin | Self::Approver)
    }
}
