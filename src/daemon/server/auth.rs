//! Basic auth against the bcrypt hashes of the web config file, as exporter-toolkit does it.
//!
//! bcrypt is slow on purpose (about 70 ms at cost 10), so it runs on the blocking pool, one at
//! a time (a flood of wrong passwords takes one core, not all), and a success is remembered:
//! Prometheus sends the same credentials every scrape. What is remembered is a SHA-256 of the
//! user, the stored hash and the password, never the password, compared in constant time.
//! An unknown user is checked against a configured hash anyway, so the answer takes as long
//! as for a wrong password and does not tell which user names exist.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use axum::body::Body;
use axum::http::{HeaderMap, Response, StatusCode, header};
use base64::Engine;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

/// Distinct credentials remembered; a handful of scrapers need a few.
const REMEMBERED: usize = 64;

type Digest = [u8; 32];

#[derive(Debug)]
pub(super) struct BasicAuth {
    /// User name to bcrypt hash; never empty.
    users: BTreeMap<String, String>,
    verified: Mutex<VecDeque<Digest>>,
    bcrypt: Semaphore,
}

impl BasicAuth {
    /// `None` when there are no users: no authentication.
    pub(super) fn new(users: BTreeMap<String, String>) -> Option<BasicAuth> {
        (!users.is_empty()).then(|| BasicAuth {
            users,
            verified: Mutex::new(VecDeque::new()),
            bcrypt: Semaphore::new(1),
        })
    }

    /// Whether the request carries the credentials of a configured user.
    pub(super) async fn allows(&self, headers: &HeaderMap) -> bool {
        let Some((user, password)) = credentials(headers) else {
            return false;
        };
        let known = self.users.get(&user);
        let Some(hash) = known.or_else(|| self.users.values().next()).cloned() else {
            return false;
        };
        let digest = digest(&user, &hash, &password);
        if self.remembered(&digest) {
            return known.is_some();
        }
        let Ok(_permit) = self.bcrypt.acquire().await else {
            return false;
        };
        let matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|r| r.unwrap_or(false));
        let ok = matches && known.is_some();
        if ok {
            let mut verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
            if verified.len() == REMEMBERED {
                verified.pop_front();
            }
            verified.push_back(digest);
        }
        ok
    }

    fn remembered(&self, digest: &Digest) -> bool {
        let verified = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
        // Every entry is compared, so the time taken says nothing about which one matched.
        verified
            .iter()
            .fold(0u8, |found, d| found | d.ct_eq(digest).unwrap_u8())
            == 1
    }
}

/// `Authorization: Basic base64(user:password)`, the scheme in any case.
fn credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn digest(user: &str, hash: &str, password: &str) -> Digest {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    // Length-prefixed, so no two different triples give the same input.
    for part in [user, hash, password] {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part.as_bytes());
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// `401` with the challenge that makes browsers and Prometheus send credentials.
pub(super) fn unauthorized() -> Response<Body> {
    let mut response = Response::new(Body::from("Unauthorized\n"));
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    let headers = response.headers_mut();
    headers.insert(header::WWW_AUTHENTICATE, "Basic".parse().expect("static"));
    headers.insert(
        header::CONTENT_TYPE,
        "text/plain; charset=utf-8".parse().expect("static"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {token}").parse().unwrap(),
        );
        headers
    }

    #[tokio::test]
    async fn right_password_passes_and_is_remembered_wrong_ones_and_unknown_users_do_not() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth::new([("prometheus".to_owned(), hash)].into()).unwrap();
        assert!(auth.allows(&basic("prometheus", "s3cret")).await);
        assert_eq!(auth.verified.lock().unwrap().len(), 1);
        assert!(
            auth.allows(&basic("prometheus", "s3cret")).await,
            "from memory"
        );
        assert!(!auth.allows(&basic("prometheus", "wrong")).await);
        assert!(!auth.allows(&basic("other", "s3cret")).await);
        assert!(!auth.allows(&HeaderMap::new()).await);
        assert_eq!(
            auth.verified.lock().unwrap().len(),
            1,
            "failures are not kept"
        );
    }
}
