//! Inline SVG for the page (90-day uptime bars, response-time sparkline) and shields-style
//! badges. Everything printed goes through [`escape`].

use std::fmt::Write;

use super::escape::escape;
use super::view::{self, DayBar, HourPoint};

/// viewBox units per day slot; the bar takes most of it, the rest is the gap. The SVG stretches
/// to the container's width, so 90 bars fit a 390 px phone as well as a desktop.
const SLOT: f64 = 10.0;
const BAR: f64 = 7.0;
const BARS_HEIGHT: f64 = 32.0;

/// Daily uptime bars with a `<title>` tooltip each; `label` names the target for screen readers.
pub(crate) fn uptime_bars(label: &str, days: &[DayBar]) -> String {
    let width = SLOT * days.len() as f64;
    let (up, probes) = days.iter().fold((0u64, 0u64), |(u, p), d| {
        (u + u64::from(d.up), p + u64::from(d.probes))
    });
    let summary = match view::format_uptime(up, probes) {
        Some(pct) => {
            let with_data = days.iter().filter(|d| d.probes > 0).count();
            let worst = days
                .iter()
                .filter(|d| d.probes > 0)
                .min_by(|a, b| {
                    (u64::from(a.up) * u64::from(b.probes))
                        .cmp(&(u64::from(b.up) * u64::from(a.probes)))
                })
                .filter(|d| d.up < d.probes);
            let mut s = format!(
                "{label}: {pct} uptime over the last {} days ({with_data} with data)",
                days.len()
            );
            if let Some(w) = worst
                && let Some(wp) = view::format_uptime(w.up.into(), w.probes.into())
            {
                let _ = write!(s, "; lowest {wp} on {}", w.day);
            }
            s
        }
        None => format!("{label}: no uptime data in the last {} days", days.len()),
    };
    let mut out = format!(
        "<svg class=\"bars\" viewBox=\"0 0 {width} {BARS_HEIGHT}\" preserveAspectRatio=\"none\" \
         role=\"img\" aria-label=\"{}\">",
        escape(&summary)
    );
    for (i, d) in days.iter().enumerate() {
        let tip = match view::format_uptime(d.up.into(), d.probes.into()) {
            Some(pct) => format!(
                "{}: {pct} uptime ({} of {} checks up)",
                d.day,
                thousands(d.up.into()),
                thousands(d.probes.into())
            ),
            None => format!("{}: no data", d.day),
        };
        let _ = write!(
            out,
            "<rect class=\"{}\" x=\"{}\" width=\"{BAR}\" height=\"{BARS_HEIGHT}\" rx=\"1.5\"><title>{}</title></rect>",
            d.level().css(),
            i as f64 * SLOT + (SLOT - BAR) / 2.0,
            escape(&tip)
        );
    }
    out.push_str("</svg>");
    out
}

/// `1,440`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

const SPARK_W: f64 = 230.0;
const SPARK_H: f64 = 40.0;
const SPARK_PAD: f64 = 4.0;

/// Hourly p50 as a line over a p95 band; hours without successful probes break the line.
/// `None` when no hour has data.
pub(crate) fn sparkline(label: &str, points: &[HourPoint]) -> Option<String> {
    let max = points
        .iter()
        .filter_map(|p| p.p95_ms.or(p.p50_ms))
        .fold(0.0f64, f64::max);
    if points.len() < 2 || !points.iter().any(|p| p.p50_ms.is_some()) {
        return None;
    }
    let top = max.max(1.0) * 1.1;
    let step = SPARK_W / (points.len() - 1) as f64;
    let x = |i: usize| i as f64 * step;
    let y = |ms: f64| SPARK_PAD + (1.0 - (ms / top).clamp(0.0, 1.0)) * (SPARK_H - 2.0 * SPARK_PAD);

    let mut segments: Vec<Vec<(usize, f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (i, p) in points.iter().enumerate() {
        match p.p50_ms {
            Some(p50) => current.push((i, p50, p.p95_ms.unwrap_or(p50).max(p50))),
            None if !current.is_empty() => segments.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        segments.push(current);
    }

    let mut out = format!(
        "<svg class=\"spark\" viewBox=\"0 0 {SPARK_W} {SPARK_H}\" preserveAspectRatio=\"none\" \
         role=\"img\" aria-label=\"{}\">",
        escape(label)
    );
    for seg in &segments {
        // A lone hour gets a short flat stroke so it is visible.
        let widen = |pts: &[(usize, f64, f64)]| -> Vec<(f64, f64, f64)> {
            match pts {
                [(i, p50, p95)] => vec![
                    ((x(*i) - step / 3.0).max(0.0), *p50, *p95),
                    ((x(*i) + step / 3.0).min(SPARK_W), *p50, *p95),
                ],
                _ => pts.iter().map(|(i, a, b)| (x(*i), *a, *b)).collect(),
            }
        };
        let pts = widen(seg);
        let mut band = String::from("M");
        for (px, _, p95) in &pts {
            let _ = write!(band, "{px:.1},{:.1} ", y(*p95));
        }
        for (px, p50, _) in pts.iter().rev() {
            let _ = write!(band, "L{px:.1},{:.1} ", y(*p50));
        }
        band.push('Z');
        let _ = write!(out, "<path class=\"band\" d=\"{band}\"/>");
        let line: Vec<String> = pts
            .iter()
            .map(|(px, p50, _)| format!("{px:.1},{:.1}", y(*p50)))
            .collect();
        let _ = write!(
            out,
            "<polyline class=\"line\" vector-effect=\"non-scaling-stroke\" points=\"{}\"/>",
            line.join(" ")
        );
    }
    // Hover targets: one per hour, with its numbers.
    for (i, p) in points.iter().enumerate() {
        let tip = match (p.p50_ms, p.p95_ms) {
            (Some(a), Some(b)) => format!(
                "{} UTC: median {}, p95 {}",
                p.start.format("%H:%M"),
                view::format_ms(a),
                view::format_ms(b)
            ),
            (Some(a), None) => format!(
                "{} UTC: median {}",
                p.start.format("%H:%M"),
                view::format_ms(a)
            ),
            _ => format!("{} UTC: no successful checks", p.start.format("%H:%M")),
        };
        let _ = write!(
            out,
            "<rect class=\"hit\" x=\"{:.1}\" width=\"{step:.1}\" height=\"{SPARK_H}\"><title>{}</title></rect>",
            (x(i) - step / 2.0).max(0.0),
            escape(&tip)
        );
    }
    out.push_str("</svg>");
    Some(out)
}

/// Advance widths of ASCII 32..=126 in DejaVu Sans at 11 px, in tenths of a pixel (read from the
/// font's hmtx table). DejaVu's metrics follow Verdana's to within a few percent, and each text
/// also carries `textLength`, so any of the listed fonts renders at exactly this width.
const WIDTHS_11PX: [u16; 95] = [
    35, 44, 51, 92, 70, 105, 86, 30, 43, 43, 55, 92, 35, 40, 35, 37, 70, 70, 70, 70, 70, 70, 70,
    70, 70, 70, 37, 37, 92, 92, 92, 58, 110, 75, 75, 77, 85, 70, 63, 85, 83, 32, 32, 72, 61, 95,
    82, 87, 66, 87, 76, 70, 67, 81, 75, 109, 75, 67, 75, 43, 37, 43, 92, 55, 55, 67, 70, 60, 70,
    68, 39, 70, 70, 31, 31, 64, 31, 107, 70, 67, 70, 70, 45, 57, 43, 70, 65, 90, 65, 65, 58, 70,
    37, 70, 92,
];
/// Width of `@` for anything outside ASCII: wide enough for most scripts and symbols.
const WIDE: u16 = 110;

/// Text width at 11 px in tenths of a pixel.
pub(crate) fn text_width(s: &str) -> u32 {
    s.chars()
        .map(|c| {
            let code = c as usize;
            u32::from(match code {
                32..=126 => WIDTHS_11PX[code - 32],
                0..=31 => 0,
                _ => WIDE,
            })
        })
        .sum()
}

/// Shields' brightness rule: dark text on light backgrounds.
fn text_colours(background: &str) -> (&'static str, &'static str) {
    let hex = background.trim_start_matches('#');
    let expand: String = if hex.len() == 3 {
        hex.chars().flat_map(|c| [c, c]).collect()
    } else {
        hex.to_owned()
    };
    let channel = |i: usize| {
        expand
            .get(i..i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .map_or(0.0, f64::from)
    };
    let brightness = (0.299 * channel(0) + 0.587 * channel(2) + 0.114 * channel(4)) / 255.0;
    if brightness > 0.69 {
        ("#333", "#ccc")
    } else {
        ("#fff", "#010101")
    }
}

/// A flat two-tone badge, 20 px high, 5 px padding each side of each text.
pub fn badge(label: &str, message: &str, colour: &str) -> String {
    const PAD: u32 = 50; // tenths of a pixel
    let label_text = text_width(label);
    let message_text = text_width(message);
    let label_w = (label_text + 2 * PAD).div_ceil(10);
    let message_w = (message_text + 2 * PAD).div_ceil(10);
    let width = label_w + message_w;
    let (fg, shadow) = text_colours(colour);
    let (l, m) = (escape(label), escape(message));
    // Text is drawn at 10x and scaled down, as shields does, for sub-pixel placement.
    let label_x = label_w * 5;
    let message_x = label_w * 10 + message_w * 5;
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"20\" role=\"img\" aria-label=\"{l}: {m}\">\
<title>{l}: {m}</title>\
<linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
<clipPath id=\"r\"><rect width=\"{width}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
<g clip-path=\"url(#r)\"><rect width=\"{label_w}\" height=\"20\" fill=\"{grey}\"/><rect x=\"{label_w}\" width=\"{message_w}\" height=\"20\" fill=\"{colour}\"/><rect width=\"{width}\" height=\"20\" fill=\"url(#s)\"/></g>\
<g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" text-rendering=\"geometricPrecision\" font-size=\"110\">\
<text aria-hidden=\"true\" x=\"{label_x}\" y=\"150\" fill=\"#010101\" fill-opacity=\".3\" transform=\"scale(.1)\" textLength=\"{label_text}\">{l}</text>\
<text x=\"{label_x}\" y=\"140\" transform=\"scale(.1)\" fill=\"#fff\" textLength=\"{label_text}\">{l}</text>\
<text aria-hidden=\"true\" x=\"{message_x}\" y=\"150\" fill=\"{shadow}\" fill-opacity=\".3\" transform=\"scale(.1)\" textLength=\"{message_text}\">{m}</text>\
<text x=\"{message_x}\" y=\"140\" transform=\"scale(.1)\" fill=\"{fg}\" textLength=\"{message_text}\">{m}</text>\
</g></svg>",
        colour = escape(colour),
        grey = view::colour::GREY,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone, Utc};

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("not well-formed: {e}\n{svg}"))
    }

    #[test]
    fn text_widths_follow_the_font_table() {
        assert_eq!(text_width(""), 0);
        assert_eq!(text_width("i"), 31);
        assert_eq!(text_width("W"), 109);
        assert_eq!(text_width("uptime"), 70 + 70 + 43 + 31 + 107 + 68);
        assert!(text_width("WWW") > text_width("iii") * 3);
        assert_eq!(text_width("é"), u32::from(WIDE));
    }

    #[test]
    fn badge_is_well_formed_and_sized_from_its_text() {
        let svg = badge("uptime", "99.95%", view::colour::BRIGHT_GREEN);
        let doc = parse(&svg);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("aria-label"), Some("uptime: 99.95%"));
        let rects: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect") && n.attribute("fill") != Some("#fff"))
            .collect();
        let w = |n: &roxmltree::Node| n.attribute("width").unwrap().parse::<u32>().unwrap();
        let (label_w, message_w) = (w(&rects[0]), w(&rects[1]));
        assert_eq!(label_w, (text_width("uptime") + 100).div_ceil(10));
        assert_eq!(message_w, (text_width("99.95%") + 100).div_ceil(10));
        assert_eq!(
            root.attribute("width").unwrap(),
            (label_w + message_w).to_string()
        );
        assert_eq!(rects[1].attribute("fill"), Some("#4c1"));
        let texts: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .map(|n| n.text().unwrap_or(""))
            .collect();
        assert_eq!(texts, ["uptime", "uptime", "99.95%", "99.95%"]);
    }

    #[test]
    fn badge_escapes_and_picks_readable_text() {
        let svg = badge("<b>&\"x'", "ok", "#e8e8e8");
        let doc = parse(&svg);
        let text = doc.descendants().find(|n| n.has_tag_name("text")).unwrap();
        assert_eq!(text.text(), Some("<b>&\"x'"));
        let message = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .nth(3)
            .unwrap();
        assert_eq!(message.attribute("fill"), Some("#333"), "light background");
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn bars_have_one_titled_rect_per_day() {
        let days = vec![
            DayBar {
                day: day(1),
                probes: 1440,
                up: 1440,
            },
            DayBar {
                day: day(2),
                probes: 0,
                up: 0,
            },
            DayBar {
                day: day(3),
                probes: 1000,
                up: 880,
            },
        ];
        let svg = uptime_bars("Web <& API>", &days);
        let doc = parse(&svg);
        let rects: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("rect"))
            .collect();
        assert_eq!(rects.len(), 3);
        let classes: Vec<_> = rects
            .iter()
            .map(|r| r.attribute("class").unwrap())
            .collect();
        assert_eq!(classes, ["u-full", "u-none", "u-bad"]);
        let titles: Vec<_> = rects
            .iter()
            .map(|r| r.first_element_child().unwrap().text().unwrap())
            .collect();
        assert_eq!(
            titles,
            [
                "2026-11-01: 100% uptime (1,440 of 1,440 checks up)",
                "2026-11-02: no data",
                "2026-11-03: 88% uptime (880 of 1,000 checks up)",
            ]
        );
        let label = doc.root_element().attribute("aria-label").unwrap();
        assert!(
            label.starts_with("Web <& API>: 95.08% uptime over the last 3 days (2 with data)"),
            "{label}"
        );
        assert!(label.ends_with("lowest 88% on 2026-11-03"), "{label}");
    }

    #[test]
    fn sparkline_breaks_at_gaps_and_stays_in_its_box() {
        let hour = |h| Utc.with_ymd_and_hms(2026, 11, 22, h, 0, 0).unwrap();
        let mut points: Vec<HourPoint> = (0..6)
            .map(|h| HourPoint {
                start: hour(h),
                p50_ms: Some(50.0 + f64::from(h)),
                p95_ms: Some(120.0),
            })
            .collect();
        points[2].p50_ms = None;
        points[2].p95_ms = None;
        let svg = sparkline("rt", &points).expect("has data");
        let doc = parse(&svg);
        let lines: Vec<_> = doc
            .descendants()
            .filter(|n| n.has_tag_name("polyline"))
            .collect();
        assert_eq!(lines.len(), 2, "one line either side of the gap");
        for line in lines {
            for pair in line.attribute("points").unwrap().split(' ') {
                let (x, y) = pair.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                assert!(
                    (0.0..=SPARK_W).contains(&x) && (0.0..=SPARK_H).contains(&y),
                    "{pair}"
                );
            }
        }
        let hits = doc.descendants().filter(|n| n.has_tag_name("rect")).count();
        assert_eq!(hits, 6);
        assert!(svg.contains("02:00 UTC: no successful checks"));
        let empty: Vec<HourPoint> = (0..3)
            .map(|h| HourPoint {
                start: hour(h),
                p50_ms: None,
                p95_ms: None,
            })
            .collect();
        assert!(sparkline("rt", &empty).is_none());
    }
}
