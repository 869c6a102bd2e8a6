// @generated automatically by Diesel CLI.

diesel::table! {
    account_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        purpose -> Text,
        new_email -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Text,
        name -> Text,
        key_hash -> Text,
        key_prefix -> Text,
        user_id -> Text,
        grant_id -> Text,
        scopes -> Text,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_logs (id) {
        id -> Text,
        actor_id -> Nullable<Text>,
        actor_email -> Nullable<Text>,
        action -> Text,
        resource -> Text,
        resource_id -> Nullable<Text>,
        old_values -> Nullable<Text>,
        new_values -> Nullable<Text>,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        request_id -> Nullable<Text>,
        additional_info -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        grant_id -> Text,
        client_id -> Text,
        redirect_uri -> Text,
        nonce -> Nullable<Text>,
        code_challenge -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    authorization_requests (id) {
        id -> Text,
        client_id -> Text,
        parameters -> Text,
        login_session_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        selected_session_id -> Nullable<Text>,
    }
}

diesel::table! {
    client_assertions (client_id, jti) {
        client_id -> Text,
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        secret_hash -> Nullable<Text>,
        name -> Text,
        logo_uri -> Nullable<Text>,
        policy_uri -> Nullable<Text>,
        tos_uri -> Nullable<Text>,
        application_type -> Text,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        grant_types -> Text,
        response_types -> Text,
        token_endpoint_auth_method -> Text,
        jwks -> Nullable<Text>,
        jwks_uri -> Nullable<Text>,
        id_token_signed_response_alg -> Text,
        userinfo_signed_response_alg -> Nullable<Text>,
        scope -> Text,
        skip_consent -> Bool,
        require_pkce -> Bool,
        backchannel_logout_uri -> Nullable<Text>,
        frontchannel_logout_uri -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        token_epoch -> BigInt,
    }
}

diesel::table! {
    consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scope -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    grants (id) {
        id -> Text,
        client_id -> Text,
        user_id -> Text,
        session_id -> Nullable<Text>,
        scope -> Text,
        claims -> Nullable<Text>,
        auth_time -> BigInt,
        acr -> Text,
        amr -> Text,
        offline -> Bool,
        created_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        revoked_reason -> Nullable<Text>,
        refresh_ttl_secs -> Nullable<BigInt>,
    }
}

diesel::table! {
    known_devices (user_id, fingerprint) {
        user_id -> Text,
        fingerprint -> Text,
        description -> Text,
        first_seen -> BigInt,
        last_seen -> BigInt,
    }
}

diesel::table! {
    login_throttles (key_hash) {
        key_hash -> Text,
        user_id -> Nullable<Text>,
        failures -> Integer,
        window_start -> BigInt,
        locked_until -> Nullable<BigInt>,
        expires_at -> BigInt,
    }
}

diesel::table! {
    meta (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    mfa_challenges (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        purpose -> Text,
        payload -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        payload -> Text,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
        topic -> Nullable<Text>,
    }
}

diesel::table! {
    rate_limit_counters (key, window_start) {
        key -> Text,
        window_start -> BigInt,
        hits -> Integer,
        expires_at -> BigInt,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        grant_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        successor_sealed -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        jti -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    role_permissions (role_id, permission) {
        role_id -> Text,
        permission -> Text,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        kind -> Text,
        user_id -> Text,
        secret_hash -> Nullable<Text>,
        auth_time -> BigInt,
        amr -> Text,
        acr -> Text,
        ip_address -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        created_at -> BigInt,
        last_activity -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        replaced_by -> Nullable<Text>,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        alg -> Text,
        status -> Text,
        public_jwk -> Text,
        private_key -> Text,
        created_at -> BigInt,
        activated_at -> Nullable<BigInt>,
        retired_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    user_permissions (user_id, permission) {
        user_id -> Text,
        permission -> Text,
    }
}

diesel::table! {
    user_roles (user_id, role_id) {
        user_id -> Text,
        role_id -> Text,
    }
}

diesel::table! {
    user_security (user_id) {
        user_id -> Text,
        failed_login_count -> Integer,
        failed_login_window_start -> Nullable<BigInt>,
        locked_until -> Nullable<BigInt>,
        lock_reason -> Nullable<Text>,
        mfa_enabled -> Bool,
        totp_secret -> Nullable<Text>,
        totp_last_step -> Nullable<BigInt>,
        password_changed_at -> Nullable<BigInt>,
        mfa_failed_count -> Integer,
        mfa_failed_window_start -> Nullable<BigInt>,
        mfa_locked_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        email -> Text,
        email_verified -> Bool,
        password_hash -> Nullable<Text>,
        first_name -> Nullable<Text>,
        last_name -> Nullable<Text>,
        status -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        last_login_at -> Nullable<BigInt>,
        middle_name -> Nullable<Text>,
        nickname -> Nullable<Text>,
        picture -> Nullable<Text>,
        website -> Nullable<Text>,
        profile_url -> Nullable<Text>,
        gender -> Nullable<Text>,
        birthdate -> Nullable<Text>,
        zoneinfo -> Nullable<Text>,
        locale -> Nullable<Text>,
        phone_number -> Nullable<Text>,
        phone_number_verified -> Bool,
        address -> Nullable<Text>,
        display_name -> Nullable<Text>,
        bio -> Nullable<Text>,
        preferences -> Nullable<Text>,
        metadata -> Nullable<Text>,
        email_verified_at -> Nullable<BigInt>,
        deleted_at -> Nullable<BigInt>,
        kind -> Text,
    }
}

diesel::table! {
    webhooks (id) {
        id -> Text,
        url -> Text,
        events -> Text,
        secret -> Text,
        active -> Bool,
        description -> Nullable<Text>,
        consecutive_failures -> Integer,
        disabled_reason -> Nullable<Text>,
        last_delivery_at -> Nullable<BigInt>,
        last_success_at -> Nullable<BigInt>,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::joinable!(account_tokens -> users (user_id));
diesel::joinable!(api_keys -> grants (grant_id));
diesel::joinable!(api_keys -> users (user_id));
diesel::joinable!(authorization_codes -> grants (grant_id));
diesel::joinable!(authorization_requests -> clients (client_id));
diesel::joinable!(consents -> clients (client_id));
diesel::joinable!(consents -> users (user_id));
diesel::joinable!(grants -> clients (client_id));
diesel::joinable!(grants -> sessions (session_id));
diesel::joinable!(grants -> users (user_id));
diesel::joinable!(known_devices -> users (user_id));
diesel::joinable!(login_throttles -> users (user_id));
diesel::joinable!(mfa_challenges -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(refresh_tokens -> grants (grant_id));
diesel::joinable!(role_permissions -> roles (role_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(user_permissions -> users (user_id));
diesel::joinable!(user_roles -> roles (role_id));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_security -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    account_tokens,
    api_keys,
    audit_logs,
    authorization_codes,
    authorization_requests,
    client_assertions,
    clients,
    consents,
    grants,
    known_devices,
    login_throttles,
    meta,
    mfa_challenges,
    outbox,
    rate_limit_counters,
    recovery_codes,
    refresh_tokens,
    revoked_tokens,
    role_permissions,
    roles,
    sessions,
    signing_keys,
    user_permissions,
    user_roles,
    user_security,
    users,
    webhooks,
);
