//! Who may call the API: bearer tokens with a name and a role, kept in `exec.toml` only as the
//! SHA-256 of the token, so a leaked config file does not leak a credential.
//!
//! Roles are ordered `submit` < `operate` < `admin`; a higher role may do all a lower one may.
//! - `submit`: submit jobs as one of its tenants, and list, show and cancel the jobs of its
//!   tenants (a token without tenants: its OWN jobs, owner = the token's name);
//! - `operate`: also see and cancel anyone's jobs, submit as any tenant, drain and undrain
//!   devices, follow events;
//! - `admin`: also change the policy.
//!
//! Tenants (`tenants = ["team-a"]`) bind a token to the tenants it acts for, so that a tenant
//! is not whatever a submission says it is (fair share and quotas are per tenant). A `submit`
//! token may submit only as one of its tenants; with exactly one, that one is the default. A
//! `submit` token without tenants is the legacy, unbound kind: refused at start when the
//! executor has a tenant table, otherwise it may submit as any tenant (warned about at start).
//!
//! No token, or one that matches no entry: 401. A known token with too low a role, or a
//! submitter naming a tenant that is not its own: 403. A submitter asking for a job it may not
//! see: 404, as for a job that does not exist.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;

/// What a token may do; the order of the variants is the order of the roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Submit,
    Operate,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Submit, Role::Operate, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Submit => "submit",
            Role::Operate => "operate",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown role `{s}`, expected one of: submit, operate, admin"))
    }
}

/// One `[[api.tokens]]` entry of `exec.toml`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Who holds the token; jobs submitted with it are owned by this name.
    pub name: String,
    pub role: Role,
    /// SHA-256 of the token, 64 lowercase or uppercase hex digits.
    pub sha256: String,
    /// The tenants this token acts for (names from `[[daemon.tenants]]`); see the module's
    /// documentation for a `submit` token without any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tenants: Vec<String>,
}

impl TokenEntry {
    /// An entry without tenants.
    pub fn new(name: &str, role: Role, sha256: String) -> TokenEntry {
        TokenEntry { name: name.to_string(), role, sha256, tenants: Vec::new() }
    }

    /// The same entry, bound to `tenants`.
    pub fn with_tenants(mut self, tenants: &[&str]) -> TokenEntry {
        self.tenants = tenants.iter().map(|t| t.to_string()).collect();
        self
    }
}

/// A bad `[[api.tokens]]` list: names the entry (by position, 0-based, and name) and the field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("api.tokens[{index}] (`{name}`): `{field}`: {message}")]
pub struct TokenConfigError {
    pub index: usize,
    pub name: String,
    pub field: &'static str,
    pub message: String,
}

/// Why a request was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("malformed Authorization header: expected `Bearer <token>`")]
    Malformed,
    #[error("unknown token")]
    Unknown,
    #[error("`{name}` has role `{has}`, this needs `{needs}`")]
    RoleTooLow { name: String, has: Role, needs: Role },
    /// Answered exactly as a job that does not exist, so that a submitter cannot learn which
    /// ids (or owners, or tenants) exist by asking for other people's jobs.
    #[error("no job {job}")]
    NotOwner { name: String, job: u64, owner: String },
    /// A submitter naming a tenant it is not bound to. Names only the caller's own tenants.
    #[error("`{name}` may not submit as tenant `{asked}`: its token's tenants are {}", quoted_list(mine))]
    NotTenant { name: String, asked: String, mine: Vec<String> },
}

fn quoted_list(names: &[String]) -> String {
    names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")
}

impl AuthError {
    /// 401 when we do not know who is calling, 403 when we do and their role may not, 404 for
    /// another's job (as for a job that does not exist).
    pub fn http_status(&self) -> u16 {
        match self {
            AuthError::Missing | AuthError::Malformed | AuthError::Unknown => 401,
            AuthError::RoleTooLow { .. } | AuthError::NotTenant { .. } => 403,
            AuthError::NotOwner { .. } => 404,
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    /// The tenants it acts for; empty: not bound (see the module's documentation).
    pub tenants: Vec<String>,
}

/// What a submission may be: under which tenant, or why not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantChoice {
    /// Submit as this tenant (the named one, or the caller's only tenant).
    Use(String),
    /// Submit as the tenant the submission carries (its default when it names none).
    AsSubmitted,
}

impl Principal {
    pub fn require(&self, needs: Role) -> Result<(), AuthError> {
        if self.role >= needs {
            Ok(())
        } else {
            Err(AuthError::RoleTooLow { name: self.name.clone(), has: self.role, needs })
        }
    }

    /// Whether this caller sees and may cancel every job, or only its own.
    pub fn sees_all_jobs(&self) -> bool {
        self.role >= Role::Operate
    }

    /// May this caller see and cancel job `job`, owned by `owner` under `tenant`? `operate` and
    /// up: any job; a submitter bound to tenants: its tenants' jobs; an unbound one: its own.
    pub fn may_touch(&self, job: u64, owner: &str, tenant: &str) -> Result<(), AuthError> {
        let allowed = self.sees_all_jobs() || if self.tenants.is_empty() { self.name == owner } else { self.tenants.iter().any(|t| t == tenant) };
        if allowed {
            Ok(())
        } else {
            Err(AuthError::NotOwner { name: self.name.clone(), job, owner: owner.to_string() })
        }
    }

    /// The tenant a submission runs under, given the tenant it names (`None`: it names none).
    /// A submitter bound to tenants: the named one if it is one of them (else 403), or its only
    /// tenant; with several and none named, the submission must name one (400). `operate` and
    /// up, and unbound submitters: the named tenant, or their only tenant, or the
    /// submission's default.
    pub fn submission_tenant(&self, named: Option<&str>) -> Result<TenantChoice, TenantError> {
        match named {
            Some(asked) => {
                if self.role == Role::Submit && !self.tenants.is_empty() && !self.tenants.iter().any(|t| t == asked) {
                    return Err(TenantError::Forbidden(AuthError::NotTenant { name: self.name.clone(), asked: asked.to_string(), mine: self.tenants.clone() }));
                }
                Ok(TenantChoice::Use(asked.to_string()))
            }
            None => match self.tenants.as_slice() {
                [only] => Ok(TenantChoice::Use(only.clone())),
                [] => Ok(TenantChoice::AsSubmitted),
                several if self.role == Role::Submit => {
                    Err(TenantError::MustName(format!("`{}` acts for several tenants ({}): name one with `tenant`", self.name, quoted_list(several))))
                }
                _ => Ok(TenantChoice::AsSubmitted),
            },
        }
    }
}

/// Why a submission's tenant was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TenantError {
    /// 403: a tenant the token is not bound to.
    Forbidden(AuthError),
    /// 400 on field `tenant`: the token has several tenants and the submission named none.
    MustName(String),
}

/// The configured tokens, checked once at start-up.
#[derive(Clone, Debug, Default)]
pub struct TokenStore {
    entries: Vec<(Principal, [u8; 32])>,
}

impl TokenStore {
    /// Checks the entries; `tenant_table` is the executor's `[[daemon.tenants]]` (empty: none),
    /// against which every token's tenants must resolve, and without which a `submit` token
    /// need not have any.
    pub fn new(entries: &[TokenEntry]) -> Result<TokenStore, TokenConfigError> {
        TokenStore::with_tenant_table(entries, &[])
    }

    pub fn with_tenant_table(entries: &[TokenEntry], tenant_table: &[String]) -> Result<TokenStore, TokenConfigError> {
        let mut out: Vec<(Principal, [u8; 32])> = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let err = |field: &'static str, message: String| TokenConfigError { index, name: entry.name.clone(), field, message };
            if entry.name.trim().is_empty() {
                return Err(err("name", "expected a non-empty name".into()));
            }
            if out.iter().any(|(p, _)| p.name == entry.name) {
                return Err(err("name", format!("`{}` is listed twice", entry.name)));
            }
            let digest = parse_sha256_hex(&entry.sha256).map_err(|m| err("sha256", m))?;
            if let Some((other, _)) = out.iter().find(|(_, d)| *d == digest) {
                return Err(err("sha256", format!("the same token as `{}`", other.name)));
            }
            for (i, tenant) in entry.tenants.iter().enumerate() {
                if tenant.trim().is_empty() {
                    return Err(err("tenants", format!("tenant {i} is empty")));
                }
                if entry.tenants[..i].contains(tenant) {
                    return Err(err("tenants", format!("`{tenant}` is listed twice")));
                }
                if !tenant_table.is_empty() && !tenant_table.contains(tenant) {
                    return Err(err("tenants", format!("no tenant `{tenant}` in `[[daemon.tenants]]` (its tenants: {})", quoted_list(tenant_table))));
                }
            }
            if entry.role == Role::Submit && entry.tenants.is_empty() && !tenant_table.is_empty() {
                return Err(err(
                    "tenants",
                    format!("a `submit` token must name the tenants it submits as when the executor has a tenant table (one or more of {})", quoted_list(tenant_table)),
                ));
            }
            out.push((Principal { name: entry.name.clone(), role: entry.role, tenants: entry.tenants.clone() }, digest));
        }
        Ok(TokenStore { entries: out })
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Names of the `submit` tokens bound to no tenant (which may submit as any tenant).
    pub fn unbound_submitters(&self) -> Vec<&str> {
        self.entries.iter().filter(|(p, _)| p.role == Role::Submit && p.tenants.is_empty()).map(|(p, _)| p.name.as_str()).collect()
    }

    /// Finds who holds `token`. Compares the token's digest with every entry, in constant time
    /// and without stopping at a match, so timing tells nothing about which entries exist.
    pub fn lookup(&self, token: &str) -> Option<Principal> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<&Principal> = None;
        for (principal, expected) in &self.entries {
            if constant_time_eq(&digest, expected) {
                found = Some(principal);
            }
        }
        found.cloned()
    }

    /// Authenticates the value of an `Authorization` header (`None` when absent).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let header = authorization.ok_or(AuthError::Missing)?;
        let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::Malformed);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Malformed);
        }
        self.lookup(token).ok_or(AuthError::Unknown)
    }
}

/// Equality whose running time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for i in 0..32 {
        diff |= a[i] ^ b[i];
    }
    // Keeps the optimiser from turning the fold back into an early-exit comparison.
    std::hint::black_box(diff) == 0
}

fn parse_sha256_hex(s: &str) -> Result<[u8; 32], String> {
    let s = s.trim();
    if s.len() != 64 {
        return Err(format!("expected 64 hex digits (the SHA-256 of the token), found {} characters", s.len()));
    }
    let mut out = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).map_err(|_| "expected hex digits".to_string())?;
        out[i] = u8::from_str_radix(text, 16).map_err(|_| format!("expected hex digits, found `{text}`"))?;
    }
    Ok(out)
}

/// SHA-256 of `token` as 64 lowercase hex digits: what `[[api.tokens]].sha256` holds.
pub fn sha256_hex(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The prefix of every generated token, so one is easy to recognise (and to grep for in a leak).
pub const TOKEN_PREFIX: &str = "tsr_";

/// A fresh token: 32 bytes (256 bits) from the operating system's RNG, hex-encoded.
pub fn generate_token() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(format!("{TOKEN_PREFIX}{}", hex(&bytes)))
}

/// What `tessera exec token NAME --role ROLE [--tenant T ...]` prints: the token once, and the
/// lines to paste.
pub fn token_instructions(name: &str, role: Role, tenants: &[String], token: &str) -> String {
    let mut text = format!(
        "token for `{name}` (shown once; keep it secret, pass it as --token or TESSERA_TOKEN):\n{token}\n\n\
         add to exec.toml, after the [api] table:\n\
         [[api.tokens]]\nname = {name:?}\nrole = \"{role}\"\nsha256 = \"{hash}\"\n",
        hash = sha256_hex(token)
    );
    if !tenants.is_empty() {
        let list = tenants.iter().map(|t| format!("{t:?}")).collect::<Vec<_>>().join(", ");
        text.push_str(&format!("tenants = [{list}]\n"));
    } else if role == Role::Submit {
        // A TOML comment, so that pasting everything from `[[api.tokens]]` on stays valid.
        text.push_str(
            "# note: this submit token names no tenant (--tenant T): an executor with a tenant\n\
             # table ([[daemon.tenants]]) refuses it at start; one without lets it submit as any tenant.\n",
        );
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> TokenStore {
        TokenStore::new(&[
            TokenEntry::new("alice", Role::Submit, sha256_hex("tok-alice")),
            TokenEntry::new("olga", Role::Operate, sha256_hex("tok-olga")),
            TokenEntry::new("root", Role::Admin, sha256_hex("tok-root").to_uppercase()),
        ])
        .unwrap()
    }

    #[test]
    fn sha256_matches_the_standard_vector() {
        assert_eq!(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn authenticates_bearer_tokens_and_refuses_the_rest() {
        let s = store();
        assert_eq!(s.authenticate(Some("Bearer tok-alice")).unwrap(), Principal { name: "alice".into(), role: Role::Submit, tenants: vec![] });
        assert_eq!(s.authenticate(Some("bearer   tok-root ")).unwrap().role, Role::Admin);
        assert_eq!(s.authenticate(None), Err(AuthError::Missing));
        assert_eq!(s.authenticate(Some("tok-alice")), Err(AuthError::Malformed));
        assert_eq!(s.authenticate(Some("Basic tok-alice")), Err(AuthError::Malformed));
        assert_eq!(s.authenticate(Some("Bearer ")), Err(AuthError::Malformed));
        assert_eq!(s.authenticate(Some("Bearer tok-alicE")), Err(AuthError::Unknown));
        assert_eq!(AuthError::Unknown.http_status(), 401);
    }

    #[test]
    fn roles_are_ordered_and_ownership_binds_submitters() {
        let s = store();
        let alice = s.lookup("tok-alice").unwrap();
        let olga = s.lookup("tok-olga").unwrap();
        assert!(alice.require(Role::Submit).is_ok());
        let e = alice.require(Role::Operate).unwrap_err();
        assert_eq!(e.http_status(), 403);
        assert!(e.to_string().contains("needs `operate`"), "{e}");
        assert!(olga.require(Role::Operate).is_ok());
        assert!(olga.require(Role::Admin).is_err());
        assert!(alice.may_touch(1, "alice", "x").is_ok());
        let e = alice.may_touch(2, "bob", "x").unwrap_err();
        assert_eq!((e.http_status(), e.to_string()), (404, "no job 2".to_string()));
        assert!(olga.may_touch(2, "bob", "x").is_ok());
    }

    #[test]
    fn bad_token_lists_name_the_entry_and_field() {
        let good = sha256_hex("x");
        let e = TokenStore::new(&[TokenEntry::new("a", Role::Submit, "abc".into())]).unwrap_err();
        assert_eq!((e.index, e.field), (0, "sha256"));
        assert!(e.to_string().contains("64 hex digits"), "{e}");
        let e = TokenStore::new(&[TokenEntry::new("a", Role::Submit, "zz".repeat(32))]).unwrap_err();
        assert!(e.to_string().contains("`zz`"), "{e}");
        let e = TokenStore::new(&[
            TokenEntry::new("a", Role::Submit, good.clone()),
            TokenEntry::new("a", Role::Admin, sha256_hex("y")),
        ])
        .unwrap_err();
        assert_eq!((e.index, e.field), (1, "name"));
        let e = TokenStore::new(&[
            TokenEntry::new("a", Role::Submit, good.clone()),
            TokenEntry::new("b", Role::Admin, good),
        ])
        .unwrap_err();
        assert_eq!((e.index, e.field), (1, "sha256"));
        let e = TokenStore::new(&[TokenEntry::new(" ", Role::Submit, sha256_hex("x"))]).unwrap_err();
        assert_eq!(e.field, "name");
    }

    #[test]
    fn generated_tokens_are_fresh_and_round_trip_through_the_config() {
        let a = generate_token().unwrap();
        let b = generate_token().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 64, "{a}");
        let text = token_instructions("ci-bot", Role::Operate, &["team-a".to_string()], &a);
        let toml_part = &text[text.find("[[api.tokens]]").unwrap()..];
        #[derive(Deserialize)]
        struct Api {
            tokens: Vec<TokenEntry>,
        }
        #[derive(Deserialize)]
        struct File {
            api: Api,
        }
        let parsed: File = toml::from_str(toml_part).unwrap();
        let s = TokenStore::new(&parsed.api.tokens).unwrap();
        assert_eq!(s.lookup(&a).unwrap(), Principal { name: "ci-bot".into(), role: Role::Operate, tenants: vec!["team-a".into()] });
        // An unbound submit token's note does not break the lines to paste.
        let text = token_instructions("old", Role::Submit, &[], &b);
        assert!(text.contains("names no tenant"), "{text}");
        let parsed: File = toml::from_str(&text[text.find("[[api.tokens]]").unwrap()..]).unwrap();
        assert!(parsed.api.tokens[0].tenants.is_empty());
        assert!(s.lookup(&b).is_none());
    }

    fn table() -> Vec<String> {
        vec!["team-a".into(), "team-b".into(), "team-c".into()]
    }

    #[test]
    fn token_tenants_resolve_against_the_tenant_table() {
        let entries = [
            TokenEntry::new("root", Role::Admin, sha256_hex("r")),
            TokenEntry::new("carol", Role::Submit, sha256_hex("c")).with_tenants(&["team-a", "team-z"]),
        ];
        let e = TokenStore::with_tenant_table(&entries, &table()).unwrap_err();
        assert_eq!((e.index, e.name.as_str(), e.field), (1, "carol", "tenants"));
        assert!(e.to_string().contains("no tenant `team-z`") && e.to_string().contains("`team-a`, `team-b`, `team-c`"), "{e}");
        // Without a table, any tenant name goes (tenants are numbered as they first submit).
        assert!(TokenStore::new(&entries).is_ok());
        // An unbound submitter: refused with a table, listed as unbound without one.
        let unbound = [TokenEntry::new("dave", Role::Submit, sha256_hex("d"))];
        let e = TokenStore::with_tenant_table(&unbound, &table()).unwrap_err();
        assert_eq!((e.index, e.field), (0, "tenants"));
        assert!(e.to_string().contains("must name the tenants"), "{e}");
        assert_eq!(TokenStore::new(&unbound).unwrap().unbound_submitters(), vec!["dave"]);
        // Operators need no tenants, even with a table.
        assert!(TokenStore::with_tenant_table(&entries[..1], &table()).is_ok());
        let twice = [TokenEntry::new("e", Role::Submit, sha256_hex("e")).with_tenants(&["team-a", "team-a"])];
        assert!(TokenStore::new(&twice).unwrap_err().to_string().contains("listed twice"));
    }

    #[test]
    fn submitters_submit_only_as_their_tenants() {
        let one = Principal { name: "ann".into(), role: Role::Submit, tenants: vec!["team-a".into()] };
        let two = Principal { name: "ben".into(), role: Role::Submit, tenants: vec!["team-a".into(), "team-b".into()] };
        let unbound = Principal { name: "old".into(), role: Role::Submit, tenants: vec![] };
        let op = Principal { name: "olga".into(), role: Role::Operate, tenants: vec![] };
        assert_eq!(one.submission_tenant(None), Ok(TenantChoice::Use("team-a".into())));
        assert_eq!(one.submission_tenant(Some("team-a")), Ok(TenantChoice::Use("team-a".into())));
        let Err(TenantError::Forbidden(e)) = one.submission_tenant(Some("team-b")) else { panic!("team-b allowed") };
        assert_eq!(e.http_status(), 403);
        assert_eq!(e.to_string(), "`ann` may not submit as tenant `team-b`: its token's tenants are `team-a`");
        let Err(TenantError::MustName(m)) = two.submission_tenant(None) else { panic!("no tenant allowed") };
        assert!(m.contains("name one") && m.contains("`team-a`, `team-b`"), "{m}");
        assert_eq!(two.submission_tenant(Some("team-b")), Ok(TenantChoice::Use("team-b".into())));
        assert_eq!(unbound.submission_tenant(Some("anything")), Ok(TenantChoice::Use("anything".into())));
        assert_eq!(unbound.submission_tenant(None), Ok(TenantChoice::AsSubmitted));
        assert_eq!(op.submission_tenant(Some("team-c")), Ok(TenantChoice::Use("team-c".into())));
        // Seeing jobs: a bound submitter sees its tenants' jobs, whoever submitted them.
        assert!(one.may_touch(1, "someone", "team-a").is_ok());
        assert_eq!(one.may_touch(2, "ann", "team-b").unwrap_err().http_status(), 404);
        assert!(op.may_touch(2, "ann", "team-b").is_ok());
    }

    #[test]
    fn roles_parse_from_text() {
        assert_eq!("operate".parse::<Role>(), Ok(Role::Operate));
        assert!("root".parse::<Role>().unwrap_err().contains("submit, operate, admin"));
    }
}
