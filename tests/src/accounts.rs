//! The accounts preset: an application account `APP` (with JetStream) and a system account `SYS`,
//! each with one user/password, so tests can send `$SYS.REQ.*` requests the way `admin` does.

/// A user name and password from one of the presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// The user name.
    pub user: &'static str,
    /// The password.
    pub password: &'static str,
}

/// The application user, in account [`APP_ACCOUNT`] (JetStream enabled).
pub const APP_USER: Credentials = Credentials {
    user: "app",
    password: "app-secret",
};

/// The system user, in account [`SYS_ACCOUNT`], the server's `system_account`.
pub const SYS_USER: Credentials = Credentials {
    user: "sys",
    password: "sys-secret",
};

/// The application account's name.
pub const APP_ACCOUNT: &str = "APP";

/// The system account's name.
pub const SYS_ACCOUNT: &str = "SYS";

/// The `accounts { ... }` and `system_account` configuration text of the preset.
pub fn accounts_config() -> String {
    format!(
        "accounts {{\n  \
           {APP_ACCOUNT}: {{ jetstream: enabled, users: [ {{ user: {}, password: {} }} ] }}\n  \
           {SYS_ACCOUNT}: {{ users: [ {{ user: {}, password: {} }} ] }}\n\
         }}\n\
         system_account: {SYS_ACCOUNT}\n",
        APP_USER.user, APP_USER.password, SYS_USER.user, SYS_USER.password
    )
}
