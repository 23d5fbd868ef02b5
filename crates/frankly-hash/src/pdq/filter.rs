//! The Jarosz tent filter and 64x64 decimation, bit-exact with Meta's C++.
//!
//! The reference (`downscaling.cpp`) blurs the whole luma plane with two passes
//! of a 1-D running-sum box filter along rows and then along columns, and finally
//! samples 64x64 cell centres. It runs every 1-D box on one row or column at a
//! time, so the sum it carries is a serial chain of dependent float additions,
//! and its column passes walk memory with a stride of one row.
//!
//! Identical bits require every output to come from exactly the same sequence of
//! f32 operations as in the reference. What we are free to change is *which
//! independent sequences run side by side*:
//!
//! * Row passes run [`LANES`] rows at once: a strip of rows is transposed into
//!   a `[f32; LANES]` per column, so each step of the running sum is one short
//!   vector operation and the chains of the different rows overlap.
//! * Column passes run all columns at once: the running sum is a row-wide
//!   accumulator that adds and subtracts whole rows, which the compiler vectorizes.
//! * Only 64x64 values survive decimation, so the second pass divides only where a
//!   sampled value is needed (the running sums still see every input, in order),
//!   and the second column pass runs on the 64 sampled columns alone.
//! * The first column pass streams its output rows straight into the second row
//!   pass, strip by strip, so that plane never goes back to memory.
//!
//! Every sum keeps the reference's order of additions and subtractions, and every
//! division is the same `sum / count`, so the result is the same bits.

/// Rows processed side by side in the row passes.
pub(super) const LANES: usize = 16;

/// The 64x64 output of the downsampler.
pub(super) type Grid64 = [[f32; 64]; 64];

/// One step of the reference 1-D box filter (`box1DFloat`): add the input at
/// `add`, then subtract the input at `sub`, then write `sum / count` to `out`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Step {
    add: Option<usize>,
    sub: Option<usize>,
    out: Option<(usize, f32)>,
}

/// The reference window size for a dimension: `ceil(dim / 128)`, i.e.
/// `(old + 2 * 64 - 1) / (2 * 64)` in `computeJaroszFilterWindowSize`.
pub(super) fn window_size(dim: usize) -> usize {
    dim.div_ceil(128)
}

/// The reference's four phases of the running-sum box filter over `len` inputs
/// with a window of `window` (asymmetric for even windows, shrinking at the edges).
fn schedule(len: usize, window: usize) -> impl Iterator<Item = Step> {
    debug_assert!(window >= 1 && window <= len);
    let half = (window + 2) / 2;
    let p1 = half - 1;
    let p2 = window - half + 1;
    let p3 = len.saturating_sub(window);
    let p4 = half - 1;
    let phase1 = (0..p1).map(|i| Step { add: Some(i), sub: None, out: None });
    let phase2 = (0..p2).map(move |i| Step { add: Some(p1 + i), sub: None, out: Some((i, (p1 + i + 1) as f32)) });
    let phase3 = (0..p3).map(move |i| Step { add: Some(window + i), sub: Some(i), out: Some((p2 + i, window as f32)) });
    let phase4 =
        (0..p4).map(move |i| Step { add: None, sub: Some(p3 + i), out: Some((p2 + p3 + i, (window - 1 - i) as f32)) });
    phase1.chain(phase2).chain(phase3).chain(phase4)
}

/// The 1-D box filter over `input.len()` positions for `L` independent lanes.
/// `emit(position, sums, count)` receives each output's running sums.
#[inline(always)]
fn box_lanes<const L: usize>(input: &[[f32; L]], window: usize, mut emit: impl FnMut(usize, &[f32; L], f32)) {
    let mut sum = [0f32; L];
    for step in schedule(input.len(), window) {
        if let Some(a) = step.add {
            let x = &input[a];
            for k in 0..L {
                sum[k] += x[k];
            }
        }
        if let Some(s) = step.sub {
            let x = &input[s];
            for k in 0..L {
                sum[k] -= x[k];
            }
        }
        if let Some((o, count)) = step.out {
            emit(o, &sum, count);
        }
    }
}

/// Cell-centre sample indices: `floor((i + 0.5) * dim / 64)`, computed in f64 as
/// the reference does. Non-decreasing; repeats when `dim < 64`.
pub(super) fn sample_indices(dim: usize) -> [usize; 64] {
    std::array::from_fn(|i| (((i as f64 + 0.5) * dim as f64) / 64.0) as usize)
}

/// Calls `f(j)` for every sample index `j` whose source position is `o`,
/// advancing `next` through the non-decreasing `samples`.
#[inline(always)]
fn for_samples_at(samples: &[usize; 64], next: &mut usize, o: usize, mut f: impl FnMut(usize)) {
    while *next < 64 && samples[*next] == o {
        f(*next);
        *next += 1;
    }
}

/// Reusable buffers for [`downsample`], sized for the largest image seen.
#[derive(Default)]
pub(super) struct Scratch {
    /// Output of the first row pass, `height x width`, row-major.
    rows: Vec<f32>,
    /// A transposed strip of `LANES` rows: one `[f32; LANES]` per column.
    strip_in: Vec<[f32; LANES]>,
    strip_out: Vec<[f32; LANES]>,
    /// Running column sums of the first column pass, one per column.
    acc: Vec<f32>,
    /// `LANES` output rows of the first column pass, row-major.
    vrows: Vec<f32>,
    /// Second row pass at the 64 sampled columns, one entry per image row.
    sampled: Vec<[f32; 64]>,
}

fn resize<T: Copy>(v: &mut Vec<T>, len: usize, fill: T) {
    v.clear();
    v.resize(len, fill);
}

/// Blurs an image given as a luma function of (row, strip of columns) and
/// decimates to 64x64, exactly as `jaroszFilterFloat` + `decimateFloat` with two
/// passes.
///
/// `fill_luma(row, out)` writes the luma of image row `row` into `out`
/// (`width` values).
pub(super) fn downsample(
    scratch: &mut Scratch,
    height: usize,
    width: usize,
    mut fill_luma: impl FnMut(usize, &mut [f32]),
    out: &mut Grid64,
) {
    let win_x = window_size(width);
    let win_y = window_size(height);
    let sample_cols = sample_indices(width);
    let sample_rows = sample_indices(height);

    resize(&mut scratch.rows, height * width, 0.0);
    resize(&mut scratch.strip_in, width, [0.0; LANES]);
    resize(&mut scratch.strip_out, width, [0.0; LANES]);
    resize(&mut scratch.acc, width, 0.0);
    resize(&mut scratch.vrows, LANES * width, 0.0);
    resize(&mut scratch.sampled, height, [0.0; 64]);
    let Scratch { rows, strip_in, strip_out, acc, vrows, sampled } = scratch;

    // Pass 1, along rows: luma strip -> transpose -> box -> transpose back.
    let mut line = vec![0f32; width];
    for r0 in (0..height).step_by(LANES) {
        let n = LANES.min(height - r0);
        for k in 0..LANES {
            if k < n {
                fill_luma(r0 + k, &mut line);
                for (cell, &v) in strip_in.iter_mut().zip(&line) {
                    cell[k] = v;
                }
            } else {
                for cell in strip_in.iter_mut() {
                    cell[k] = 0.0;
                }
            }
        }
        box_lanes::<LANES>(strip_in, win_x, |o, sum, count| {
            let cell = &mut strip_out[o];
            for k in 0..LANES {
                cell[k] = sum[k] / count;
            }
        });
        for k in 0..n {
            let row = &mut rows[(r0 + k) * width..(r0 + k + 1) * width];
            for (dst, cell) in row.iter_mut().zip(strip_out.iter()) {
                *dst = cell[k];
            }
        }
    }

    // Pass 1, along columns, streaming each strip of LANES output rows into
    // pass 2 along rows, which keeps only the 64 sampled columns.
    acc.fill(0.0);
    let row_at = |r: usize| &rows[r * width..(r + 1) * width];
    for step in schedule(height, win_y) {
        if let Some(a) = step.add {
            for (s, &x) in acc.iter_mut().zip(row_at(a)) {
                *s += x;
            }
        }
        if let Some(sub) = step.sub {
            for (s, &x) in acc.iter_mut().zip(row_at(sub)) {
                *s -= x;
            }
        }
        let Some((o, count)) = step.out else { continue };
        let slot = o % LANES;
        for (dst, &s) in vrows[slot * width..(slot + 1) * width].iter_mut().zip(acc.iter()) {
            *dst = s / count;
        }
        if slot == LANES - 1 || o == height - 1 {
            let r0 = o - slot;
            second_row_pass(vrows, slot + 1, width, win_x, &sample_cols, strip_in, &mut sampled[r0..=o]);
        }
    }

    // Pass 2, along columns, on the 64 sampled columns only; keep sampled rows.
    let mut next = 0;
    box_lanes::<64>(sampled, win_y, |o, sum, count| {
        for_samples_at(&sample_rows, &mut next, o, |i| {
            for j in 0..64 {
                out[i][j] = sum[j] / count;
            }
        });
    });
}

/// The second row pass over `n` rows held in `vrows`, writing the values at the
/// 64 sampled columns of each row into `sampled`.
fn second_row_pass(
    vrows: &[f32],
    n: usize,
    width: usize,
    win_x: usize,
    sample_cols: &[usize; 64],
    strip: &mut [[f32; LANES]],
    sampled: &mut [[f32; 64]],
) {
    for k in 0..LANES {
        if k < n {
            let row = &vrows[k * width..(k + 1) * width];
            for (cell, &v) in strip.iter_mut().zip(row) {
                cell[k] = v;
            }
        } else {
            for cell in strip.iter_mut() {
                cell[k] = 0.0;
            }
        }
    }
    let mut next = 0;
    box_lanes::<LANES>(strip, win_x, |o, sum, count| {
        for_samples_at(sample_cols, &mut next, o, |j| {
            for (k, row) in sampled.iter_mut().enumerate() {
                row[j] = sum[k] / count;
            }
        });
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `box1DFloat` written as the reference writes it, for one line.
    fn reference_box(input: &[f32], window: usize) -> Vec<f32> {
        let half = (window + 2) / 2;
        let (p1, p2, p3, p4) = (half - 1, window - half + 1, input.len() - window, half - 1);
        let mut out = vec![0f32; input.len()];
        let (mut li, mut ri, mut oi) = (0, 0, 0);
        let mut sum = 0f32;
        let mut n = 0i32;
        for _ in 0..p1 {
            sum += input[ri];
            n += 1;
            ri += 1;
        }
        for _ in 0..p2 {
            sum += input[ri];
            n += 1;
            out[oi] = sum / n as f32;
            ri += 1;
            oi += 1;
        }
        for _ in 0..p3 {
            sum += input[ri];
            sum -= input[li];
            out[oi] = sum / n as f32;
            li += 1;
            ri += 1;
            oi += 1;
        }
        for _ in 0..p4 {
            sum -= input[li];
            n -= 1;
            out[oi] = sum / n as f32;
            li += 1;
            oi += 1;
        }
        out
    }

    #[test]
    fn lanes_match_reference_box_for_all_small_windows() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % 25_500) as f32 * 0.01 + 0.299
        };
        for len in [1usize, 2, 3, 5, 7, 64, 127, 128, 129, 300, 1001] {
            for window in 1..=len.min(12) {
                let lines: Vec<Vec<f32>> = (0..4).map(|_| (0..len).map(|_| rnd()).collect()).collect();
                let input: Vec<[f32; 4]> = (0..len).map(|i| std::array::from_fn(|k| lines[k][i])).collect();
                let mut got = vec![[0f32; 4]; len];
                box_lanes::<4>(&input, window, |o, s, c| {
                    got[o] = std::array::from_fn(|k| s[k] / c);
                });
                for (k, line) in lines.iter().enumerate() {
                    let want = reference_box(line, window);
                    for i in 0..len {
                        assert_eq!(got[i][k].to_bits(), want[i].to_bits(), "len {len} window {window}");
                    }
                }
            }
        }
    }

    #[test]
    fn schedule_writes_every_output_once() {
        for len in 1..200 {
            let window = window_size(len);
            let outs: Vec<usize> = schedule(len, window).filter_map(|s| s.out.map(|o| o.0)).collect();
            assert_eq!(outs, (0..len).collect::<Vec<_>>());
        }
    }

    #[test]
    fn window_sizes_match_reference_formula() {
        for dim in 1..5000 {
            assert_eq!(window_size(dim), (dim + 2 * 64 - 1) / (2 * 64));
        }
    }

    #[test]
    fn sample_indices_are_cell_centres() {
        assert_eq!(sample_indices(64), std::array::from_fn(|i| i));
        assert_eq!(sample_indices(128)[0], 1);
        assert_eq!(sample_indices(4000)[63], 3968);
        for dim in [5usize, 34, 63, 65, 1004, 1600] {
            let got = sample_indices(dim);
            for (i, &g) in got.iter().enumerate() {
                assert_eq!(g, (2 * i + 1) * dim / 128, "dim {dim} i {i}");
            }
        }
    }
}
