//! Standard OpenID Connect claims of a user, chosen by scope and by the `claims` request.

use serde_json::{Map, Value, json};

use crate::domain::Scope;
use crate::store::users::UserRow;

/// The claims each scope releases (OpenID Connect Core §5.4).
pub const SCOPE_CLAIMS: &[(&str, &[&str])] = &[
    (
        "profile",
        &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
    ),
    ("email", &["email", "email_verified"]),
    ("address", &["address"]),
    ("phone", &["phone_number", "phone_number_verified"]),
];

/// Every claim Latchkey can release, for discovery's `claims_supported`.
pub fn supported_claims() -> Vec<&'static str> {
    let mut claims = vec![
        "sub",
        "iss",
        "aud",
        "exp",
        "iat",
        "auth_time",
        "nonce",
        "acr",
        "amr",
        "azp",
        "sid",
    ];
    for (_, names) in SCOPE_CLAIMS {
        claims.extend_from_slice(names);
    }
    claims
}

/// The value of one standard claim for `user`, if the user has one.
fn claim_value(user: &UserRow, name: &str) -> Option<Value> {
    let text = |v: &Option<String>| {
        v.as_ref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| json!(s))
    };
    match name {
        "name" => {
            let parts: Vec<&str> = [&user.first_name, &user.middle_name, &user.last_name]
                .into_iter()
                .filter_map(|p| p.as_deref().map(str::trim).filter(|p| !p.is_empty()))
                .collect();
            (!parts.is_empty()).then(|| json!(parts.join(" ")))
        }
        "given_name" => text(&user.first_name),
        "family_name" => text(&user.last_name),
        "middle_name" => text(&user.middle_name),
        "nickname" => text(&user.nickname),
        "preferred_username" => Some(json!(user.username)),
        "profile" => text(&user.profile_url),
        "picture" => text(&user.picture),
        "website" => text(&user.website),
        "gender" => text(&user.gender),
        "birthdate" => text(&user.birthdate),
        "zoneinfo" => text(&user.zoneinfo),
        "locale" => text(&user.locale),
        "updated_at" => Some(json!(user.updated_at)),
        "email" => Some(json!(user.email)),
        "email_verified" => Some(json!(user.email_verified)),
        "address" => user
            .address
            .as_deref()
            .and_then(|a| serde_json::from_str::<Value>(a).ok())
            .filter(Value::is_object),
        "phone_number" => text(&user.phone_number),
        "phone_number_verified" => user
            .phone_number
            .as_ref()
            .map(|_| json!(user.phone_number_verified)),
        _ => None,
    }
}

/// The standard claims `scope` releases, plus any claim named in `requested` (the `userinfo`
/// or `id_token` member of a `claims` request). Claims without a value are left out.
pub fn user_claims(
    user: &UserRow,
    scope: Option<&Scope>,
    requested: &Map<String, Value>,
) -> Map<String, Value> {
    let mut claims = Map::new();
    if let Some(scope) = scope {
        for (name, names) in SCOPE_CLAIMS {
            if scope.contains(name) {
                for claim in *names {
                    if let Some(value) = claim_value(user, claim) {
                        claims.insert((*claim).to_owned(), value);
                    }
                }
            }
        }
    }
    for claim in requested.keys() {
        if let Some(value) = claim_value(user, claim) {
            claims.insert(claim.clone(), value);
        }
    }
    claims
}
