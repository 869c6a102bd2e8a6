DROP TABLE signing_keys;
DROP TABLE clients;
DROP TABLE user_permissions;
DROP TABLE user_roles;
DROP TABLE users;
DROP TABLE role_permissions;
DROP TABLE roles;
DROP TABLE meta;
