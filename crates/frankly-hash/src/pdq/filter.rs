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

use wide::f32x4;

use super::luma::LumaTables;

/// Rows processed side by side in the row passes.
pub(super) const LANES: usize = 16;

/// The 64x64 output of the downsampler.
pub(super) type Grid64 = [[f32; 64]; 64];

/// The reference window size for a dimension: `ceil(dim / 128)`, i.e.
/// `(old + 2 * 64 - 1) / (2 * 64)` in `computeJaroszFilterWindowSize`.
pub(super) fn window_size(dim: usize) -> usize {
    dim.div_ceil(128)
}

/// The shape of the reference's 1-D box filter (`box1DFloat`) over `len`
/// inputs with a window of `window`, as a sequence of `len + lead` steps.
///
/// The reference runs four phases: accumulate `lead = (window + 2) / 2 - 1`
/// inputs; then add and write with a growing window; then add, subtract and
/// write with the full window; then subtract and write with a shrinking window.
/// Numbered as one sequence, step `s` adds input `s` when `s < len`, then
/// subtracts input `s - window` when `s >= window`, then writes output
/// `s - lead` (when `s >= lead`) as `sum / count(s)`. Even windows are thus
/// asymmetric, as in the reference.
#[derive(Clone, Copy, Debug)]
struct BoxShape {
    len: usize,
    window: usize,
    lead: usize,
}

impl BoxShape {
    fn new(len: usize, window: usize) -> Self {
        debug_assert!(window >= 1 && window <= len);
        BoxShape { len, window, lead: (window + 2) / 2 - 1 }
    }

    /// Steps in all.
    fn steps(&self) -> usize {
        self.len + self.lead
    }

    /// The number of inputs in the window when step `s` writes.
    fn count(&self, s: usize) -> f32 {
        (s + 1).min(self.window).min(self.len + self.window - 1 - s) as f32
    }
}

#[inline(always)]
fn add_lanes<const L: usize>(sum: &mut [f32; L], x: &[f32; L]) {
    for k in 0..L {
        sum[k] += x[k];
    }
}

#[inline(always)]
fn sub_lanes<const L: usize>(sum: &mut [f32; L], x: &[f32; L]) {
    for k in 0..L {
        sum[k] -= x[k];
    }
}

/// `1 / n` when dividing by `n` can be replaced by multiplying by it without
/// changing any result: when `n` is a power of two, `x / n` and `x * (1 / n)`
/// have the same exact value (the reciprocal is exact), and IEEE division and
/// multiplication both round that exact value the same way, subnormals
/// included. Saves the division (several times slower) for the common
/// 4032-pixel-wide phone photo (window 32).
fn exact_reciprocal(n: usize) -> Option<f32> {
    n.is_power_of_two().then(|| 1.0 / n as f32)
}

#[inline(always)]
fn div_lanes<const L: usize>(sum: &[f32; L], count: f32) -> [f32; L] {
    std::array::from_fn(|k| sum[k] / count)
}

/// The 1-D box filter on `L` independent lanes: `emit(o, values)` for every
/// output position in order.
#[inline(always)]
fn box_full<const L: usize>(input: &[[f32; L]], window: usize, mut emit: impl FnMut(usize, [f32; L])) {
    let shape = BoxShape::new(input.len(), window);
    let BoxShape { len, lead, .. } = shape;
    let mut sum = [0f32; L];
    for x in &input[..lead] {
        add_lanes(&mut sum, x);
    }
    for s in lead..window {
        add_lanes(&mut sum, &input[s]);
        emit(s - lead, div_lanes(&sum, (s + 1) as f32));
    }
    let full = window as f32;
    if let Some(reciprocal) = exact_reciprocal(window) {
        for s in window..len {
            add_lanes(&mut sum, &input[s]);
            sub_lanes(&mut sum, &input[s - window]);
            emit(s - lead, std::array::from_fn(|k| sum[k] * reciprocal));
        }
    } else {
        for s in window..len {
            add_lanes(&mut sum, &input[s]);
            sub_lanes(&mut sum, &input[s - window]);
            emit(s - lead, div_lanes(&sum, full));
        }
    }
    for s in len..len + lead {
        sub_lanes(&mut sum, &input[s - window]);
        emit(s - lead, div_lanes(&sum, shape.count(s)));
    }
}

/// Runs steps `from..to` of the box filter without writing anything.
#[inline(always)]
fn advance<const L: usize>(sum: &mut [f32; L], input: &[[f32; L]], shape: BoxShape, from: usize, to: usize) {
    let BoxShape { len, window, .. } = shape;
    for x in &input[from.min(window)..to.min(window)] {
        add_lanes(sum, x);
    }
    for s in from.max(window)..to.min(len) {
        add_lanes(sum, &input[s]);
        sub_lanes(sum, &input[s - window]);
    }
    for s in from.max(len)..to {
        sub_lanes(sum, &input[s - window]);
    }
}

/// The 1-D box filter on `L` lanes, producing only the outputs at the 64
/// (non-decreasing, possibly repeated) positions in `samples`:
/// `emit(j, sums, count)` for output `samples[j]`. The running sums still see
/// every input up to the last sample, in order; only the divisions are skipped.
#[inline(always)]
fn box_sampled<const L: usize>(
    input: &[[f32; L]],
    window: usize,
    samples: &[usize; 64],
    mut emit: impl FnMut(usize, &[f32; L], f32),
) {
    let shape = BoxShape::new(input.len(), window);
    let mut sum = [0f32; L];
    let mut done = 0;
    for (j, &o) in samples.iter().enumerate() {
        let step = o + shape.lead;
        if step + 1 > done {
            advance(&mut sum, input, shape, done, step + 1);
            done = step + 1;
        }
        emit(j, &sum, shape.count(step));
    }
}

/// Cell-centre sample indices: `floor((i + 0.5) * dim / 64)`, computed in f64 as
/// the reference does. Non-decreasing; repeats when `dim < 64`.
pub(super) fn sample_indices(dim: usize) -> [usize; 64] {
    std::array::from_fn(|i| (((i as f64 + 0.5) * dim as f64) / 64.0) as usize)
}

/// Reusable buffers for [`downsample`], grown to the largest image seen.
#[derive(Default)]
pub(super) struct Scratch {
    /// A transposed strip of `LANES` rows: one `[f32; LANES]` per column.
    strip_in: Vec<[f32; LANES]>,
    strip_out: Vec<[f32; LANES]>,
    /// The latest rows of the first row pass, row `r` in slot `r % ring_rows`:
    /// all that the first column pass still needs.
    ring: Vec<f32>,
    /// Running column sums of the first column pass, one per column.
    acc: Vec<f32>,
    /// `LANES` output rows of the first column pass, row-major.
    vrows: Vec<f32>,
    /// Second row pass at the 64 sampled columns, one entry per image row.
    sampled: Vec<[f32; 64]>,
}

fn resize<T: Copy>(v: &mut Vec<T>, len: usize, fill: T) {
    if v.len() != len {
        v.clear();
        v.resize(len, fill);
    }
}

/// Blurs an RGB8 image's luma and decimates it to 64x64, exactly as
/// `jaroszFilterFloat` (two passes) followed by `decimateFloat`.
///
/// The whole pipeline streams over strips of `LANES` rows, so its working set
/// is a few strips and a ring of `window + 2 * LANES` rows, whatever the
/// image size.
pub(super) fn downsample(
    scratch: &mut Scratch,
    luma: &LumaTables,
    rgb: &[u8],
    height: usize,
    width: usize,
    out: &mut Grid64,
) {
    let win_x = window_size(width);
    let win_y = window_size(height);
    let sample_cols = sample_indices(width);
    let sample_rows = sample_indices(height);
    let ring_rows = win_y + 2 * LANES;

    resize(&mut scratch.strip_in, width, [0.0; LANES]);
    resize(&mut scratch.strip_out, width, [0.0; LANES]);
    resize(&mut scratch.ring, ring_rows * width, 0.0);
    resize(&mut scratch.acc, width, 0.0);
    resize(&mut scratch.vrows, LANES * width, 0.0);
    resize(&mut scratch.sampled, height, [0.0; 64]);
    let Scratch { strip_in, strip_out, ring, acc, vrows, sampled } = scratch;
    acc.fill(0.0);

    let columns = BoxShape::new(height, win_y);
    let mut column_step_next = 0;
    for r0 in (0..height).step_by(LANES) {
        let n = LANES.min(height - r0);
        // Pass 1 along rows, on rows r0..r0+n, into the ring.
        let rows: Vec<&[u8]> = (r0..r0 + n).map(|r| &rgb[r * width * 3..(r + 1) * width * 3]).collect();
        luma.strip(&rows, strip_in);
        let mut ring_slots: Vec<&mut [f32]> = Vec::with_capacity(n);
        let (tail, head) = ring.split_at_mut((r0 % ring_rows) * width);
        ring_slots.extend(head.chunks_mut(width).chain(tail.chunks_mut(width)).take(n));
        box_full::<LANES>(strip_in, win_x, |o, v| strip_out[o] = v);
        strip_to_rows(strip_out, &mut ring_slots);
        // Pass 1 along columns, as far as the rows available allow. Output rows
        // go to `vrows`; every LANES of them run pass 2 along rows.
        let available = if r0 + n == height { columns.steps() } else { r0 + n };
        for s in column_step_next..available {
            let Some(o) = column_step(ring, ring_rows, width, acc, columns, s, vrows) else { continue };
            let slot = o % LANES;
            if slot == LANES - 1 || o == height - 1 {
                let rows: Vec<&[f32]> = vrows.chunks(width).take(slot + 1).collect();
                rows_to_strip(&rows, strip_in);
                second_row_pass(strip_in, win_x, &sample_cols, &mut sampled[o - slot..=o]);
            }
        }
        column_step_next = available;
    }

    // Pass 2 along columns, on the 64 sampled columns only; keep sampled rows.
    box_sampled::<64>(sampled, win_y, &sample_rows, |i, sum, count| out[i] = div_lanes(sum, count));
}

/// Transposes a 4x4 block in registers (`wide` uses SSE shuffles where the
/// target has them; the compiler does not find them from scalar code).
#[inline(always)]
fn transpose4(m: [[f32; 4]; 4]) -> [[f32; 4]; 4] {
    f32x4::transpose(m.map(f32x4::new)).map(|v| v.to_array())
}

#[inline(always)]
fn load4(s: &[f32]) -> [f32; 4] {
    [s[0], s[1], s[2], s[3]]
}

/// Writes lane `k` of every cell of `strip` to `rows[k]`, in 4x4 blocks.
fn strip_to_rows(strip: &[[f32; LANES]], rows: &mut [&mut [f32]]) {
    let width = strip.len();
    let full = width / 4 * 4;
    if rows.len() == LANES {
        for kb in (0..LANES).step_by(4) {
            let [r0, r1, r2, r3] = &mut rows[kb..kb + 4] else { unreachable!() };
            for c in (0..full).step_by(4) {
                let m = transpose4(std::array::from_fn(|i| load4(&strip[c + i][kb..kb + 4])));
                r0[c..c + 4].copy_from_slice(&m[0]);
                r1[c..c + 4].copy_from_slice(&m[1]);
                r2[c..c + 4].copy_from_slice(&m[2]);
                r3[c..c + 4].copy_from_slice(&m[3]);
            }
        }
        for (k, row) in rows.iter_mut().enumerate() {
            for c in full..width {
                row[c] = strip[c][k];
            }
        }
    } else {
        for (k, row) in rows.iter_mut().enumerate() {
            for (dst, cell) in row.iter_mut().zip(strip) {
                *dst = cell[k];
            }
        }
    }
}

/// Writes `rows[k]` to lane `k` of the cells of `strip`, in 4x4 blocks.
/// Lanes past `rows.len()` keep whatever they held: lanes never mix.
fn rows_to_strip(rows: &[&[f32]], strip: &mut [[f32; LANES]]) {
    let width = strip.len();
    let full = width / 4 * 4;
    if rows.len() == LANES {
        for kb in (0..LANES).step_by(4) {
            let [r0, r1, r2, r3] = &rows[kb..kb + 4] else { unreachable!() };
            let (r0, r1, r2, r3) = (&r0[..width], &r1[..width], &r2[..width], &r3[..width]);
            for c in (0..full).step_by(4) {
                let m = transpose4([load4(&r0[c..]), load4(&r1[c..]), load4(&r2[c..]), load4(&r3[c..])]);
                for i in 0..4 {
                    strip[c + i][kb..kb + 4].copy_from_slice(&m[i]);
                }
            }
        }
        for (k, row) in rows.iter().enumerate() {
            for c in full..width {
                strip[c][k] = row[c];
            }
        }
    } else {
        for (k, row) in rows.iter().enumerate() {
            for (cell, &v) in strip.iter_mut().zip(row.iter()) {
                cell[k] = v;
            }
        }
    }
}

/// Step `s` of the first column pass over all columns at once. Returns the
/// output row it wrote to its slot in `vrows`, if any.
#[inline(never)]
fn column_step(
    ring: &[f32],
    ring_rows: usize,
    width: usize,
    acc: &mut [f32],
    shape: BoxShape,
    s: usize,
    vrows: &mut [f32],
) -> Option<usize> {
    let row = |r: usize| &ring[(r % ring_rows) * width..(r % ring_rows + 1) * width];
    let add = s < shape.len;
    let sub = s >= shape.window;
    let Some(o) = s.checked_sub(shape.lead) else {
        // Accumulating the first inputs, no output yet.
        for (sum, &x) in acc.iter_mut().zip(row(s)) {
            *sum += x;
        }
        return None;
    };
    let count = shape.count(s);
    let slot = o % LANES;
    let out = &mut vrows[slot * width..(slot + 1) * width];
    if add && sub {
        let rows = acc.iter_mut().zip(out.iter_mut()).zip(row(s)).zip(row(s - shape.window));
        if let Some(reciprocal) = exact_reciprocal(shape.window) {
            for (((sum, dst), &x), &y) in rows {
                *sum += x;
                *sum -= y;
                *dst = *sum * reciprocal;
            }
        } else {
            for (((sum, dst), &x), &y) in rows {
                *sum += x;
                *sum -= y;
                *dst = *sum / count;
            }
        }
    } else if add {
        for ((sum, dst), &x) in acc.iter_mut().zip(out.iter_mut()).zip(row(s)) {
            *sum += x;
            *dst = *sum / count;
        }
    } else {
        debug_assert!(sub);
        for ((sum, dst), &y) in acc.iter_mut().zip(out.iter_mut()).zip(row(s - shape.window)) {
            *sum -= y;
            *dst = *sum / count;
        }
    }
    Some(o)
}

/// The second row pass over the rows held in the lanes of `strip`, writing
/// the values at the 64 sampled columns of each row into `sampled`.
#[inline(never)]
fn second_row_pass(strip: &[[f32; LANES]], win_x: usize, sample_cols: &[usize; 64], sampled: &mut [[f32; 64]]) {
    box_sampled::<LANES>(strip, win_x, sample_cols, |j, sum, count| {
        for (k, row) in sampled.iter_mut().enumerate() {
            row[j] = sum[k] / count;
        }
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
                box_full::<4>(&input, window, |o, v| got[o] = v);
                let samples = sample_indices(len);
                let mut sampled = [[0f32; 4]; 64];
                box_sampled::<4>(&input, window, &samples, |j, s, c| sampled[j] = div_lanes(s, c));
                for (k, line) in lines.iter().enumerate() {
                    let want = reference_box(line, window);
                    for i in 0..len {
                        assert_eq!(got[i][k].to_bits(), want[i].to_bits(), "len {len} window {window}");
                    }
                    for (j, &i) in samples.iter().enumerate() {
                        assert_eq!(
                            sampled[j][k].to_bits(),
                            want[i].to_bits(),
                            "sampled {j}: len {len} window {window}"
                        );
                    }
                }
            }
        }
    }

    /// `jaroszFilterFloat` (two passes) and `decimateFloat`, written the
    /// reference's way: whole planes, one row or column at a time.
    fn reference_downsample(luma: &[f32], height: usize, width: usize) -> Grid64 {
        let (wx, wy) = (window_size(width), window_size(height));
        let mut a = luma.to_vec();
        for _ in 0..2 {
            let mut b = vec![0f32; a.len()];
            for r in 0..height {
                b[r * width..(r + 1) * width].copy_from_slice(&reference_box(&a[r * width..(r + 1) * width], wx));
            }
            for c in 0..width {
                let column: Vec<f32> = (0..height).map(|r| b[r * width + c]).collect();
                for (r, v) in reference_box(&column, wy).into_iter().enumerate() {
                    a[r * width + c] = v;
                }
            }
        }
        let (rows, cols) = (sample_indices(height), sample_indices(width));
        std::array::from_fn(|i| std::array::from_fn(|j| a[rows[i] * width + cols[j]]))
    }

    #[test]
    fn streaming_pipeline_matches_whole_plane_reference() {
        let luma = LumaTables::get();
        let mut scratch = Scratch::default();
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let sizes = [
            (5, 5),
            (7, 300),
            (300, 7),
            (16, 16),
            (17, 33),
            (33, 17),
            (64, 64),
            (63, 65),
            (129, 257),
            (250, 1000),
            (1001, 37),
        ];
        for (height, width) in sizes {
            let rgb: Vec<u8> = (0..height * width * 3)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed >> 24) as u8
                })
                .collect();
            let mut plane = vec![0f32; height * width];
            for r in 0..height {
                luma.row(&rgb[r * width * 3..(r + 1) * width * 3], &mut plane[r * width..(r + 1) * width]);
            }
            let want = reference_downsample(&plane, height, width);
            let mut got = [[0f32; 64]; 64];
            downsample(&mut scratch, luma, &rgb, height, width, &mut got);
            for i in 0..64 {
                for j in 0..64 {
                    assert_eq!(got[i][j].to_bits(), want[i][j].to_bits(), "{height}x{width} at ({i}, {j})");
                }
            }
        }
    }

    #[test]
    fn power_of_two_reciprocals_divide_exactly() {
        let mut seed = 0x1234_5678_9abc_def0u64;
        for n in [1usize, 2, 4, 8, 16, 32, 64, 128, 256] {
            let r = exact_reciprocal(n).unwrap();
            for _ in 0..100_000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let x = f32::from_bits(seed as u32);
                if x.is_finite() {
                    assert_eq!((x * r).to_bits(), (x / n as f32).to_bits(), "{x:e} / {n}");
                }
            }
        }
        assert_eq!(exact_reciprocal(24), None);
    }

    #[test]
    fn counts_grow_hold_and_shrink_like_the_reference_phases() {
        for len in 1..300 {
            for window in 1..=len.min(20) {
                let shape = BoxShape::new(len, window);
                let half = (window + 2) / 2;
                let mut want = Vec::new();
                let mut n = half - 1;
                for _ in 0..window - half + 1 {
                    n += 1;
                    want.push(n as f32);
                }
                want.extend(std::iter::repeat_n(window as f32, len - window));
                for _ in 0..half - 1 {
                    n -= 1;
                    want.push(n as f32);
                }
                let got: Vec<f32> = (shape.lead..shape.steps()).map(|s| shape.count(s)).collect();
                assert_eq!(got, want, "len {len} window {window}");
            }
        }
    }

    #[test]
    #[allow(clippy::manual_div_ceil)] // the reference formula, as written there
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
