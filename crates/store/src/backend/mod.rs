//! The two backends. Each module defines the dialect-specific pieces (pool options, how a
//! timestamp is bound, how errors are classified) and expands the shared statements from
//! `crate::sql`.

/// Everything the shared statement macros refer to by name.
macro_rules! backend_prelude {
    () => {
        #[allow(unused_imports)]
        use {
            crate::directory::Directory,
            crate::error::{Result, StoreError},
            crate::model::*,
            crate::sql::extensions::{credential_select, extension_cols},
            crate::sql::numbers::{check_range, number_cols, route_fk_field},
            crate::sql::operations::{
                cdr_cols, cdr_list_cols, check_binding, check_trunk, missed_cdr, registration_cols,
                trunk_cols,
            },
            crate::sql::routing::{
                check_name, check_ring_group_settings, ring_group_cols, route_cols, route_from,
            },
            crate::sql::tenants::{tenant_cols, user_cols},
            crate::sql::{
                catalog, corrupt, like_pattern, micros, now, on_conflict, on_fk, parse_col,
                parse_opt, to_i32,
            },
            time::OffsetDateTime,
            uuid::Uuid,
        };
    };
}
pub(crate) use backend_prelude;

mod changes_pg;
mod changes_sqlite;
pub(crate) mod postgres;
pub(crate) mod sqlite;
