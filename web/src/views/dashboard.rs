//! Dashboards: the business admin's landing page.

use askama::Template;

use super::Layout;
use super::charts::Chart;

#[derive(Clone, Debug)]
pub struct BusyRow {
    pub href: String,
    pub number: String,
    pub name: String,
    pub calls: u64,
}

#[derive(Clone, Debug)]
pub struct TrunkStatusRow {
    pub href: String,
    pub name: String,
    pub enabled: bool,
    /// `up`, `down` or `unknown` from the keepalive; `None` without an engine attached.
    pub up: Option<String>,
    /// Health and registration in words (empty: nothing known).
    pub status: String,
}

#[derive(Template)]
#[template(path = "operator/dashboard.html")]
pub struct OperatorDashboard {
    pub layout: Layout,
    pub businesses: u64,
    /// Numbers given to a business, and numbers in the inventory.
    pub numbers_in_use: u64,
    pub numbers_free: u64,
    /// Extensions, across businesses, with a phone holding an unexpired registration.
    pub phones_online: usize,
    pub calls_now: usize,
    pub calls_today: u64,
    pub trunks: Vec<TrunkStatusRow>,
}

#[derive(Template)]
#[template(path = "business/dashboard.html")]
pub struct BusinessDashboard {
    pub layout: Layout,
    pub base: String,
    /// Extensions with a phone holding an unexpired registration.
    pub phones_online: u64,
    /// Extensions without one.
    pub phones_offline: u64,
    pub calls_now: usize,
    /// Today's date (YYYY-MM-DD, UTC).
    pub day: String,
    pub calls_today: u64,
    pub missed_today: u64,
    /// Call history for today, and for today's missed calls.
    pub today_href: String,
    pub missed_href: String,
    pub busiest: Vec<BusyRow>,
    /// Calls per hour today, and answered against missed calls per day over seven days.
    pub hourly: Chart,
    pub weekly: Chart,
}
