// @generated automatically by Diesel CLI.

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
    }
}

diesel::table! {
    meta (key) {
        key -> Text,
        value -> Text,
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
    }
}

diesel::joinable!(role_permissions -> roles (role_id));
diesel::joinable!(user_permissions -> users (user_id));
diesel::joinable!(user_roles -> roles (role_id));
diesel::joinable!(user_roles -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    clients,
    meta,
    role_permissions,
    roles,
    signing_keys,
    user_permissions,
    user_roles,
    users,
);
