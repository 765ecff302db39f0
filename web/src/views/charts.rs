//! Small bar charts drawn on the server as SVG: no script, no library. Each chart names
//! itself with `<title>` and `<desc>`, and its numbers are also in a table that only screen
//! readers see.

/// The SVG's drawing box.
pub const WIDTH: u32 = 600;
pub const HEIGHT: u32 = 200;
const LEFT: u32 = 34;
const TOP: u32 = 10;
/// Room under the plot for the group labels.
const BOTTOM: u32 = 24;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
    /// Which series (colour): `s0`, `s1`, ...
    pub class: String,
    /// What a pointer over the bar says: "09:00: 4 calls".
    pub tip: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label {
    pub x: u32,
    pub text: String,
}

#[derive(Clone, Debug)]
pub struct Chart {
    /// Prefix of the element ids (`{id}-title`, `{id}-desc`).
    pub id: String,
    pub title: String,
    pub desc: String,
    pub width: u32,
    pub height: u32,
    /// The plot's left edge, top and baseline.
    pub left: u32,
    pub top: u32,
    pub base: u32,
    /// The largest value, written at the top of the axis.
    pub max: u64,
    /// What a group is ("Hour", "Day"): the table's first column.
    pub group: String,
    /// One name per series, for the legend and the table's columns.
    pub series: Vec<String>,
    pub bars: Vec<Bar>,
    pub labels: Vec<Label>,
    /// The numbers: one row per group (label, one value per series).
    pub rows: Vec<(String, Vec<u64>)>,
}

impl Chart {
    /// Grouped bars: one group per row, one bar per series in each. Only every `label_every`-th
    /// group is labelled under the axis (all of them are in the table). `unit` names one thing
    /// counted ("call").
    pub fn grouped(
        id: &str,
        title: &str,
        group: &str,
        series: &[&str],
        rows: Vec<(String, Vec<u64>)>,
        label_every: usize,
        unit: &str,
    ) -> Chart {
        let max = rows
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .max()
            .unwrap_or(0);
        let base = HEIGHT - BOTTOM;
        let plot_h = base - TOP;
        let plot_w = WIDTH - LEFT;
        let groups = rows.len().max(1) as u32;
        let group_w = plot_w / groups;
        let n = series.len().max(1) as u32;
        let bar_w = (group_w * 4 / 5 / n).max(1);
        let pad = (group_w - bar_w * n) / 2;
        let mut bars = Vec::new();
        let mut labels = Vec::new();
        for (g, (label, values)) in rows.iter().enumerate() {
            let gx = LEFT + g as u32 * group_w;
            for (s, &v) in values.iter().enumerate() {
                // A bar's height is its share of the largest value; a zero is a hairline-free gap.
                let h = if max == 0 {
                    0
                } else {
                    (v * u64::from(plot_h)).div_ceil(max) as u32
                };
                let what = if series.len() > 1 {
                    format!("{} ", series[s].to_lowercase())
                } else {
                    String::new()
                };
                bars.push(Bar {
                    x: gx + pad + s as u32 * bar_w,
                    y: base - h,
                    w: bar_w,
                    h,
                    class: format!("s{s}"),
                    tip: format!("{label}: {v} {what}{}", plural(v, unit)),
                });
            }
            if g % label_every.max(1) == 0 {
                labels.push(Label {
                    x: gx + group_w / 2,
                    text: label.clone(),
                });
            }
        }
        let total: u64 = rows.iter().flat_map(|(_, v)| v.iter()).sum();
        let desc = match rows.iter().max_by_key(|(_, v)| v.iter().sum::<u64>()) {
            Some((label, v)) if total > 0 => format!(
                "{total} {} in all; the most, {}, at {label}.",
                plural(total, unit),
                v.iter().sum::<u64>()
            ),
            _ => format!("No {}.", plural(0, unit)),
        };
        Chart {
            id: id.to_owned(),
            title: title.to_owned(),
            desc,
            width: WIDTH,
            height: HEIGHT,
            left: LEFT,
            top: TOP,
            base,
            max,
            group: group.to_owned(),
            series: series.iter().map(|s| (*s).to_owned()).collect(),
            bars,
            labels,
            rows,
        }
    }

    pub fn label_y(&self) -> u32 {
        self.base + 16
    }
}

fn plural(n: u64, unit: &str) -> String {
    if n == 1 {
        unit.to_owned()
    } else {
        format!("{unit}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_value() {
        let rows = vec![
            ("a".into(), vec![4, 0]),
            ("b".into(), vec![2, 1]),
            ("c".into(), vec![0, 0]),
        ];
        let c = Chart::grouped("x", "T", "Day", &["Answered", "Missed"], rows, 2, "call");
        assert_eq!(c.max, 4);
        assert_eq!(c.bars.len(), 6);
        let full = c.base - c.top;
        assert_eq!(c.bars[0].h, full);
        assert_eq!(c.bars[0].y, c.top);
        assert_eq!(c.bars[2].h, full / 2);
        assert_eq!(c.bars[1].h, 0);
        assert_eq!(c.bars[3].tip, "b: 1 missed call");
        assert_eq!(c.bars[2].tip, "b: 2 answered calls");
        assert!(c.bars.iter().all(|b| b.x + b.w <= c.width));
        assert_eq!(c.labels.len(), 2, "every second group");
        assert_eq!(c.desc, "7 calls in all; the most, 4, at a.");
        let empty = Chart::grouped(
            "y",
            "T",
            "Hour",
            &["Calls"],
            vec![("a".into(), vec![0])],
            1,
            "call",
        );
        assert_eq!(empty.desc, "No calls.");
        assert_eq!(empty.bars[0].h, 0);
    }
}
