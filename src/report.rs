//! `molteniron report --html`: the pool as one self-contained HTML page (inline CSS and SVG, no script,
//! no external asset) that cron can drop into any web root. A pure function of what the store read:
//! the pools by state, the line, the nodes out of service and why, and the period's utilization per
//! pool, waits by request size and failed jobs per node as bar charts. Every text from the database is
//! escaped; no credential is ever read, so none can be shown.

use std::fmt::Write;

use chrono::{DateTime, Utc};

use crate::domain::NodeState;
use crate::domain::short_duration;
use crate::store::health::Usage;
use crate::store::metrics::PoolMetrics;
use crate::store::queue::Entry;
use crate::store::report::{OutOfService, WaitsBySize};

/// Everything the page shows, read in one snapshot.
#[derive(Debug)]
pub struct Report {
    pub generated_at: DateTime<Utc>,
    /// The period of the charts, in seconds up to `generated_at`.
    pub since_secs: f64,
    pub pools: Vec<PoolMetrics>,
    pub line: Vec<Entry>,
    pub out_of_service: Vec<OutOfService>,
    pub usage: Vec<Usage>,
    pub waits: Vec<WaitsBySize>,
}

/// How many nodes the failures chart shows at most (those with the most failed jobs).
const FAILING_NODES: usize = 20;

const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fff}\
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em}\
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.muted{color:#777}\
.ready{fill:#2e7d32}.allocated{fill:#1565c0}.dirty{fill:#ef6c00}.maintenance{fill:#c62828}\
.bar{fill:#1565c0}.bar2{fill:#90caf9}.fail{fill:#c62828}svg text{font:12px system-ui,sans-serif}";

/// The page.
pub fn html(report: &Report) -> String {
    let mut page = String::new();
    let generated = report.generated_at.format("%Y-%m-%d %H:%M:%S UTC");
    let period = period(report.since_secs as u64);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>molteniron pool report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <h1>molteniron pool report</h1>\n\
         <p class=\"muted\">Generated {generated}; charts cover the last {period}.</p>\n"
    );
    pools_section(&mut page, &report.pools);
    line_section(&mut page, &report.line, report.generated_at);
    out_of_service_section(&mut page, &report.out_of_service, report.generated_at);
    charts_section(&mut page, report, &period);
    page.push_str("</body>\n</html>\n");
    page
}

/// Text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

fn pools_section(page: &mut String, pools: &[PoolMetrics]) {
    page.push_str("<h2 id=\"pools\">Pools</h2>\n");
    let named: Vec<(&str, &PoolMetrics)> = pools
        .iter()
        .filter_map(|p| Some((p.pool.as_deref()?, p)))
        .collect();
    if named.is_empty() {
        page.push_str("<p>No nodes yet.</p>\n");
        return;
    }
    page.push_str("<table>\n<tr><th>pool</th>");
    for state in NodeState::ALL {
        let _ = write!(page, "<th class=\"n\">{state}</th>");
    }
    page.push_str(
        "<th class=\"n\">total</th><th class=\"n\">expired leases</th>\
         <th class=\"n\">waiting</th><th>by state</th></tr>\n",
    );
    for (name, p) in &named {
        let total: i64 = NodeState::ALL.iter().map(|&s| p.nodes(s)).sum();
        let _ = write!(page, "<tr><td>{}</td>", escape(name));
        for &state in NodeState::ALL {
            let _ = write!(page, "<td class=\"n\">{}</td>", p.nodes(state));
        }
        let _ = writeln!(
            page,
            "<td class=\"n\">{total}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            p.expired_leases,
            p.waiting_requests,
            state_bar(p, total)
        );
    }
    page.push_str("</table>\n");
    if let Some(any) = pools
        .iter()
        .find(|p| p.pool.is_none() && p.waiting_requests > 0)
    {
        let _ = writeln!(
            page,
            "<p>{} request(s) wait for a node of any pool.</p>",
            any.waiting_requests
        );
    }
}

/// One pool's nodes as a stacked bar, a segment per state.
fn state_bar(p: &PoolMetrics, total: i64) -> String {
    const WIDTH: f64 = 240.0;
    let mut svg =
        format!("<svg width=\"{WIDTH}\" height=\"14\" role=\"img\" aria-label=\"nodes by state\">");
    let mut x = 0.0;
    for &state in NodeState::ALL {
        let n = p.nodes(state);
        if n == 0 || total == 0 {
            continue;
        }
        let w = WIDTH * n as f64 / total as f64;
        let _ = write!(
            svg,
            "<rect class=\"{state}\" x=\"{x:.1}\" y=\"0\" width=\"{w:.1}\" height=\"14\"><title>{state}: {n}</title></rect>"
        );
        x += w;
    }
    svg.push_str("</svg>");
    svg
}

fn line_section(page: &mut String, line: &[Entry], now: DateTime<Utc>) {
    page.push_str("<h2 id=\"line\">Waiting in line</h2>\n");
    if line.is_empty() {
        page.push_str("<p>Nobody waits.</p>\n");
        return;
    }
    page.push_str(
        "<table>\n<tr><th class=\"n\">position</th><th>owner</th><th class=\"n\">nodes</th>\
         <th>request</th><th class=\"n\">priority</th><th class=\"n\">waiting for</th>\
         <th class=\"n\">usable ready</th><th class=\"n\">usable allocated</th></tr>\n",
    );
    for e in line {
        let waited = (now - e.enqueued_at).num_seconds().max(0);
        let _ = writeln!(
            page,
            "<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td>\
             <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
            e.position,
            escape(&e.owner),
            e.count,
            escape(&e.request.to_string()),
            e.priority,
            short_duration(waited),
            e.ready,
            e.allocated
        );
    }
    page.push_str("</table>\n");
}

fn out_of_service_section(page: &mut String, nodes: &[OutOfService], now: DateTime<Utc>) {
    page.push_str("<h2 id=\"out-of-service\">Out of service</h2>\n");
    if nodes.is_empty() {
        page.push_str("<p>Every node is in service.</p>\n");
        return;
    }
    page.push_str(
        "<table>\n<tr><th>node</th><th>pool</th><th>state</th><th>by</th><th>reason</th>\
         <th class=\"n\">for</th></tr>\n",
    );
    for n in nodes {
        let by = n.maintenance_by.map(|b| b.to_string()).unwrap_or_default();
        let reason = n.maintenance_reason.as_deref().unwrap_or(match n.state {
            NodeState::Dirty => "released dirty: waiting for molteniron clean",
            _ => "",
        });
        let _ = writeln!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td></tr>",
            escape(&n.name),
            escape(&n.pool),
            n.state,
            escape(&by),
            escape(reason),
            short_duration((now - n.updated_at).num_seconds().max(0))
        );
    }
    page.push_str("</table>\n");
}

fn charts_section(page: &mut String, report: &Report, period: &str) {
    let _ = writeln!(page, "<h2 id=\"charts\">The last {period}</h2>");
    let pools: Vec<&Usage> = report.usage.iter().filter(|u| u.node.is_none()).collect();
    let busy: Vec<Bar> = pools
        .iter()
        .map(|u| Bar {
            label: u.pool.clone(),
            value: u.busy_pct,
            second: None,
            text: format!("{:.1} % ({} allocations)", u.busy_pct, u.allocations),
        })
        .collect();
    chart(
        page,
        "Utilization per pool (busy %)",
        &busy,
        Some(100.0),
        "bar",
    );
    let waits: Vec<Bar> = report
        .waits
        .iter()
        .map(|w| Bar {
            label: format!("{} node(s)", w.size),
            value: w.p95_secs,
            second: Some(w.p50_secs),
            text: format!(
                "p50 {}, p95 {}, max {} ({} requests)",
                secs(w.p50_secs),
                secs(w.p95_secs),
                secs(w.max_secs),
                w.requests
            ),
        })
        .collect();
    chart(
        page,
        "Waits in line by request size (p95, p50 lighter)",
        &waits,
        None,
        "bar",
    );
    let mut failing: Vec<&Usage> = report
        .usage
        .iter()
        .filter(|u| u.node.is_some() && u.jobs_failed > 0)
        .collect();
    failing.sort_by(|a, b| b.jobs_failed.cmp(&a.jobs_failed).then(a.node.cmp(&b.node)));
    let failures: Vec<Bar> = failing
        .iter()
        .take(FAILING_NODES)
        .map(|u| Bar {
            label: u.node.clone().unwrap_or_default(),
            value: u.jobs_failed as f64,
            second: None,
            text: format!(
                "{} of {} reported jobs failed ({}), {} quarantine(s)",
                u.jobs_failed, u.jobs_reported, u.pool, u.quarantines
            ),
        })
        .collect();
    chart(
        page,
        "Failed jobs per node (release --failed)",
        &failures,
        None,
        "fail",
    );
}

struct Bar {
    label: String,
    value: f64,
    /// A second, lighter bar drawn over the first (a median over a p95).
    second: Option<f64>,
    text: String,
}

/// A horizontal bar chart as inline SVG, or a line saying there is nothing to draw.
fn chart(page: &mut String, title: &str, bars: &[Bar], max: Option<f64>, class: &str) {
    let _ = writeln!(page, "<h3>{}</h3>", escape(title));
    if bars.is_empty() {
        page.push_str("<p class=\"muted\">Nothing in this period.</p>\n");
        return;
    }
    const LABEL: f64 = 160.0;
    const WIDTH: f64 = 360.0;
    const ROW: f64 = 22.0;
    let top = max
        .unwrap_or_else(|| bars.iter().map(|b| b.value).fold(0.0, f64::max))
        .max(f64::MIN_POSITIVE);
    let height = ROW * bars.len() as f64;
    let _ = writeln!(
        page,
        "<svg width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"{}\">",
        LABEL + WIDTH + 320.0,
        escape(title)
    );
    for (i, bar) in bars.iter().enumerate() {
        let y = ROW * i as f64;
        let w = (WIDTH * bar.value / top).clamp(0.0, WIDTH);
        let _ = writeln!(
            page,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect class=\"{class}\" x=\"{LABEL}\" y=\"{:.1}\" width=\"{w:.1}\" height=\"{:.1}\"></rect>",
            y + 15.0,
            escape(&bar.label),
            y + 3.0,
            ROW - 6.0
        );
        if let Some(second) = bar.second {
            let w2 = (WIDTH * second / top).clamp(0.0, WIDTH);
            let _ = writeln!(
                page,
                "<rect class=\"bar2\" x=\"{LABEL}\" y=\"{:.1}\" width=\"{w2:.1}\" height=\"{:.1}\"></rect>",
                y + 3.0,
                ROW - 6.0
            );
        }
        let _ = writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            LABEL + w + 6.0,
            y + 15.0,
            escape(&bar.text)
        );
    }
    page.push_str("</svg>\n");
}

/// The charts' period for people: `7 days`, `1 day`, `12 hours`, else humantime's `1h 30m`.
fn period(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => plural(s / 86_400, "day"),
        s if s % 3600 == 0 => plural(s / 3600, "hour"),
        s => humantime::format_duration(std::time::Duration::from_secs(s)).to_string(),
    }
}

/// Seconds for people: `0.4s`, `45s`, `30m`.
fn secs(s: f64) -> String {
    if s < 10.0 {
        format!("{s:.1}s")
    } else {
        short_duration(s as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup_and_no_control_character() {
        assert_eq!(
            escape("<b a=\"x\">&'\u{1b}"),
            "&lt;b a=&quot;x&quot;&gt;&amp;&#39;\u{fffd}"
        );
    }

    #[test]
    fn an_empty_pool_is_a_page_that_says_so() {
        let page = html(&Report {
            generated_at: Utc::now(),
            since_secs: 7.0 * 86400.0,
            pools: Vec::new(),
            line: Vec::new(),
            out_of_service: Vec::new(),
            usage: Vec::new(),
            waits: Vec::new(),
        });
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("No nodes yet."));
        assert!(page.contains("charts cover the last 7 days"));
        assert!(!page.contains("<script"));
    }
}
