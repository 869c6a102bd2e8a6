//! The permission catalogue: every `resource:action` Latchkey itself checks, with a description
//! and a category. Roles may also hold permissions outside it (for the applications that read
//! them from tokens); `*` grants all.

/// `(name, description)` of every built-in permission; the category is the resource part.
pub const CATALOGUE: &[(&str, &str)] = &[
    ("profile:read", "Read own profile"),
    (
        "profile:write",
        "Update own profile, password, email and sessions",
    ),
    ("users:read", "Read user information"),
    (
        "users:write",
        "Create and update users, lock and unlock them",
    ),
    ("users:delete", "Delete users"),
    ("roles:read", "Read roles and the permission catalogue"),
    (
        "roles:write",
        "Create, update and delete roles, and set direct permissions",
    ),
    ("clients:read", "Read OAuth clients"),
    (
        "clients:write",
        "Register, update and delete OAuth clients, rotate their secrets",
    ),
    ("api_keys:read", "Read API keys of service accounts"),
    ("api_keys:write", "Create and revoke API keys"),
    ("audit:read", "Read and export the audit log"),
    ("stats:read", "Read statistics and analytics"),
    ("webhooks:read", "Read webhooks and their deliveries"),
    ("webhooks:write", "Create, update, test and delete webhooks"),
    ("keys:write", "Rotate signing keys"),
    (
        "system:read",
        "Read the health figures (pool, timings, keys, workers)",
    ),
];

/// The category of a permission: its resource part.
pub fn category(permission: &str) -> &str {
    permission.split(':').next().unwrap_or(permission)
}

/// The categories, in catalogue order.
pub fn categories() -> Vec<&'static str> {
    let mut categories: Vec<&'static str> = Vec::new();
    for (name, _) in CATALOGUE {
        let c = category(name);
        if !categories.contains(&c) {
            categories.push(c);
        }
    }
    categories
}
