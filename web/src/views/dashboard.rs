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
