//! Exact Hamming range search: multi-index hashing, checked against brute force.
//!
//! Why it is written here: the Rust crates that index binary codes are
//! approximate (LSH, HNSW) or bind FAISS (C++). FAISS's `IndexBinaryMultiHash`
//! as HMA configures it (16 tables of 16 bits, one bit flip) is exact up to
//! radius 31 only, with buckets sized for no particular bank, and verifies
//! tens of thousands of candidates per query at 10 million hashes (about
//! 21 ms per query here, against under 0.5 ms for this index; see
//! `docs/benchmarks.md`). A bank lookup that decides whether to warn a user
//! must be exact at whatever threshold a bank sets, so this index returns
//! exactly what a linear scan returns, for every radius, and sizes its
//! substrings from the bank.
//!
//! Multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012): split the `bits`
//! bits of every hash into `m` disjoint substrings and index each substring in
//! its own table. Write the radius `r = q m + a` with `0 <= a < m`. If two
//! hashes are within `r`, then one of the first `a + 1` substrings is within
//! `q`, or one of the others is within `q - 1`: otherwise their distance would
//! be at least `(a + 1)(q + 1) + (m - a - 1) q = r + 1`. So a query probes, in
//! each table, every key within that substring radius of its own substring,
//! and verifies the full distance of the entries found. A match found through
//! several tables is reported once, by the first table whose condition it meets.
//!
//! Substrings have `b ~ log2(n)` bits (at most [`MAX_SUBSTRING_BITS`]), so a
//! bucket holds about one entry; tables are counting-sorted arrays addressed
//! directly by the key. When the probes a radius needs would cost more than a
//! linear scan (large radii, small banks), the query scans instead: both give
//! the same answer.

use crate::huge::HugeArray;

/// Widest substring a table is addressed by: tables have `2^b + 1` offsets.
pub const MAX_SUBSTRING_BITS: u32 = 22;

/// A hash as four little-endian 64-bit words: bit `k` is bit `k % 64` of word
/// `k / 64`. 64-bit hashes use word 0 and leave the others zero.
pub type Words = [u64; 4];

/// Hamming distance of two hashes.
#[inline]
pub fn distance(a: &Words, b: &Words) -> u32 {
    (a[0] ^ b[0]).count_ones() + (a[1] ^ b[1]).count_ones() + (a[2] ^ b[2]).count_ones() + (a[3] ^ b[3]).count_ones()
}

/// One match: the entry's position in the indexed list and its distance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hit {
    /// Hamming distance to the query.
    pub distance: u32,
    /// Position of the entry in the list the index was built from.
    pub id: u32,
}

/// All entries within `radius` of `query`, by a linear scan, sorted by
/// (distance, id). The reference the index is tested against.
pub fn brute_force(hashes: &[Words], query: &Words, radius: u32) -> Vec<Hit> {
    let mut hits: Vec<Hit> = hashes
        .iter()
        .enumerate()
        .filter_map(|(id, h)| {
            let d = distance(h, query);
            (d <= radius).then_some(Hit { distance: d, id: id as u32 })
        })
        .collect();
    hits.sort_unstable();
    hits
}

#[derive(Debug)]
struct Table {
    /// First bit of the substring.
    start: u32,
    /// Bits in the substring.
    len: u32,
    /// `ids[offsets[k]..offsets[k + 1]]` are the entries whose substring is `k`.
    offsets: HugeArray<u32>,
    ids: HugeArray<u32>,
}

impl Table {
    #[inline]
    fn key(&self, h: &Words) -> u32 {
        substring(h, self.start, self.len)
    }
}

#[inline]
fn substring(h: &Words, start: u32, len: u32) -> u32 {
    let word = (start / 64) as usize;
    let off = start % 64;
    let mut v = h[word] >> off;
    if off + len > 64 {
        v |= h[word + 1] << (64 - off);
    }
    (v & ((1u64 << len) - 1)) as u32
}

/// An exact Hamming range index over hashes of `bits` bits (64, 128 or 256).
#[derive(Debug)]
pub struct HammingIndex {
    bits: u32,
    hashes: HugeArray<Words>,
    tables: Vec<Table>,
}

impl HammingIndex {
    /// Builds the index; the number of substrings follows from the count.
    ///
    /// # Panics
    /// If `bits` is not 64, 128 or 256, or there are `u32::MAX` hashes or more
    /// (banks refuse such sizes when they are parsed).
    pub fn new(bits: u32, hashes: Vec<Words>) -> Self {
        assert!(matches!(bits, 64 | 128 | 256), "index supports 64-, 128- and 256-bit hashes");
        assert!(hashes.len() < u32::MAX as usize, "too many hashes for one index");
        let n = hashes.len().max(2);
        let b = (usize::BITS - (n - 1).leading_zeros()).clamp(4, MAX_SUBSTRING_BITS);
        let m = bits.div_ceil(b);
        let tables = (0..m)
            .map(|i| {
                // Spread the bits evenly: the first `bits % m` substrings get one more.
                let base = bits / m;
                let extra = bits % m;
                let len = base + u32::from(i < extra);
                let start = i * base + i.min(extra);
                build_table(&hashes, start, len)
            })
            .collect();
        HammingIndex { bits, hashes: HugeArray::from_slice(&hashes), tables }
    }

    /// Number of indexed hashes.
    pub fn len(&self) -> usize {
        self.hashes().len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.hashes().is_empty()
    }

    /// The hashes, in id order.
    pub fn hashes(&self) -> &[Words] {
        self.hashes.as_slice()
    }

    /// Number of substrings (tables).
    pub fn substrings(&self) -> usize {
        self.tables.len()
    }

    /// Approximate heap bytes used by the index, hashes included.
    pub fn heap_bytes(&self) -> usize {
        self.len() * std::mem::size_of::<Words>()
            + self.tables.iter().map(|t| (t.offsets.as_slice().len() + t.ids.as_slice().len()) * 4).sum::<usize>()
    }

    /// The substring radius of table `i` for query radius `radius`, or `None`
    /// when that table need not be probed.
    fn table_radius(&self, i: usize, radius: u32) -> Option<u32> {
        let m = self.tables.len() as u32;
        let (q, a) = (radius / m, radius % m);
        if (i as u32) <= a { Some(q) } else { q.checked_sub(1) }
    }

    /// Every entry within `radius` of `query`, sorted by (distance, id):
    /// exactly what [`brute_force`] returns.
    pub fn range(&self, query: &Words, radius: u32) -> Vec<Hit> {
        if self.is_empty() {
            return Vec::new();
        }
        let hashes = self.hashes();
        if radius >= self.bits || self.probe_cost(radius) >= hashes.len() as f64 {
            return brute_force(hashes, query, radius);
        }
        // Three passes with independent memory accesses in each (bucket
        // bounds, then bucket contents, then full hashes), rather than one
        // loop whose every step waits on a chain of cache misses: the
        // processor overlaps the misses of a pass.
        let mut probes = Vec::new();
        let mut ranges = Vec::new();
        let mut candidates: Vec<(u32, u8)> = Vec::new();
        for (i, table) in self.tables.iter().enumerate() {
            let Some(r_i) = self.table_radius(i, radius) else { continue };
            probes.clear();
            for_each_within(table.key(query), table.len, r_i, |probe| probes.push(probe as usize));
            ranges.clear();
            let (offsets, ids) = (table.offsets.as_slice(), table.ids.as_slice());
            ranges.extend(probes.iter().map(|&p| (offsets[p] as usize, offsets[p + 1] as usize)));
            for &(lo, hi) in &ranges {
                candidates.extend(ids[lo..hi].iter().map(|&id| (id, i as u8)));
            }
        }
        let mut hits = Vec::new();
        for &(id, i) in &candidates {
            let h = &hashes[id as usize];
            let d = distance(h, query);
            if d <= radius && self.owner(h, query, radius) == usize::from(i) {
                hits.push(Hit { distance: d, id });
            }
        }
        hits.sort_unstable();
        hits
    }

    /// [`HammingIndex::range`] for many queries, in parallel on rayon's
    /// thread pool; results in query order.
    pub fn range_many(&self, queries: &[Words], radius: u32) -> Vec<Vec<Hit>> {
        use rayon::prelude::*;
        queries.par_iter().map(|q| self.range(q, radius)).collect()
    }

    /// The first table whose probing condition `h` meets: the table that reports it.
    fn owner(&self, h: &Words, query: &Words, radius: u32) -> usize {
        let x = [h[0] ^ query[0], h[1] ^ query[1], h[2] ^ query[2], h[3] ^ query[3]];
        (0..self.tables.len())
            .find(|&i| {
                self.table_radius(i, radius)
                    .is_some_and(|r_i| substring(&x, self.tables[i].start, self.tables[i].len).count_ones() <= r_i)
            })
            .unwrap_or(usize::MAX)
    }

    /// Expected work of a probed query, in entries touched: probes plus the
    /// entries in the probed buckets.
    fn probe_cost(&self, radius: u32) -> f64 {
        let n = self.len() as f64;
        self.tables
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let r_i = self.table_radius(i, radius)?;
                let probes: f64 = (0..=r_i.min(t.len)).map(|j| binomial(t.len, j)).sum();
                Some(probes * (1.0 + n / (1u64 << t.len) as f64))
            })
            .sum()
    }
}

fn build_table(hashes: &[Words], start: u32, len: u32) -> Table {
    let buckets = 1usize << len;
    let mut offsets_array = HugeArray::<u32>::zeroed(buckets + 1);
    let offsets = offsets_array.as_mut_slice();
    for h in hashes {
        offsets[substring(h, start, len) as usize + 1] += 1;
    }
    for k in 0..buckets {
        offsets[k + 1] += offsets[k];
    }
    let mut fill = offsets.to_vec();
    let mut ids_array = HugeArray::<u32>::zeroed(hashes.len());
    let ids = ids_array.as_mut_slice();
    for (id, h) in hashes.iter().enumerate() {
        let k = substring(h, start, len) as usize;
        ids[fill[k] as usize] = id as u32;
        fill[k] += 1;
    }
    Table { start, len, offsets: offsets_array, ids: ids_array }
}

fn binomial(n: u32, k: u32) -> f64 {
    (0..k).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

/// Calls `f` with every `len`-bit key within Hamming distance `radius` of `key`.
fn for_each_within(key: u32, len: u32, radius: u32, mut f: impl FnMut(u32)) {
    for weight in 0..=radius.min(len) {
        if weight == 0 {
            f(key);
            continue;
        }
        // Gosper's hack: every `len`-bit mask with `weight` bits set, in order.
        let limit = 1u64 << len;
        let mut mask: u64 = (1u64 << weight) - 1;
        while mask < limit {
            f(key ^ mask as u32);
            let c = mask & mask.wrapping_neg();
            let r = mask + c;
            mask = (((r ^ mask) >> 2) / c) | r;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn words(&mut self, bits: u32) -> Words {
            let w = [self.next(), self.next(), self.next(), self.next()];
            match bits {
                64 => [w[0], 0, 0, 0],
                128 => [w[0], w[1], 0, 0],
                _ => w,
            }
        }
        /// `h` with `flips` distinct random bits flipped.
        fn near(&mut self, h: &Words, bits: u32, flips: u32) -> Words {
            let mut out = *h;
            let mut flipped = 0;
            while flipped < flips {
                let k = (self.next() % u64::from(bits)) as usize;
                let before = out;
                out[k / 64] ^= 1 << (k % 64);
                if distance(&before, h) < distance(&out, h) {
                    flipped += 1;
                } else {
                    out = before;
                }
            }
            out
        }
    }

    #[test]
    fn enumerates_exactly_the_keys_within_radius() {
        for len in [1u32, 4, 9] {
            for radius in 0..=4 {
                let mut seen = Vec::new();
                for_each_within(0b101 & ((1 << len) - 1), len, radius, |k| seen.push(k));
                let mut want: Vec<u32> =
                    (0..1u32 << len).filter(|k| (k ^ (0b101 & ((1 << len) - 1))).count_ones() <= radius).collect();
                seen.sort_unstable();
                want.sort_unstable();
                assert_eq!(seen, want, "len {len} radius {radius}");
            }
        }
    }

    #[test]
    fn substrings_cover_every_bit_once() {
        for (bits, n) in [(256u32, 10usize), (256, 5000), (128, 10), (128, 5000), (64, 10), (64, 100_000)] {
            let idx = HammingIndex::new(bits, vec![[0; 4]; n]);
            let mut covered = vec![0u8; bits as usize];
            for t in &idx.tables {
                for b in t.start..t.start + t.len {
                    covered[b as usize] += 1;
                }
            }
            assert!(covered.iter().all(|&c| c == 1), "bits {bits} n {n}");
        }
    }

    fn check_against_brute_force(bits: u32, hashes: Vec<Words>, queries: &[Words], radii: &[u32]) {
        let idx = HammingIndex::new(bits, hashes.clone());
        for q in queries {
            for &r in radii {
                assert_eq!(idx.range(q, r), brute_force(&hashes, q, r), "bits {bits} radius {r}");
            }
        }
    }

    #[test]
    fn equals_brute_force_on_uniform_data_for_every_radius() {
        let mut rng = Rng(0x243f_6a88_85a3_08d3);
        for (bits, n) in [(256, 3000), (128, 3000), (64, 3000), (256, 40), (128, 7), (64, 1)] {
            let hashes: Vec<Words> = (0..n).map(|_| rng.words(bits)).collect();
            // Queries: random, and planted near entries at various distances.
            let mut queries: Vec<Words> = (0..10).map(|_| rng.words(bits)).collect();
            for flips in [0, 1, 5, 12, 31, 40, 64] {
                let base = hashes[(rng.next() % n as u64) as usize];
                queries.push(rng.near(&base, bits, flips.min(bits)));
            }
            let radii: Vec<u32> = (0..=64).collect();
            check_against_brute_force(bits, hashes, &queries, &radii);
        }
    }

    #[test]
    fn equals_brute_force_on_clustered_data() {
        let mut rng = Rng(0x1319_8a2e_0370_7344);
        for bits in [256u32, 128, 64] {
            let centres: Vec<Words> = (0..30).map(|_| rng.words(bits)).collect();
            let mut hashes = Vec::new();
            for c in &centres {
                for _ in 0..100 {
                    let flips = (rng.next() % 24) as u32;
                    hashes.push(rng.near(c, bits, flips.min(bits / 4)));
                }
                hashes.push(*c);
                hashes.push(*c); // exact duplicates too
            }
            let mut queries: Vec<Words> = centres.iter().map(|c| rng.near(c, bits, 3)).collect();
            queries.push(rng.words(bits));
            check_against_brute_force(bits, hashes, &queries, &[0, 1, 2, 8, 16, 31, 32, 48, 64]);
        }
    }

    #[test]
    fn parallel_queries_equal_sequential_ones() {
        let mut rng = Rng(77);
        let hashes: Vec<Words> = (0..5000).map(|_| rng.words(256)).collect();
        let queries: Vec<Words> = hashes.iter().step_by(50).map(|h| rng.near(h, 256, 10)).collect();
        let idx = HammingIndex::new(256, hashes);
        let sequential: Vec<Vec<Hit>> = queries.iter().map(|q| idx.range(q, 31)).collect();
        assert_eq!(idx.range_many(&queries, 31), sequential);
        assert!(sequential.iter().all(|hits| !hits.is_empty()));
    }

    #[test]
    fn empty_index_matches_nothing() {
        let idx = HammingIndex::new(256, Vec::new());
        assert!(idx.range(&[0; 4], 256).is_empty());
    }
}
