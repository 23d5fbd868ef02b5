//! Writing studies to disk: CSV files, plots and a self-contained HTML report.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::EvalError;
use crate::fpr::FprReport;
use crate::plot::{fpr_plot, robustness_plots, video_plots};
use crate::robustness::RobustnessReport;
use crate::video::VideoRobustnessReport;

/// Quotes a CSV field when it needs it (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn write(path: PathBuf, text: &str, written: &mut Vec<PathBuf>) -> Result<(), EvalError> {
    std::fs::write(&path, text).map_err(|e| EvalError::io(&path, e))?;
    written.push(path);
    Ok(())
}

/// The columns of `robustness.csv`.
pub const ROBUSTNESS_COLUMNS: &str = "algorithm,transform,bits,queries,precision_target,threshold_at_precision,recall_at_precision,precision,fpr_target,threshold_at_fpr,recall_at_fpr,fpr,auc,median_distance,mean_distance,median_nearest_negative";

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Writes a robustness study into `dir` (created if missing):
/// `robustness.csv` (one row per algorithm and transform), `distances.csv`
/// (one row per query), `roc.csv`, `hashes.csv`, and unless `plots` is
/// false, PNG and SVG plots and `report.html` with the SVGs inline.
/// Returns the files written.
pub fn write_robustness(report: &RobustnessReport, dir: &Path, plots: bool) -> Result<Vec<PathBuf>, EvalError> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut written = Vec::new();
    let c = &report.config;

    let mut summary = format!("{ROBUSTNESS_COLUMNS}\n");
    for cell in &report.cells {
        let p = cell.at_precision;
        let mut nearest: Vec<u32> = cell.queries.iter().map(|q| q.nearest_negative).collect();
        nearest.sort_unstable();
        let _ = writeln!(
            summary,
            "{},{},{},{},{},{},{},{},{},{},{},{},{:.6},{},{},{}",
            cell.algo,
            csv_field(&cell.transform),
            cell.algo.bits(),
            cell.queries.len(),
            c.precision_target,
            opt(p.map(|p| p.threshold)),
            opt(p.map(|p| p.recall)),
            opt(p.and_then(|p| p.precision)),
            c.fpr_target,
            opt(cell.at_fpr.threshold),
            cell.at_fpr.recall,
            cell.at_fpr.fpr,
            cell.auc,
            opt(cell.positives.median()),
            opt(cell.positives.mean().map(|m| format!("{m:.3}"))),
            opt(nearest.get(nearest.len().saturating_sub(1) / 2)),
        );
    }
    write(dir.join("robustness.csv"), &summary, &mut written)?;

    let mut distances = String::from("algorithm,transform,image,distance,nearest_negative\n");
    for cell in &report.cells {
        for q in &cell.queries {
            let _ = writeln!(
                distances,
                "{},{},{},{},{}",
                cell.algo,
                csv_field(&cell.transform),
                csv_field(&report.images[q.image]),
                q.positive,
                q.nearest_negative
            );
        }
    }
    write(dir.join("distances.csv"), &distances, &mut written)?;

    let mut roc = String::from("algorithm,transform,threshold,tpr,fpr\n");
    for cell in &report.cells {
        for p in &cell.roc {
            let _ = writeln!(roc, "{},{},{},{},{}", cell.algo, csv_field(&cell.transform), p.threshold, p.tpr, p.fpr);
        }
    }
    write(dir.join("roc.csv"), &roc, &mut written)?;

    let mut hashes = String::from("image,transform,algorithm,hash\n");
    for h in &report.hashes {
        let name = csv_field(&h.name);
        for (a, algo) in c.algos.iter().enumerate() {
            let _ = writeln!(hashes, "{name},noop,{algo},{}", hex::encode(&h.original[a]));
            for (t, transform) in c.transforms.iter().enumerate() {
                if let Some(v) = &h.transformed[t] {
                    let _ =
                        writeln!(hashes, "{name},{},{algo},{}", csv_field(&transform.to_string()), hex::encode(&v[a]));
                }
            }
        }
    }
    write(dir.join("hashes.csv"), &hashes, &mut written)?;

    if plots {
        let figures = robustness_plots(report, dir)?;
        for (_, f) in &figures {
            written.push(f.png.clone());
            written.push(f.svg_path.clone());
        }
        write(dir.join("report.html"), &robustness_html(report, &figures), &mut written)?;
    }
    Ok(written)
}

/// The figures (SVG inline), the failures and the end of a report page.
fn end_html(mut h: String, figures: &[(String, crate::plot::Written)], failures: &[(String, String)]) -> String {
    for (title, figure) in figures {
        let _ = write!(h, "<figure><figcaption>{}</figcaption>\n{}\n</figure>\n", html_escape(title), figure.svg);
    }
    if !failures.is_empty() {
        h.push_str("<h2>Failures</h2>\n<ul>\n");
        for (what, why) in failures {
            let _ = writeln!(h, "<li>{}: {}</li>", html_escape(what), html_escape(why));
        }
        h.push_str("</ul>\n");
    }
    h.push_str("</body></html>\n");
    h
}

fn pct(v: f64) -> String {
    format!("{:.2}%", 100.0 * v)
}

fn robustness_html(report: &RobustnessReport, figures: &[(String, crate::plot::Written)]) -> String {
    let c = &report.config;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>frankly eval robustness</title>\n\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}\
         th{{background:#f3f3f3}}td:first-child,td:nth-child(2){{text-align:left}}figure{{margin:1.5em 0}}svg{{max-width:100%;height:auto}}</style>\n\
         </head><body>\n<h1>Perceptual hash robustness</h1>\n<p>{} images, {} transforms, seed {}. Recall at {}% precision follows \
         Thorn's <code>perception</code> benchmark (queries sorted by distance to their original; the threshold is the last before \
         precision, counted against each query's nearest other original, falls under the target). Recall at {} false-positive rate \
         counts every (transformed image, other original) pair as a negative.</p>\n",
        report.images.len(),
        c.transforms.len(),
        c.seed,
        100.0 * c.precision_target,
        c.fpr_target
    );
    h.push_str(
        "<table><tr><th>algorithm</th><th>transform</th><th>recall @ precision</th><th>threshold</th>\
         <th>recall @ FPR</th><th>threshold</th><th>AUC</th><th>median distance</th><th>median nearest other</th></tr>\n",
    );
    for cell in &report.cells {
        let mut nearest: Vec<u32> = cell.queries.iter().map(|q| q.nearest_negative).collect();
        nearest.sort_unstable();
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{}</td><td>{}</td></tr>",
            cell.algo,
            html_escape(&cell.transform),
            cell.at_precision.map(|p| pct(p.recall)).unwrap_or_default(),
            opt(cell.at_precision.map(|p| p.threshold)),
            pct(cell.at_fpr.recall),
            opt(cell.at_fpr.threshold),
            cell.auc,
            opt(cell.positives.median()),
            opt(nearest.get(nearest.len().saturating_sub(1) / 2)),
        );
    }
    h.push_str("</table>\n");
    end_html(h, figures, &report.failures)
}

/// Writes a false-positive study into `dir`: `fpr.csv` (false matches per
/// threshold), `deployment.csv` (from all pairs, and from cross-source pairs
/// only), `by_source.csv` (matches within each source and across sources),
/// `duplicates.csv` (pixel-identical copies left out), `closest_pairs.csv`,
/// and unless `plots` is false a histogram of pairwise distances per
/// algorithm.
pub fn write_fpr(report: &FprReport, dir: &Path, plots: bool) -> Result<Vec<PathBuf>, EvalError> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut written = Vec::new();
    let mut rows = String::from("algorithm,threshold,false_matches,pairs,per_million\n");
    for r in &report.rows {
        let _ = writeln!(rows, "{},{},{},{},{}", r.algo, r.threshold, r.false_matches, r.pairs, r.per_million);
    }
    write(dir.join("fpr.csv"), &rows, &mut written)?;
    let c = &report.config;
    let mut dep = String::from(
        "algorithm,pairs_used,threshold,rate,rate_is_upper_bound,bank_size,images_per_account,per_image,expected_per_account,account_rate_at_k30,target_account_rate,account_threshold\n",
    );
    let all = report.deployments.iter().map(|d| ("all", d));
    let cross = report.cross_source_deployments.iter().map(|d| ("cross-source", d));
    for (used, d) in all.chain(cross) {
        let _ = writeln!(
            dep,
            "{},{used},{},{:e},{},{},{},{:e},{:e},{:e},{:e},{}",
            d.algo,
            d.threshold,
            d.rate,
            d.rate_is_bound,
            c.bank_size,
            c.images_per_account,
            d.per_image,
            d.expected_per_account,
            d.account_rate_at_apple_k,
            c.target_account_rate,
            d.account_threshold
        );
    }
    write(dir.join("deployment.csv"), &dep, &mut written)?;
    let mut by_source = String::from("algorithm,source,images,pairs,matches_at_default_threshold\n");
    for r in &report.sources {
        let source = r.source.as_deref().map_or_else(|| "(across sources)".to_owned(), csv_field);
        let _ = writeln!(by_source, "{},{source},{},{},{}", r.algo, r.images, r.pairs, r.matches);
    }
    write(dir.join("by_source.csv"), &by_source, &mut written)?;
    let mut dups = String::from("left_out,same_pixels_as\n");
    for (copy, kept) in &report.duplicates {
        let _ = writeln!(dups, "{},{}", csv_field(copy), csv_field(kept));
    }
    write(dir.join("duplicates.csv"), &dups, &mut written)?;
    let mut close = String::from("algorithm,image_a,image_b,distance\n");
    for (algo, a, b, d) in &report.closest {
        let _ = writeln!(close, "{algo},{},{},{d}", csv_field(a), csv_field(b));
    }
    write(dir.join("closest_pairs.csv"), &close, &mut written)?;
    if plots {
        for (algo, hist) in &report.histograms {
            let f = fpr_plot(*algo, hist, dir)?;
            written.push(f.png);
            written.push(f.svg_path);
        }
    }
    Ok(written)
}

/// The columns of `video_robustness.csv`.
pub const VIDEO_ROBUSTNESS_COLUMNS: &str = "transform,queries,rule_recall,rule_false_matches,negative_pairs,mean_query_percent,mean_compared_percent,precision_target,threshold_at_precision,recall_at_precision,fpr_target,threshold_at_fpr,recall_at_fpr,fpr,auc,max_nearest_negative_percent";

/// Writes a video study into `dir` (created if missing):
/// `video_robustness.csv` (one row per transform), `video_queries.csv` (one
/// row per copy), `video_roc.csv`, and unless `plots` is false, PNG and SVG
/// plots and `video_report.html`. Returns the files written.
pub fn write_video_robustness(
    report: &VideoRobustnessReport,
    dir: &Path,
    plots: bool,
) -> Result<Vec<PathBuf>, EvalError> {
    std::fs::create_dir_all(dir).map_err(|e| EvalError::io(dir, e))?;
    let mut written = Vec::new();
    let c = &report.config;
    let mut summary = format!("{VIDEO_ROBUSTNESS_COLUMNS}\n");
    for cell in &report.cells {
        let p = cell.at_precision;
        let _ = writeln!(
            summary,
            "{},{},{:.4},{},{},{:.2},{:.2},{},{},{},{},{},{},{},{:.6},{:.2}",
            csv_field(&cell.transform),
            cell.queries.len(),
            cell.rule_recall,
            cell.rule_false_matches,
            cell.negatives.total(),
            cell.mean_query_percent(),
            cell.mean_compared_percent(),
            c.precision_target,
            opt(p.map(|p| 100 - p.threshold)),
            opt(p.map(|p| p.recall)),
            c.fpr_target,
            opt(cell.at_fpr.threshold.map(|t| 100 - t)),
            cell.at_fpr.recall,
            cell.at_fpr.fpr,
            cell.auc,
            cell.max_nearest_negative_percent(),
        );
    }
    write(dir.join("video_robustness.csv"), &summary, &mut written)?;
    let mut queries = String::from(
        "transform,video,source,query_percent,compared_percent,matched,nearest_negative_percent,false_matches\n",
    );
    for cell in &report.cells {
        for q in &cell.queries {
            let _ = writeln!(
                queries,
                "{},{},{},{:.2},{:.2},{},{:.2},{}",
                csv_field(&cell.transform),
                csv_field(&report.videos[q.video]),
                csv_field(&report.sources[q.video]),
                q.query_percent,
                q.compared_percent,
                q.matched,
                q.nearest_negative_percent,
                q.false_matches
            );
        }
    }
    write(dir.join("video_queries.csv"), &queries, &mut written)?;
    let mut roc = String::from("transform,min_query_percent,tpr,fpr\n");
    for cell in &report.cells {
        for p in &cell.roc {
            let _ = writeln!(roc, "{},{},{},{}", csv_field(&cell.transform), 100 - p.threshold, p.tpr, p.fpr);
        }
    }
    write(dir.join("video_roc.csv"), &roc, &mut written)?;
    if plots {
        let figures = video_plots(report, dir)?;
        for (_, f) in &figures {
            written.push(f.png.clone());
            written.push(f.svg_path.clone());
        }
        write(dir.join("video_report.html"), &video_html(report, &figures), &mut written)?;
    }
    Ok(written)
}

fn video_html(report: &VideoRobustnessReport, figures: &[(String, crate::plot::Written)]) -> String {
    let c = &report.config;
    let sources: std::collections::BTreeSet<&String> = report.sources.iter().collect();
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>frankly eval robustness --media video</title>\n\
         <style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ccc;padding:3px 7px;text-align:right}}\
         th{{background:#f3f3f3}}td:first-child{{text-align:left}}figure{{margin:1.5em 0}}svg{{max-width:100%;height:auto}}</style>\n\
         </head><body>\n<h1>vPDQ robustness</h1>\n<p>{} videos from {} sources, {} transforms (made by ffmpeg, kept in <code>{}</code>), \
         copies hashed at one frame every {} s and originals at one every {} s (0: every frame). <em>Matched</em> is vPDQ's rule: frames of quality at least {} match at distance at most {}, \
         and at least {} % of the copy's and {} % of the original's usable frames match. The curves score a copy by the share of its \
         frames found in a video; negatives are the copy against every original of another source.</p>\n",
        report.videos.len(),
        sources.len(),
        c.transforms.len(),
        html_escape(&c.work_dir.display().to_string()),
        c.seconds_per_hash,
        c.bank_seconds_per_hash,
        c.thresholds.quality,
        c.thresholds.distance,
        c.thresholds.min_query_percent,
        c.thresholds.min_compared_percent,
    );
    h.push_str(
        "<table><tr><th>transform</th><th>copies</th><th>matched</th><th>false matches</th><th>mean % of copy found</th>\
         <th>mean % of original found</th><th>recall @ FPR</th><th>min % at FPR</th><th>AUC</th><th>highest % of another source</th></tr>\n",
    );
    for cell in &report.cells {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} of {}</td><td>{:.1}</td><td>{:.1}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.1}</td></tr>",
            html_escape(&cell.transform),
            cell.queries.len(),
            pct(cell.rule_recall),
            cell.rule_false_matches,
            cell.negatives.total(),
            cell.mean_query_percent(),
            cell.mean_compared_percent(),
            pct(cell.at_fpr.recall),
            opt(cell.at_fpr.threshold.map(|t| 100 - t)),
            cell.auc,
            cell.max_nearest_negative_percent(),
        );
    }
    h.push_str("</table>\n");
    end_html(h, figures, &report.failures)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a.jpg"), "a.jpg");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
