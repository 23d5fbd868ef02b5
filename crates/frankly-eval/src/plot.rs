//! Plots with `plotters`: each drawn once through a generic backend and
//! written as PNG (bitmap backend, encoded with `image`) and as SVG.
//!
//! Text needs a TrueType font, which `plotters` reads through `ab_glyph`:
//! the font is the file named by `$FRANKLY_FONT`, or the first of
//! [`FONT_PATHS`] that exists. It is read once per process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{SegmentValue, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::EvalError;
use crate::algo::HashAlgo;
use crate::metrics::{Histogram, RocPoint};
use crate::robustness::{Cell, RobustnessReport};
use crate::video::VideoRobustnessReport;

/// Environment variable naming the TrueType font of the plots.
pub const FONT_ENV: &str = "FRANKLY_FONT";
/// Where fonts are looked for when `$FRANKLY_FONT` is unset (Debian,
/// Fedora, Arch and macOS locations of DejaVu Sans, Liberation Sans and Arial).
pub const FONT_PATHS: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
    "/Library/Fonts/Arial.ttf",
];
/// Largest font file read, in bytes.
const MAX_FONT_BYTES: u64 = 32 << 20;

/// The font the plots use, once registered with `plotters`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlotFont {
    /// The font file.
    pub path: PathBuf,
}

impl PlotFont {
    /// Finds, reads and registers the font (once per process).
    pub fn load() -> Result<PlotFont, EvalError> {
        static FONT: OnceLock<Result<PlotFont, String>> = OnceLock::new();
        FONT.get_or_init(|| {
            let candidates: Vec<PathBuf> = match std::env::var_os(FONT_ENV) {
                Some(p) => vec![PathBuf::from(p)],
                None => FONT_PATHS.iter().map(PathBuf::from).collect(),
            };
            let path = candidates.into_iter().find(|p| p.is_file()).ok_or_else(|| {
                format!("no TrueType font found: set {FONT_ENV} to a .ttf file (looked in {})", FONT_PATHS.join(", "))
            })?;
            let size = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
            if size > MAX_FONT_BYTES {
                return Err(format!("{}: {size} bytes, over the limit of {MAX_FONT_BYTES}", path.display()));
            }
            let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{}: not a TrueType font", path.display()))?;
            Ok(PlotFont { path })
        })
        .clone()
        .map_err(|message| EvalError::Plot { name: "font".into(), message })
    }
}

/// Width of the plots in pixels.
const WIDTH: u32 = 960;
/// Height of the plots in pixels.
const HEIGHT: u32 = 600;
/// Colours of successive series.
const PALETTE: [RGBColor; 13] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(0, 0, 128),
    RGBColor(128, 64, 0),
    RGBColor(0, 96, 64),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Width of the legend column right of the ROC and recall charts, so the
/// legend never covers a curve or a bar.
const LEGEND_WIDTH: u32 = 140;

/// Splits off the legend column on the right.
fn with_legend_column<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let (width, _) = root.dim_in_pixel();
    root.split_horizontally(width.saturating_sub(LEGEND_WIDTH))
}

/// Draws a legend, one entry per row: a line or a filled box, and the name.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor)],
    lines: bool,
) -> Result<(), String> {
    for (i, (name, c)) in entries.iter().enumerate() {
        let y = 56 + 22 * i as i32;
        if lines {
            area.draw(&PathElement::new(vec![(4, y), (24, y)], c.stroke_width(3))).map_err(err)?;
        } else {
            area.draw(&Rectangle::new([(8, y - 6), (22, y + 6)], c.filled())).map_err(err)?;
        }
        area.draw(&Text::new(name.clone(), (30, y - 8), ("sans-serif", 14).into_font())).map_err(err)?;
    }
    Ok(())
}

/// Something drawable on any backend.
trait Plot {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// A written plot: the two files and the SVG text (for inlining in HTML).
#[derive(Clone, Debug)]
pub(crate) struct Written {
    pub(crate) png: PathBuf,
    pub(crate) svg_path: PathBuf,
    pub(crate) svg: String,
}

fn render<P: Plot>(plot: &P, dir: &Path, stem: &str) -> Result<Written, EvalError> {
    let fail = |message: String| EvalError::Plot { name: stem.to_owned(), message };
    PlotFont::load()?;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        plot.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let mut rgb = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (WIDTH, HEIGHT)).into_drawing_area();
        plot.draw(&root).map_err(fail)?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    let png = dir.join(format!("{stem}.png"));
    let svg_path = dir.join(format!("{stem}.svg"));
    let image = image::RgbImage::from_raw(WIDTH, HEIGHT, rgb).ok_or_else(|| fail("bitmap size".into()))?;
    image.save_with_format(&png, image::ImageFormat::Png).map_err(|e| EvalError::io(&png, std::io::Error::other(e)))?;
    std::fs::write(&svg_path, &svg).map_err(|e| EvalError::io(&svg_path, e))?;
    Ok(Written { png, svg_path, svg })
}

/// ROC curves, one line per transform, FPR on a log axis.
struct RocPlot<'a> {
    title: String,
    /// Per curve: its name, its points, and how many negatives it counts.
    curves: Vec<(String, &'a [RocPoint], u64)>,
}

impl Plot for RocPlot<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let negatives = self.curves.iter().map(|c| c.2).max().unwrap_or(1).max(1);
        // The smallest non-zero FPR is 1 / negatives; zero is drawn half a decade lower.
        let floor = 10f64.powf((0.5 / negatives as f64).log10().floor());
        let (plot_area, legend_area) = with_legend_column(root);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((floor..1.0f64).log_scale(), 0.0f64..1.0)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("false-positive rate (all non-matching pairs)")
            .y_desc("recall")
            .x_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(err)?;
        let mut legend = Vec::new();
        for (i, (name, points, _)) in self.curves.iter().enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(points.iter().map(|p| (p.fpr.max(floor), p.tpr)), c.stroke_width(2)))
                .map_err(err)?;
            legend.push((name.clone(), c));
        }
        draw_legend(&legend_area, &legend, true)
    }
}

/// Recall at the precision target, per transform (groups) and algorithm (bars).
struct RecallPlot<'a> {
    report: &'a RobustnessReport,
}

impl Plot for RecallPlot<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let config = &self.report.config;
        let names: Vec<String> = config.transforms.iter().map(|t| t.to_string()).collect();
        // One slot per algorithm and a gap, per transform; the name sits under the middle slot.
        let slots = config.algos.len() as i32 + 1;
        let total = (names.len() as i32 * slots).max(1);
        let (plot_area, legend_area) = with_legend_column(root);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(
                format!("Recall at {}% precision, per transform", 100.0 * config.precision_target),
                ("sans-serif", 22),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((0..total).into_segmented(), 0.0f64..1.05)
            .map_err(err)?;
        let label = |v: &SegmentValue<i32>| match v {
            SegmentValue::CenterOf(x) if x % slots == (slots - 1) / 2 => {
                names.get((x / slots) as usize).cloned().unwrap_or_default()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(total as usize)
            .y_desc("recall")
            .x_label_style(("sans-serif", 11))
            .x_label_formatter(&label)
            .draw()
            .map_err(err)?;
        let mut legend = Vec::new();
        for (a, &algo) in config.algos.iter().enumerate() {
            let c = color(a);
            let bars = (0..config.transforms.len()).filter_map(|t| {
                let recall = self.report.cell(algo, t)?.at_precision.map(|p| p.recall)?;
                let x = t as i32 * slots + a as i32;
                let mut bar =
                    Rectangle::new([(SegmentValue::Exact(x), 0.0), (SegmentValue::Exact(x + 1), recall)], c.filled());
                bar.set_margin(0, 0, 1, 1);
                Some(bar)
            });
            chart.draw_series(bars).map_err(err)?;
            legend.push((algo.name().to_owned(), c));
        }
        draw_legend(&legend_area, &legend, false)
    }
}

/// Normalised histograms of two distance distributions of one algorithm.
pub(crate) struct HistogramPlot<'a> {
    pub(crate) title: String,
    pub(crate) x_desc: &'static str,
    pub(crate) bits: u32,
    pub(crate) series: Vec<(&'a str, &'a Histogram)>,
    pub(crate) log_y: bool,
}

impl Plot for HistogramPlot<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        let fractions: Vec<Vec<f64>> = self
            .series
            .iter()
            .map(|(_, h)| {
                let total = h.total().max(1) as f64;
                h.counts.iter().map(|&c| c as f64 / total).collect()
            })
            .collect();
        let top = fractions.iter().flatten().copied().fold(0.0f64, f64::max).max(1e-9) * 1.1;
        let smallest = fractions.iter().flatten().copied().filter(|&f| f > 0.0).fold(1.0f64, f64::min);
        let floor = 10f64.powf(smallest.log10().floor());
        let x_range = -0.5f64..f64::from(self.bits) + 0.5;
        let mut builder = ChartBuilder::on(root);
        builder.caption(&self.title, ("sans-serif", 22)).margin(12).x_label_area_size(40).y_label_area_size(60);
        let named: Vec<(&str, &Vec<f64>)> = self.series.iter().map(|(n, _)| *n).zip(&fractions).collect();
        if self.log_y {
            let mut chart = builder.build_cartesian_2d(x_range, (floor..1.0f64).log_scale()).map_err(err)?;
            draw_bars(&mut chart, &named, floor, self.x_desc)
        } else {
            let mut chart = builder.build_cartesian_2d(x_range, 0.0f64..top).map_err(err)?;
            draw_bars(&mut chart, &named, 0.0, self.x_desc)
        }
    }
}

fn draw_bars<'a, DB: DrawingBackend + 'a, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    series: &[(&str, &Vec<f64>)],
    base: f64,
    x_desc: &str,
) -> Result<(), String> {
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc("fraction of pairs")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    for (s, (name, fractions)) in series.iter().enumerate() {
        let c = color(s);
        let bars =
            fractions.iter().enumerate().filter(|(_, f)| **f > 0.0).map(move |(d, &f)| {
                Rectangle::new([(d as f64 - 0.5, base), (d as f64 + 0.5, f)], c.mix(0.55).filled())
            });
        chart
            .draw_series(bars)
            .map_err(err)?
            .label(name.to_string())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(err)
}

/// The x axis of distance histograms of hashes.
const HAMMING: &str = "Hamming distance (bits)";

/// Writes the plots of a video study into `dir`: `video_roc` and
/// `video_histogram`, each as PNG and SVG.
pub(crate) fn video_plots(report: &VideoRobustnessReport, dir: &Path) -> Result<Vec<(String, Written)>, EvalError> {
    let roc = RocPlot {
        title: "ROC: vPDQ, scored by the share of the copy's frames found".to_owned(),
        curves: report.cells.iter().map(|c| (c.transform.clone(), c.roc.as_slice(), c.negatives.total())).collect(),
    };
    let mut matches = Histogram::new(100);
    let mut non_matches = Histogram::new(100);
    for c in &report.cells {
        matches.merge(&c.positives);
        non_matches.merge(&c.negatives);
    }
    let hist = HistogramPlot {
        title: "vPDQ: copy vs own original, and vs other sources".to_owned(),
        x_desc: "100 - % of the copy's frames found in the video",
        bits: 100,
        series: vec![("own original (all transforms)", &matches), ("other sources", &non_matches)],
        log_y: false,
    };
    Ok(vec![
        ("ROC, vPDQ".to_owned(), render(&roc, dir, "video_roc")?),
        ("Match percentages, vPDQ".to_owned(), render(&hist, dir, "video_histogram")?),
    ])
}

/// Writes the plots of a robustness study into `dir`: `roc_ALGO`,
/// `recall`, `histogram_ALGO`, each as PNG and SVG.
pub(crate) fn robustness_plots(report: &RobustnessReport, dir: &Path) -> Result<Vec<(String, Written)>, EvalError> {
    let mut out = Vec::new();
    out.push(("Recall per transform".to_owned(), render(&RecallPlot { report }, dir, "recall")?));
    for (a, &algo) in report.config.algos.iter().enumerate() {
        let cells: Vec<&Cell> =
            report.cells.iter().skip(a * report.config.transforms.len()).take(report.config.transforms.len()).collect();
        let mut matches = Histogram::new(algo.bits());
        let mut non_matches = Histogram::new(algo.bits());
        for c in &cells {
            matches.merge(&c.positives);
            non_matches.merge(&c.negatives);
        }
        let roc = RocPlot {
            title: format!("ROC: {algo} ({} bits)", algo.bits()),
            curves: cells.iter().map(|c| (c.transform.clone(), c.roc.as_slice(), c.negatives.total())).collect(),
        };
        out.push((format!("ROC, {algo}"), render(&roc, dir, &format!("roc_{algo}"))?));
        let hist = HistogramPlot {
            title: format!("Distances, {algo}: transformed copy vs own original, and vs other originals"),
            x_desc: HAMMING,
            bits: algo.bits(),
            series: vec![("matches (all transforms)", &matches), ("non-matches", &non_matches)],
            log_y: false,
        };
        out.push((format!("Distance histogram, {algo}"), render(&hist, dir, &format!("histogram_{algo}"))?));
    }
    Ok(out)
}

/// Writes the histogram of pairwise distances of one algorithm (log scale).
pub(crate) fn fpr_plot(algo: HashAlgo, pairs: &Histogram, dir: &Path) -> Result<Written, EvalError> {
    let plot = HistogramPlot {
        title: format!("Pairwise distances of distinct images, {algo}"),
        x_desc: HAMMING,
        bits: algo.bits(),
        series: vec![("distinct pairs", pairs)],
        log_y: true,
    };
    render(&plot, dir, &format!("pairs_{algo}"))
}
