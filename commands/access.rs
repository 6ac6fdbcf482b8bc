//! Who may do what through `lifeline serve`: bearer tokens (the JSON API) and users with
//! passwords (HTTP Basic, what KurrentDB clients send), each with a role. Read ⊂ write ⊂ admin.
//!
//! The access file is JSON:
//! `{"tokens": [{"token": "…", "role": "read"}], "users": [{"user": "…", "password": "…", "role": "write"}]}`.
//! Secrets are kept only as blake3 hashes in memory and compared as hashes: none is printed,
//! and a comparison takes the same time whatever it matches.

use axum::http::HeaderMap;
use base64::Engine;
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, subscriptions, findings and plans.
    Read,
    /// Also appends and soft deletes.
    Write,
    /// Also tombstones (irreversible).
    Admin,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// The shortest token or password accepted.
pub const SECRET_CHARS_MIN: usize = 16;

#[derive(Default)]
pub struct Access {
    tokens: HashMap<[u8; 32], Role>,
    users: HashMap<[u8; 32], Role>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    #[serde(default)]
    tokens: Vec<TokenEntry>,
    #[serde(default)]
    users: Vec<UserEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    token: String,
    role: Role,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    user: String,
    password: String,
    role: Role,
}

/// Credentials were sent and are not known (as opposed to none sent).
#[derive(Debug, PartialEq, Eq)]
pub struct Unknown;

fn user_key(user: &str, password: &str) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"lifeline user\0");
    h.update(user.as_bytes());
    h.update(b"\0");
    h.update(password.as_bytes());
    *h.finalize().as_bytes()
}

impl Access {
    /// Reads the access file; every problem names the file and the entry.
    pub fn load(path: &Path) -> anyhow::Result<Access> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("reading the access file {}: {e}", path.display()))?;
        let file: AccessFile = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("the access file {} is not valid: {e}", path.display()))?;
        let mut out = Access::default();
        for (k, t) in file.tokens.into_iter().enumerate() {
            if t.token.chars().count() < SECRET_CHARS_MIN {
                anyhow::bail!(
                    "the access file {}: token {} is shorter than {SECRET_CHARS_MIN} characters",
                    path.display(),
                    k + 1
                );
            }
            out.tokens
                .insert(*blake3::hash(t.token.as_bytes()).as_bytes(), t.role);
        }
        for u in file.users {
            if u.user.is_empty() || u.user.contains(':') {
                anyhow::bail!(
                    "the access file {}: user '{}' must be non-empty and without ':'",
                    path.display(),
                    u.user
                );
            }
            if u.password.chars().count() < SECRET_CHARS_MIN {
                anyhow::bail!(
                    "the access file {}: the password of user '{}' is shorter than {SECRET_CHARS_MIN} characters",
                    path.display(),
                    u.user
                );
            }
            out.users.insert(user_key(&u.user, &u.password), u.role);
        }
        Ok(out)
    }

    /// No token and no user: the server answers everyone (loopback only).
    pub fn is_open(&self) -> bool {
        self.tokens.is_empty() && self.users.is_empty()
    }

    pub fn has_tokens(&self) -> bool {
        !self.tokens.is_empty()
    }

    /// The role of the credentials in `authorization` (`Bearer TOKEN` or `Basic …`): `Ok(None)`
    /// when none were sent, `Err(Unknown)` when they are not known.
    pub fn role_of(&self, headers: &HeaderMap) -> Result<Option<Role>, Unknown> {
        let Some(value) = headers.get("authorization") else {
            return Ok(None);
        };
        let value = value.to_str().map_err(|_| Unknown)?.trim();
        if let Some(token) = value.strip_prefix("Bearer ") {
            return self
                .tokens
                .get(blake3::hash(token.trim().as_bytes()).as_bytes())
                .copied()
                .map(Some)
                .ok_or(Unknown);
        }
        if let Some(encoded) = value.strip_prefix("Basic ") {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|_| Unknown)?;
            let text = String::from_utf8(decoded).map_err(|_| Unknown)?;
            let (user, password) = text.split_once(':').ok_or(Unknown)?;
            return self
                .users
                .get(&user_key(user, password))
                .copied()
                .map(Some)
                .ok_or(Unknown);
        }
        Err(Unknown)
    }
}
