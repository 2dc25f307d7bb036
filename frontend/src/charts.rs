//! The report's figures, drawn with plotters into SVG. Each figure also returns its hit areas:
//! one link per element that stands for a set of pairs (a coefficient, a mosaic cell, a
//! histogram bin), placed over the drawing with the chart's own coordinate mapping.

use leptos::prelude::*;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colours used for the same things everywhere (CSS uses the same values).
pub const PRE: RGBColor = RGBColor(0x7a, 0x51, 0x95);
pub const POST: RGBColor = RGBColor(0xef, 0x56, 0x75);
pub const DIFF: RGBColor = RGBColor(0x55, 0x5f, 0x6d);
pub const AGREE: RGBColor = RGBColor(0x3a, 0x86, 0x6b);
pub const DISAGREE: RGBColor = RGBColor(0xd9, 0x6c, 0x3b);
pub const TIE: RGBColor = RGBColor(0xb8, 0xbf, 0xc9);
pub const CHOSEN: RGBColor = RGBColor(0x2f, 0x6d, 0xb5);
pub const REJECTED: RGBColor = RGBColor(0xa0, 0x7a, 0x3c);
const INK: RGBColor = RGBColor(0x1d, 0x24, 0x30);
const GRID: RGBColor = RGBColor(0xdd, 0xe2, 0xea);
const FONT: &str = "sans-serif";

/// A link laid over a chart, in pixels of the chart.
#[derive(Clone, Debug)]
pub struct Hit {
    pub left: i32,
    pub top: i32,
    pub width: i32,
    pub height: i32,
    pub href: String,
    pub title: String,
    /// A stable name for tests and styling (e.g. the feature).
    pub key: String,
}

impl Hit {
    fn around(a: (i32, i32), b: (i32, i32), min: i32, href: String, title: String, key: String) -> Hit {
        let (mut l, mut r) = (a.0.min(b.0), a.0.max(b.0));
        let (mut t, mut bo) = (a.1.min(b.1), a.1.max(b.1));
        if r - l < min {
            let c = (l + r) / 2;
            l = c - min / 2;
            r = c + min / 2;
        }
        if bo - t < min {
            let c = (t + bo) / 2;
            t = c - min / 2;
            bo = c + min / 2;
        }
        Hit { left: l, top: t, width: r - l, height: bo - t, href, title, key }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Chart {
    pub svg: String,
    pub width: u32,
    pub height: u32,
    pub hits: Vec<Hit>,
    /// Set when drawing failed (shown instead of the figure).
    pub error: Option<String>,
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn draw(width: u32, height: u32, f: impl FnOnce(&Area) -> Result<Vec<Hit>, String>) -> Chart {
    let mut svg = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
        let r = root.fill(&WHITE).map_err(|e| e.to_string()).and_then(|_| f(&root));
        root.present().map_err(|e| e.to_string()).and(r)
    };
    match result {
        Ok(hits) => Chart { svg, width, height, hits, error: None },
        Err(e) => Chart { svg: String::new(), width, height, hits: vec![], error: Some(e) },
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn label(root: &Area, text: &str, at: (i32, i32), pos: Pos, size: u32, color: &RGBColor) -> Result<(), String> {
    root.draw(&Text::new(text.to_owned(), at, (FONT, size).into_font().color(color).pos(pos))).map_err(err)
}

/// One point with an interval, in one series of a dot-and-whisker plot.
#[derive(Clone, Debug)]
pub struct Coef {
    pub category: String,
    pub series: usize,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Filled dot when significant, hollow otherwise.
    pub significant: bool,
    pub href: String,
    pub title: String,
}

/// Horizontal dot-and-whisker plot: categories down the side, one dot per series and category,
/// a zero line. `series` gives each series' name and colour; `note` says what a filled dot means.
pub fn coef_plot(width: u32, x_desc: &str, coefs: &[Coef], series: &[(&str, RGBColor)], note: &str) -> Chart {
    let mut cats: Vec<String> = Vec::new();
    for c in coefs {
        if !cats.contains(&c.category) {
            cats.push(c.category.clone());
        }
    }
    let row_h = 14 + 9 * series.len() as u32;
    // Below the axis: a band of two lines, the legend and then the note.
    const BAND: u32 = 40;
    let height = (70 + BAND + row_h * cats.len().max(1) as u32).max(150 + BAND);
    draw(width, height, |root| {
        let finite: Vec<f64> =
            coefs.iter().flat_map(|c| [c.low, c.high, c.estimate]).filter(|v| v.is_finite()).chain([0.0]).collect();
        let (mut lo, mut hi) =
            finite.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(*v), b.max(*v)));
        let pad = ((hi - lo) * 0.06).max(1e-9);
        lo -= pad;
        hi += pad;
        let n = cats.len().max(1) as f64;
        let label_w = (width as f64 * 0.36).min(280.0) as u32;
        let mut chart = ChartBuilder::on(root)
            .margin(10)
            .margin_right(20)
            .margin_bottom(BAND as i32)
            .x_label_area_size(40)
            .y_label_area_size(label_w)
            .build_cartesian_2d(lo..hi, 0f64..n)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .light_line_style(GRID.mix(0.6).stroke_width(1))
            .bold_line_style(GRID.stroke_width(1))
            .x_desc(x_desc)
            .label_style((FONT, 12))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(PathElement::new(vec![(0.0, 0.0), (0.0, n)], INK.stroke_width(1))))
            .map_err(err)?;
        let y_of = |c: &Coef| {
            let k = cats.iter().position(|x| *x == c.category).unwrap_or(0) as f64;
            let s = series.len().max(1) as f64;
            // Top category first; series spread within the row.
            n - k - 0.5 + (c.series as f64 - (s - 1.0) / 2.0) * (0.6 / s)
        };
        let mut hits = Vec::new();
        for c in coefs.iter().filter(|c| c.estimate.is_finite()) {
            let color = series.get(c.series).map_or(DIFF, |s| s.1);
            let y = y_of(c);
            if c.low.is_finite() && c.high.is_finite() {
                chart
                    .draw_series(std::iter::once(ErrorBar::new_horizontal(
                        y,
                        c.low,
                        c.estimate,
                        c.high,
                        color.stroke_width(2),
                        6,
                    )))
                    .map_err(err)?;
            }
            let style = if c.significant { color.filled() } else { WHITE.filled() };
            chart.draw_series(std::iter::once(Circle::new((c.estimate, y), 4, style))).map_err(err)?;
            if !c.significant {
                chart
                    .draw_series(std::iter::once(Circle::new((c.estimate, y), 4, color.stroke_width(2))))
                    .map_err(err)?;
            }
            let (a, b) = (
                chart.backend_coord(&(if c.low.is_finite() { c.low } else { c.estimate }, y)),
                chart.backend_coord(&(if c.high.is_finite() { c.high } else { c.estimate }, y)),
            );
            hits.push(Hit::around(a, b, 12, c.href.clone(), c.title.clone(), format!("{}|{}", c.category, c.series)));
        }
        for (k, cat) in cats.iter().enumerate() {
            let at = chart.backend_coord(&(lo, n - k as f64 - 0.5));
            label(root, cat, (at.0 - 8, at.1), Pos::new(HPos::Right, VPos::Center), 12, &INK)?;
        }
        // Legend, then the note, each on its own line under the axis title.
        let (legend_y, note_y) = (height as i32 - BAND as i32 + 13, height as i32 - 10);
        let mut x = label_w as i32 + 14;
        for (name, color) in series {
            root.draw(&Circle::new((x, legend_y), 4, color.filled())).map_err(err)?;
            label(root, name, (x + 8, legend_y), Pos::new(HPos::Left, VPos::Center), 12, &INK)?;
            x += 16 + 8 * name.chars().count() as i32;
        }
        label(root, note, (label_w as i32 + 8, note_y), Pos::new(HPos::Left, VPos::Center), 11, &DIFF)?;
        Ok(hits)
    })
}

/// One cell of a mosaic: a column (γ group) of relative width, split by stacked shares.
#[derive(Clone, Debug)]
pub struct MosaicColumn {
    pub name: String,
    pub weight: f64,
    /// (label, share within the column, colour, href, count)
    pub cells: Vec<(String, f64, RGBColor, String, u64)>,
}

/// Mosaic plot: column widths ∝ weight, cell heights ∝ share within the column.
pub fn mosaic(width: u32, height: u32, title: &str, cols: &[MosaicColumn]) -> Chart {
    draw(width, height, |root| {
        let total: f64 = cols.iter().map(|c| c.weight).sum::<f64>().max(1e-12);
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 14).into_font().color(&INK))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(10)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(err)?;
        let gap = 0.008;
        let mut x = 0.0;
        let mut hits = Vec::new();
        for col in cols {
            let w = col.weight / total;
            let mut y = 1.0;
            for (name, share, color, href, n) in &col.cells {
                let h = share.max(0.0);
                if h > 0.0 {
                    let (x0, x1, y0, y1) = (x + gap, (x + w - gap).max(x + gap), (y - h).max(0.0), y);
                    chart
                        .draw_series(std::iter::once(Rectangle::new([(x0, y0), (x1, y1)], color.filled())))
                        .map_err(err)?;
                    chart
                        .draw_series(std::iter::once(Rectangle::new([(x0, y0), (x1, y1)], WHITE.stroke_width(1))))
                        .map_err(err)?;
                    let (a, b) = (chart.backend_coord(&(x0, y0)), chart.backend_coord(&(x1, y1)));
                    if (b.1 - a.1).abs() > 14 && (b.0 - a.0).abs() > 40 {
                        label(
                            root,
                            &format!("{:.0} %", share * 100.0),
                            ((a.0 + b.0) / 2, (a.1 + b.1) / 2),
                            Pos::new(HPos::Center, VPos::Center),
                            12,
                            &WHITE,
                        )?;
                    }
                    hits.push(Hit::around(
                        a,
                        b,
                        6,
                        href.clone(),
                        format!("{}, {name}: {n} pairs ({:.1} %)", col.name, share * 100.0),
                        format!("{}|{name}", col.name),
                    ));
                }
                y -= h;
            }
            let at = chart.backend_coord(&(x + w / 2.0, 0.0));
            label(
                root,
                &format!("{} ({:.0} %)", col.name, w * 100.0),
                (at.0, at.1 + 14),
                Pos::new(HPos::Center, VPos::Center),
                12,
                &INK,
            )?;
            x += w;
        }
        Ok(hits)
    })
}

/// Polar histogram of angles (bin edges in radians), wedge area ∝ count. Each bin's count is
/// written outside the circle and links to its pairs (`href(k)`).
pub fn polar(
    size: u32,
    title: &str,
    edges: &[f64],
    counts: &[u64],
    color: RGBColor,
    href: &dyn Fn(usize) -> String,
) -> Chart {
    draw(size, size + 24, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 14).into_font().color(&INK))
            .margin(6)
            .build_cartesian_2d(-1.45f64..1.45f64, -1.45f64..1.45f64)
            .map_err(err)?;
        let circle = |r: f64| {
            (0..=96).map(move |k| {
                let t = k as f64 / 96.0 * std::f64::consts::TAU;
                (r * t.cos(), r * t.sin())
            })
        };
        for r in [0.5, 1.0] {
            chart
                .draw_series(std::iter::once(PathElement::new(circle(r).collect::<Vec<_>>(), GRID.stroke_width(1))))
                .map_err(err)?;
        }
        for deg in [0.0f64, 90.0, 180.0, 270.0] {
            let t = deg.to_radians();
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(0.0, 0.0), (t.cos(), t.sin())],
                    GRID.stroke_width(1),
                )))
                .map_err(err)?;
            let at = chart.backend_coord(&(1.12 * t.cos(), 1.12 * t.sin()));
            // Angles are wrapped to [−180°, 180°): the left axis is both ends.
            let txt = match deg as i32 {
                180 => "±180°".to_owned(),
                d if d > 180 => format!("{}°", d - 360),
                d => format!("{d}°"),
            };
            label(root, &txt, at, Pos::new(HPos::Center, VPos::Center), 10, &DIFF)?;
        }
        let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
        let mut hits = Vec::new();
        for (k, &n) in counts.iter().enumerate() {
            let (a, b) = (edges[k], edges[k + 1]);
            let r = (n as f64 / max).sqrt();
            if n > 0 {
                let mut pts = vec![(0.0, 0.0)];
                for s in 0..=12 {
                    let t = a + (b - a) * s as f64 / 12.0;
                    pts.push((r * t.cos(), r * t.sin()));
                }
                chart.draw_series(std::iter::once(Polygon::new(pts.clone(), color.mix(0.75).filled()))).map_err(err)?;
                chart.draw_series(std::iter::once(PathElement::new(pts, WHITE.stroke_width(1)))).map_err(err)?;
            }
            let mid = (a + b) / 2.0;
            let at = chart.backend_coord(&(1.3 * mid.cos(), 1.3 * mid.sin()));
            label(root, &n.to_string(), at, Pos::new(HPos::Center, VPos::Center), 11, &INK)?;
            let title = format!("{:.1}° to {:.1}°: {n} pairs", a.to_degrees(), b.to_degrees());
            hits.push(Hit::around(at, at, 20, href(k), title, format!("bin{k}")));
        }
        Ok(hits)
    })
}

/// 2-D histogram of (chosen, rejected) scores with the diagonal (below it: the model agrees).
pub fn heatmap(
    size: u32,
    title: &str,
    x_edges: &[f64],
    y_edges: &[f64],
    counts: &[Vec<u64>],
    color: RGBColor,
    href: &dyn Fn(usize, usize) -> String,
) -> Chart {
    draw(size, size, |root| {
        let (x0, x1) = (x_edges[0], *x_edges.last().unwrap_or(&1.0));
        let (y0, y1) = (y_edges[0], *y_edges.last().unwrap_or(&1.0));
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 14).into_font().color(&INK))
            .margin(8)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(x0..x1.max(x0 + 1e-9), y0..y1.max(y0 + 1e-9))
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc("score of chosen")
            .y_desc("score of rejected")
            .label_style((FONT, 11))
            .x_labels(5)
            .y_labels(5)
            .draw()
            .map_err(err)?;
        let max = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
        let mut hits = Vec::new();
        for (i, row) in counts.iter().enumerate() {
            for (j, &n) in row.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let t = (1.0 + n as f64).ln() / (1.0 + max).ln();
                let c = RGBColor(
                    (255.0 - (255.0 - color.0 as f64) * t) as u8,
                    (255.0 - (255.0 - color.1 as f64) * t) as u8,
                    (255.0 - (255.0 - color.2 as f64) * t) as u8,
                );
                let (a, b) = ((x_edges[i], y_edges[j]), (x_edges[i + 1], y_edges[j + 1]));
                chart.draw_series(std::iter::once(Rectangle::new([a, b], c.filled()))).map_err(err)?;
                let title = format!(
                    "chosen {:.3} to {:.3}, rejected {:.3} to {:.3}: {n} pairs",
                    x_edges[i],
                    x_edges[i + 1],
                    y_edges[j],
                    y_edges[j + 1]
                );
                hits.push(Hit::around(
                    chart.backend_coord(&a),
                    chart.backend_coord(&b),
                    4,
                    href(i, j),
                    title,
                    format!("cell{i}_{j}"),
                ));
            }
        }
        let (lo, hi) = (x0.max(y0), x1.min(y1));
        if lo < hi {
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(lo, lo), (hi, hi)], INK.mix(0.6).stroke_width(1))))
                .map_err(err)?;
        }
        Ok(hits)
    })
}

/// A chart with its links laid over it.
#[component]
pub fn ChartView(chart: Chart, id: String) -> impl IntoView {
    if let Some(e) = chart.error {
        return view! { <p class="error">"Could not draw this figure: " {e}</p> }.into_any();
    }
    let style = format!("width:{}px;height:{}px", chart.width, chart.height);
    view! {
        <div class="chart" id=id style=style>
            <div class="svg" inner_html=chart.svg></div>
            {chart
                .hits
                .into_iter()
                .map(|h| {
                    let style = format!("left:{}px;top:{}px;width:{}px;height:{}px", h.left, h.top, h.width, h.height);
                    view! { <a class="hit" href=h.href title=h.title.clone() aria-label=h.title data-key=h.key style=style></a> }
                })
                .collect_view()}
        </div>
    }
    .into_any()
}
