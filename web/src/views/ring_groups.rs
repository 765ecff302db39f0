//! Ring group pages: the list and the create / edit form.

use askama::Template;
use serde::Deserialize;

use super::{FormErrors, Layout};

#[derive(Clone, Debug)]
pub struct RingGroupRow {
    pub href: String,
    pub number: String,
    pub name: String,
    pub strategy: &'static str,
    /// "101 Alice, 07400 123456 (outside number)", in ring order.
    pub members: String,
    pub fallback: String,
}

#[derive(Template)]
#[template(path = "ring_groups/list.html")]
pub struct RingGroupsPage {
    pub layout: Layout,
    pub base: String,
    pub rows: Vec<RingGroupRow>,
}

/// The form as typed. `members` is one extension or phone number per line, in ring order.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RingGroupForm {
    /// Only read when creating: a group keeps its number.
    #[serde(default)]
    pub number: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub strategy: String,
    #[serde(default)]
    pub ring_timeout_secs: String,
    #[serde(default)]
    pub member_timeout_secs: String,
    /// An extension or ring group number, or empty.
    #[serde(default)]
    pub fallback: String,
    #[serde(default)]
    pub members: String,
}

/// Create (`id` is `None`) or edit a ring group.
#[derive(Template)]
#[template(path = "ring_groups/form.html")]
pub struct RingGroupPage {
    pub layout: Layout,
    pub base: String,
    pub id: Option<String>,
    pub number: String,
    pub form: RingGroupForm,
    pub errors: FormErrors,
    pub saved: bool,
    /// (value, label) of each strategy.
    pub strategies: Vec<(String, &'static str)>,
    /// The stored members, in ring order, for people.
    pub members: Vec<String>,
    /// Round robin: the member whose turn is next.
    pub next_turn: Option<String>,
}
