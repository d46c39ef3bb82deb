//! The frame every UI page shares (head, style sheet, header with the signed-in person and the
//! log-out form) and the response headers that go with it (CSP, no caching, no framing).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::logins::HumanSession;

/// No scripts, no outside resources; inline styles only; forms post back to Warden only.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'";

/// The style sheet: a constant, so it goes out as written (CSS selectors use `>`).
const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}
header,main{padding:0.75rem 1.5rem} header{background:#17324d;color:#fff} header a{color:#fff}
table{border-collapse:collapse;width:100%;background:#fff} th,td{border:1px solid #ccc;padding:0.35rem 0.5rem;text-align:left;vertical-align:top}
pre{background:#fff;border:1px solid #ccc;padding:0.5rem;overflow:auto;max-height:24rem}
.inline{display:inline} .error{color:#8b0000;font-weight:bold} .ok{color:#064e00;font-weight:bold}
tr.changes td{background:#fff3cd;font-weight:bold} caption{text-align:left;font-style:italic}
label{display:block;margin-top:0.5rem} section{margin-bottom:1.5rem} .cols{display:flex;gap:1rem;flex-wrap:wrap} .cols>div{flex:1;min-width:18rem}
";

/// A whole page: `title` (also the `<h1>`), who is signed in (with the CSRF token for the
/// log-out form), and the page's own content. Status 200; see [`with_status`].
pub(super) fn page(title: &str, who: Option<&HumanSession>, csrf: &str, body: Markup) -> Response {
    let html = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Warden" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    p { strong { "Warden" } " — approvals" }
                    @if let Some(w) = who {
                        nav aria-label="Main" {
                            a href="/ui/approvals" { "Approval queue" }
                            " · Signed in as " strong { (w.user) } " (" (w.role.as_str()) ") "
                            form.inline method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                    }
                }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    let mut resp = (StatusCode::OK, html.into_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    resp
}

pub(super) fn with_status(mut r: Response, status: StatusCode) -> Response {
    *r.status_mut() = status;
    r
}

/// A page whose whole content is one message: `error` (`role="alert"`) or `ok`
/// (`role="status"`).
pub(super) fn message(text: &str, ok: bool) -> Markup {
    html! {
        p class=(if ok { "ok" } else { "error" }) role=(if ok { "status" } else { "alert" }) { (text) }
    }
}
