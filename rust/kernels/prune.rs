//! Magnitude pruning: the exact `np.percentile(|w|, 100 * ratio)` threshold found by
//! selection (no sort), and the passes that prune or mask with it.
//!
//! The magnitude of a float with its sign bit cleared, read as an unsigned integer (its
//! *key*), orders exactly as the magnitude does, NaN above infinity. The two order
//! statistics NumPy interpolates between are found by radix selection over the keys:
//! a histogram of the top digit narrows the rank to one bucket, whose keys are gathered
//! (or, when the bucket is still large, histogrammed on the next digit) and selected in
//! memory. Every pass runs over fixed chunks of all layers together, so a global threshold
//! never concatenates them, and counts, minima and the selected keys are exact integers:
//! the result is the same for every thread count.

use crate::runtime::bundle::Each;
use crate::runtime::pool::{chunk_partials, for_each_chunk, CHUNK};
use crate::Real;

/// A float whose magnitude has an order-preserving integer key.
pub trait Magnitude: Real {
    /// Bits of a key: those below the sign bit.
    const KEY_BITS: u32;
    /// The key of infinity; larger keys are NaN.
    const INF_KEY: u64;
    fn key(self) -> u64;
    fn of_key(key: u64) -> Self;
    /// The largest value of this type not above `x` (`x` >= 0 or NaN): `|w| > x` as a
    /// float64 comparison is `|w| > floor_of(x)` in this type.
    fn floor_of(x: f64) -> Self;
    /// Of `x` and the keys `lo <= hi`: the counts of keys below `lo`, above `INF_KEY` (NaN),
    /// equal to `lo`, strictly between `lo` and `hi`, equal to `hi` (none if `hi == lo`),
    /// and the smallest key above `hi` (the type's largest key if none). No branch, so it
    /// vectorizes.
    fn block_counts(x: &[Self], lo: u64, hi: u64) -> ([u32; 5], u64);
    /// Appends the keys of `x` strictly between `lo` and `hi` to `out`.
    fn gather_into(x: &[Self], lo: u64, hi: u64, out: &mut Vec<u64>);
}

/// The bracket passes of one float type, in its own key width (u32 keys fill twice the
/// SIMD lanes of u64 ones).
macro_rules! key_passes {
    ($t:ty, $bits:ty, $counts:ident, $flags:ident, $gather:ident) => {
        crate::simd! {
            fn $counts(x: &[$t], lo: $bits, hi: $bits) -> ([u32; 5], $bits) {
                let (inf, two) = (<$t>::INF_KEY as $bits, hi != lo);
                let (mut below, mut nan, mut at_lo, mut inside, mut at_hi) = (0u32, 0u32, 0u32, 0u32, 0u32);
                let mut above = <$bits>::MAX;
                for &v in x {
                    let k = v.to_bits() & (<$bits>::MAX >> 1);
                    below += (k < lo) as u32;
                    nan += (k > inf) as u32;
                    at_lo += (k == lo) as u32;
                    inside += ((k > lo) & (k < hi)) as u32;
                    at_hi += ((k == hi) & two) as u32;
                    above = above.min(if k > hi { k } else { <$bits>::MAX });
                }
                ([below, nan, at_lo, inside, at_hi], above)
            }
        }

        crate::simd! {
            /// A flag byte per element: whether its key is strictly between `lo` and `hi`.
            /// Branch-free, so it vectorizes.
            fn $flags(x: &[$t], lo: $bits, hi: $bits, flags: &mut [u8]) {
                for (f, v) in flags.iter_mut().zip(x) {
                    let k = v.to_bits() & (<$bits>::MAX >> 1);
                    *f = ((k > lo) & (k < hi)) as u8;
                }
            }
        }

        /// Appends the keys of `x` (at most `BLOCK` elements) strictly between `lo` and `hi`
        /// to `out`. The
        /// flags, read eight at a time, lead to them: one branch per eight elements.
        fn $gather(x: &[$t], lo: $bits, hi: $bits, out: &mut Vec<u64>) {
            let mut flags = [0u8; BLOCK];
            $flags(x, lo, hi, &mut flags[..x.len()]);
            for (g, eight) in flags.chunks_exact(8).take(x.len().div_ceil(8)).enumerate() {
                let mut word = u64::from_le_bytes(eight.try_into().unwrap_or_default());
                while word != 0 {
                    let i = g * 8 + word.trailing_zeros() as usize / 8;
                    out.push((x[i].to_bits() & (<$bits>::MAX >> 1)) as u64);
                    word &= word - 1;
                }
            }
        }
    };
}

key_passes!(f32, u32, counts_f32, flags_f32, gather_f32);
key_passes!(f64, u64, counts_f64, flags_f64, gather_f64);

impl Magnitude for f32 {
    const KEY_BITS: u32 = 31;
    const INF_KEY: u64 = 0x7f80_0000;
    #[inline(always)]
    fn key(self) -> u64 {
        (self.to_bits() & 0x7fff_ffff) as u64
    }
    fn of_key(key: u64) -> Self {
        f32::from_bits(key as u32)
    }
    fn block_counts(x: &[Self], lo: u64, hi: u64) -> ([u32; 5], u64) {
        let (counts, above) = counts_f32(x, lo as u32, hi as u32);
        (counts, above as u64)
    }
    fn gather_into(x: &[Self], lo: u64, hi: u64, out: &mut Vec<u64>) {
        gather_f32(x, lo as u32, hi as u32, out)
    }
    fn floor_of(x: f64) -> Self {
        let r = x as f32;
        if (r as f64) > x {
            // x >= 0, so r > 0 here: the next float down is one key below.
            f32::from_bits(r.to_bits() - 1)
        } else {
            r
        }
    }
}

impl Magnitude for f64 {
    const KEY_BITS: u32 = 63;
    const INF_KEY: u64 = 0x7ff0_0000_0000_0000;
    #[inline(always)]
    fn key(self) -> u64 {
        self.to_bits() & 0x7fff_ffff_ffff_ffff
    }
    fn of_key(key: u64) -> Self {
        f64::from_bits(key)
    }
    fn floor_of(x: f64) -> Self {
        x
    }
    fn block_counts(x: &[Self], lo: u64, hi: u64) -> ([u32; 5], u64) {
        counts_f64(x, lo, hi)
    }
    fn gather_into(x: &[Self], lo: u64, hi: u64, out: &mut Vec<u64>) {
        gather_f64(x, lo, hi, out)
    }
}

/// What the selection reads: layer elements, or keys gathered by an earlier pass.
trait Keyed: Copy + Send + Sync {
    fn k(self) -> u64;
}

impl<T: Magnitude> Keyed for T {
    #[inline(always)]
    fn k(self) -> u64 {
        self.key()
    }
}

/// A gathered key (a newtype, so it does not collide with the blanket impl above).
#[derive(Clone, Copy)]
struct Gathered(u64);

impl Keyed for Gathered {
    #[inline(always)]
    fn k(self) -> u64 {
        self.0
    }
}

/// Bits of a histogram digit: 2048 counters, 8 KiB, stay in L1.
const DIGIT: u32 = 11;
/// A bucket this small is selected in memory.
const SELECT_MAX: usize = 1 << 12;

/// The keys `k` with `k >> shift == prefix`: one bucket of the radix selection.
#[derive(Clone, Copy, Debug)]
struct Group {
    prefix: u64,
    shift: u32,
}

impl Group {
    #[inline(always)]
    fn holds(self, k: u64) -> bool {
        k >> self.shift == self.prefix
    }
    /// The largest key the group can hold.
    fn top(self) -> u64 {
        (self.prefix << self.shift) | ((1u64 << self.shift) - 1)
    }
}

/// Where the selection stands: ranks `rank` (and, if `pair`, `rank + 1`) of the keys sorted
/// ascending are the ranks `rank` (`rank + 1`) inside `group`, which holds `count` keys.
#[derive(Clone, Copy, Debug)]
struct Target {
    group: Group,
    rank: usize,
    count: usize,
    pair: bool,
    /// The smallest key above the source the pass reads (`u64::MAX` if none).
    above: u64,
    /// No pass has run yet: the next one reads every key and counts the NaNs.
    first: bool,
}

/// The two order statistics, as keys; `None` when some magnitude is NaN.
type Picked = Option<(u64, u64)>;

fn histogram<K: Keyed>(x: &[K], g: Group, shift: u32, inf: u64) -> (Vec<u32>, usize) {
    let mask = (1u64 << (g.shift - shift)) - 1;
    // Four interleaved tables: runs of equal digits do not wait on each other's increments.
    let mut h = vec![[0u32; 4]; 1 << (g.shift - shift)];
    let mut nan = 0;
    let quads = x.chunks_exact(4);
    let rest = quads.remainder();
    for q in quads {
        for (j, v) in q.iter().enumerate() {
            let k = v.k();
            nan += (k > inf) as usize;
            if g.holds(k) {
                h[((k >> shift) & mask) as usize][j] += 1;
            }
        }
    }
    for v in rest {
        let k = v.k();
        nan += (k > inf) as usize;
        if g.holds(k) {
            h[((k >> shift) & mask) as usize][0] += 1;
        }
    }
    (h.iter().map(|c| c.iter().sum()).collect(), nan)
}

fn gather<K: Keyed>(x: &[K], g: Group, inf: u64) -> (Vec<u64>, usize, u64) {
    let (mut keys, mut nan, mut above) = (Vec::new(), 0, u64::MAX);
    let top = g.top();
    for v in x {
        let k = v.k();
        nan += (k > inf) as usize;
        // half the keys are above: a select, not a branch
        above = above.min(if k > top { k } else { u64::MAX });
        if g.holds(k) {
            keys.push(k);
        }
    }
    (keys, nan, above)
}

/// Elements a bracket pass counts before it gathers: the gather then reads them from L1.
const BLOCK: usize = 1024;

/// What one pass of a sampled bracket `[lo, hi]` of keys finds: how many keys lie below it,
/// are NaN, equal `lo`, equal `hi` (when `hi != lo`); the keys strictly inside (`None` once
/// they pass half of what was read: the sample misjudged and the memory would grow); and the
/// smallest key above it.
struct Tally {
    below: usize,
    nan: usize,
    at_lo: usize,
    at_hi: usize,
    inside: Option<Vec<u64>>,
    above: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            below: 0,
            nan: 0,
            at_lo: 0,
            at_hi: 0,
            inside: Some(Vec::new()),
            above: u64::MAX,
        }
    }

    fn merge(mut self, other: Tally) -> Tally {
        self.below += other.below;
        self.nan += other.nan;
        self.at_lo += other.at_lo;
        self.at_hi += other.at_hi;
        self.above = self.above.min(other.above);
        self.inside = self.inside.zip(other.inside).map(|(mut a, b)| {
            a.extend(b);
            a
        });
        self
    }
}

/// The bracket pass over one chunk (`hi` at most infinity's key).
fn bracket<T: Magnitude>(x: &[T], lo: u64, hi: u64) -> Tally {
    let mut t = Tally::new();
    let cap = x.len() / 2 + 1;
    for block in x.chunks(BLOCK) {
        let ([below, nan, at_lo, inside, at_hi], above) = T::block_counts(block, lo, hi);
        t.below += below as usize;
        t.nan += nan as usize;
        t.at_lo += at_lo as usize;
        t.at_hi += at_hi as usize;
        t.above = t.above.min(above);
        if inside > 0 {
            t.inside = t.inside.filter(|k| k.len() + inside as usize <= cap);
            if let Some(k) = t.inside.as_mut() {
                T::gather_into(block, lo, hi, k);
            }
        }
    }
    t
}

fn min_above<K: Keyed>(x: &[K], top: u64) -> u64 {
    x.iter()
        .map(|v| v.k())
        .filter(|&k| k > top)
        .min()
        .unwrap_or(u64::MAX)
}

/// Radix selection of `t` over `src`: histogram passes until the group is small, then a
/// gather and an in-memory select.
fn select<K: Keyed>(src: &[&[K]], mut t: Target, inf: u64) -> Picked {
    let len: usize = src.iter().map(|s| s.len()).sum();
    loop {
        if t.group.shift == 0 {
            // Every key of the group is its prefix.
            let lo = t.group.prefix;
            let hi = if t.pair && t.rank + 1 == t.count {
                let parts = chunk_partials(src, |c| min_above(c, lo));
                parts.into_iter().flatten().fold(t.above, u64::min)
            } else {
                lo
            };
            return Some((lo, hi));
        }
        // Gather once the group is a small part of the source (the memory stays small),
        // or small enough to select outright.
        if t.count <= SELECT_MAX || t.count <= len / 8 {
            let parts = chunk_partials(src, |c| gather(c, t.group, inf));
            let (mut keys, mut nan, mut above) = (Vec::with_capacity(t.count), 0, t.above);
            for (k, n, a) in parts.into_iter().flatten() {
                keys.extend(k);
                nan += n;
                above = above.min(a);
            }
            if t.first && nan > 0 {
                return None;
            }
            return select_keys(
                keys,
                Target {
                    above,
                    first: false,
                    ..t
                },
            );
        }
        let shift = t.group.shift.saturating_sub(DIGIT);
        let parts = chunk_partials(src, |c| histogram(c, t.group, shift, inf));
        let mut counts = vec![0usize; 1 << (t.group.shift - shift)];
        let mut nan = 0;
        for (h, n) in parts.into_iter().flatten() {
            counts.iter_mut().zip(h).for_each(|(c, x)| *c += x as usize);
            nan += n;
        }
        if t.first && nan > 0 {
            return None;
        }
        // The bucket holding the rank (the counts add up to t.count > t.rank). Every round
        // narrows the group by one digit, so the loop ends.
        let (mut digit, mut below) = (0, 0);
        while digit + 1 < counts.len() && below + counts[digit] <= t.rank {
            below += counts[digit];
            digit += 1;
        }
        t.group = Group {
            prefix: (t.group.prefix << (t.group.shift - shift)) | digit as u64,
            shift,
        };
        t.rank -= below;
        t.count = counts[digit];
        t.first = false;
    }
}

/// Keys sampled to bracket a rank: enough that the bracket holds a small share of the keys,
/// few enough to select among in a fraction of one pass.
const SAMPLE_MIN: usize = 1 << 10;
const SAMPLE_MAX: usize = 1 << 16;
/// Consecutive keys a sample takes at each of its places.
const SAMPLE_RUN: usize = 16;

/// The indices a sample of `n` > `SELECT_MAX` keys reads, ascending: runs of consecutive
/// keys, evenly spaced. One cache line serves a run, where keys spaced singly would each
/// wait on memory.
fn sample_indices(n: usize) -> impl Iterator<Item = usize> {
    let runs = (n / 32).clamp(SAMPLE_MIN, SAMPLE_MAX) / SAMPLE_RUN;
    (0..runs).flat_map(move |r| {
        let base = (r as u128 * (n - SAMPLE_RUN) as u128 / runs as u128) as usize;
        base..base + SAMPLE_RUN
    })
}

/// A key range that most likely holds ranks `rank` (and `rank + 1`) of the `n` keys of
/// `src` (`n` > `SELECT_MAX`): the sample's order statistics four standard deviations either
/// side of the rank's place. `None` when it would hold a quarter of the keys or more (heavy
/// ties), where radix selection is the better road.
fn sampled_bracket<K: Keyed>(
    src: &[&[K]],
    n: usize,
    rank: usize,
    pair: bool,
) -> Option<(u64, u64)> {
    let mut keys = Vec::new();
    let (mut layer, mut start) = (0, 0);
    for i in sample_indices(n) {
        while i >= start + src[layer].len() {
            start += src[layer].len();
            layer += 1;
        }
        keys.push(src[layer][i - start].k());
    }
    let m = keys.len();
    let f = (rank as f64 + 0.5) / n as f64;
    let (centre, spread) = (f * m as f64, 4.0 * (m as f64 * f * (1.0 - f)).sqrt() + 2.0);
    let lo_at = (centre - spread).floor();
    let hi_at = (centre + spread).ceil() + pair as usize as f64;
    if hi_at - lo_at.max(0.0) >= m as f64 / 4.0 {
        return None;
    }
    let (past_lo, lo) = if lo_at < 0.0 {
        (0, 0)
    } else {
        (
            lo_at as usize + 1,
            *keys.select_nth_unstable(lo_at as usize).1,
        )
    };
    // what lies past lo's place is all that the second select need look at
    let hi = if hi_at >= m as f64 {
        u64::MAX
    } else {
        *keys[past_lo..]
            .select_nth_unstable(hi_at as usize - past_lo)
            .1
    };
    // ties at either end are counted, not gathered: only the keys strictly inside cost
    let inside = keys.iter().filter(|&&k| k > lo && k < hi).count();
    (inside < m / 4).then_some((lo, hi))
}

/// Ranks `rank` and (if `pair`) `rank + 1` of the magnitudes of `src`, as keys;
/// `None` if a key is NaN: one pass over a sampled bracket, radix selection if it missed.
fn order_stats<T: Magnitude>(src: &[&[T]], rank: usize, pair: bool) -> Picked {
    let (bits, inf) = (T::KEY_BITS, T::INF_KEY);
    let n: usize = src.iter().map(|s| s.len()).sum();
    let all = Group {
        prefix: 0,
        shift: bits,
    };
    let mut start = Target {
        group: all,
        rank,
        count: n,
        pair,
        above: u64::MAX,
        first: true,
    };
    if n > SELECT_MAX {
        if let Some((lo, hi)) = sampled_bracket(src, n, rank, pair) {
            let hi = hi.min(inf);
            let t = chunk_partials(src, |c| bracket(c, lo, hi))
                .into_iter()
                .flatten()
                .fold(Tally::new(), Tally::merge);
            if t.nan > 0 {
                return None;
            }
            start.first = false;
            if let Some(picked) = from_bracket(t, (lo, hi), bits, rank, pair) {
                return picked;
            }
        }
    }
    select(src, start, inf)
}

/// Ranks `rank` (and `rank + 1`) from a bracket's tally, if the bracket holds them. In
/// ascending order the keys are: `below` unknown ones, `at_lo` times `lo`, the keys inside,
/// `at_hi` times `hi`, then `above` and unknown ones.
fn from_bracket(
    t: Tally,
    (lo, hi): (u64, u64),
    bits: u32,
    rank: usize,
    pair: bool,
) -> Option<Picked> {
    let inside = t.inside?;
    let start = t.below + t.at_lo;
    let end = start + inside.len();
    let (first_hi, after) = (end + t.at_hi, if t.at_hi > 0 { hi } else { t.above });
    // a rank outside the inside keys, when the tally knows it
    let known = |r: usize| match r {
        r if r >= t.below && r < start => Some(lo),
        r if r >= end && r < first_hi => Some(hi),
        r if r == first_hi => Some(t.above),
        _ => None,
    };
    let second = rank + pair as usize;
    if rank < t.below || second > first_hi {
        return None;
    }
    if (start..end).contains(&rank) {
        let both = pair && second < end;
        let inner = Target {
            group: Group {
                prefix: 0,
                shift: bits,
            },
            rank: rank - start,
            count: inside.len(),
            pair: both,
            above: after,
            first: false,
        };
        let picked = select_keys(inside, inner);
        return Some(picked.map(|(a, b)| (a, if pair && !both { after } else { b })));
    }
    let a = known(rank)?;
    if (start..end).contains(&second) {
        // `rank` is the last `lo`; the next is the smallest key inside
        return Some(Some((a, inside.iter().copied().min().unwrap_or(after))));
    }
    Some(Some((a, known(second)?)))
}

/// `select` over keys already gathered, which are all of `t.group`.
fn select_keys(mut keys: Vec<u64>, t: Target) -> Picked {
    if keys.len() <= SELECT_MAX {
        return Some(pick(&mut keys, t.rank, t.pair, t.above));
    }
    let gathered: Vec<Gathered> = keys.into_iter().map(Gathered).collect();
    select(&[&gathered], t, u64::MAX)
}

/// Ranks `rank` and `rank + 1` (or `rank` twice) of `keys`, `above` the next key beyond them.
fn pick(keys: &mut [u64], rank: usize, pair: bool, above: u64) -> (u64, u64) {
    let (_, &mut lo, rest) = keys.select_nth_unstable(rank);
    let hi = if pair {
        rest.iter().copied().min().unwrap_or(above)
    } else {
        lo
    };
    (lo, hi)
}

/// `np.percentile(|x|, 100 * ratio)` over the elements of all `layers` together, with
/// NumPy's default 'linear' method and the same float64 operations; NaN when a magnitude is
/// NaN, `None` when there is no element. `ratio` is in [0, 1].
pub fn threshold<T: Magnitude>(layers: &[&[T]], ratio: f64) -> Option<f64> {
    let n: usize = layers.iter().map(|l| l.len()).sum();
    if n == 0 {
        return None;
    }
    // NumPy divides the percentile by 100 and places it at (n - 1) * q in the sorted array.
    let q = (100.0 * ratio) / 100.0;
    let last = (n - 1) as f64;
    let v = last * q;
    // From the last index on, NumPy takes the last element twice, with its floor index
    // replaced by -1 before the weight is computed.
    let (rank, pair, gamma) = if v >= last {
        (n - 1, false, v + 1.0)
    } else {
        let i = v.floor();
        (i as usize, true, v - i)
    };
    let Some((lo, hi)) = order_stats(layers, rank, pair) else {
        return Some(f64::NAN);
    };
    let (a, b) = (T::of_key(lo).to_f64(), T::of_key(hi).to_f64());
    // numpy's _lerp
    let d = b - a;
    Some(if gamma >= 0.5 {
        b - d * (1.0 - gamma)
    } else {
        a + d * gamma
    })
}

/// The threshold of each layer on its own (`None` for an empty one). Small layers are
/// spread over the pool one per task; a large one spreads its own passes.
pub fn layer_thresholds<T: Magnitude>(layers: &[&[T]], ratio: f64) -> Vec<Option<f64>> {
    let small: Vec<&[T]> = layers
        .iter()
        .copied()
        .filter(|l| l.len() <= CHUNK)
        .collect();
    // A layer of at most CHUNK elements is one chunk: one partial, none when empty.
    let mut small = chunk_partials(&small, |l| threshold(&[l], ratio)).into_iter();
    layers
        .iter()
        .map(|l| {
            if l.len() <= CHUNK {
                small.next().and_then(|p| p.into_iter().next().flatten())
            } else {
                threshold(&[l], ratio)
            }
        })
        .collect()
}

crate::bundle! {
    /// A layer pruned into a new buffer.
    pub struct PruneInto<'a, T> {
        pub w: &'a [T],
        pub out: &'a mut [T],
        pub threshold: Each<f64>,
    }
}

crate::bundle! {
    /// A layer and the mask it gets.
    pub struct MaskInto<'a, T> {
        pub w: &'a [T],
        pub mask: &'a mut [u8],
        pub threshold: Each<f64>,
    }
}

crate::bundle! {
    /// A layer and its mask, applied in place.
    pub struct Masked<'a, T> {
        pub p: &'a mut [T],
        pub mask: &'a [u8],
    }
}

crate::bundle! {
    /// A layer pruned in place, its mask narrowed to what survives.
    pub struct PruneInPlace<'a, T> {
        pub p: &'a mut [T],
        pub mask: &'a mut [u8],
        pub threshold: Each<f64>,
    }
}

crate::simd! {
    fn prune_slice<T: Real>(w: &[T], out: &mut [T], cut: T) {
        let w = &w[..out.len()];
        for (o, &x) in out.iter_mut().zip(w) {
            *o = if x.abs() > cut { x } else { T::ZERO };
        }
    }
}

crate::simd! {
    fn mask_slice<T: Real>(w: &[T], mask: &mut [u8], cut: T) {
        let w = &w[..mask.len()];
        for (m, &x) in mask.iter_mut().zip(w) {
            *m = (x.abs() > cut) as u8;
        }
    }
}

crate::simd! {
    fn apply_slice<T: Real>(p: &mut [T], mask: &[u8]) {
        let mask = &mask[..p.len()];
        for (x, &m) in p.iter_mut().zip(mask) {
            *x = if m != 0 { *x } else { T::ZERO };
        }
    }
}

crate::simd! {
    fn prune_in_place_slice<T: Real>(p: &mut [T], mask: &mut [u8], cut: T) {
        let mask = &mut mask[..p.len()];
        for (x, m) in p.iter_mut().zip(mask) {
            let keep = (*m != 0) & (x.abs() > cut);
            *m = keep as u8;
            *x = if keep { *x } else { T::ZERO };
        }
    }
}

/// `out = w` where `|w| > threshold`, else `+0.0`.
pub fn prune_into<T: Magnitude>(layers: Vec<PruneInto<'_, T>>) {
    for_each_chunk(layers, 2 * std::mem::size_of::<T>(), |l| {
        prune_slice(l.w, l.out, T::floor_of(l.threshold.0))
    });
}

/// `mask = |w| > threshold`.
pub fn mask_into<T: Magnitude>(layers: Vec<MaskInto<'_, T>>) {
    for_each_chunk(layers, std::mem::size_of::<T>() + 1, |l| {
        mask_slice(l.w, l.mask, T::floor_of(l.threshold.0))
    });
}

/// `p = +0.0` where the mask is false, in place.
pub fn apply_masks<T: Real>(layers: Vec<Masked<'_, T>>) {
    for_each_chunk(layers, 2 * std::mem::size_of::<T>() + 1, |l| {
        apply_slice(l.p, l.mask)
    });
}

/// `mask &= |p| > threshold`, then `p = +0.0` where the mask is false, in place.
pub fn prune_in_place<T: Magnitude>(layers: Vec<PruneInPlace<'_, T>>) {
    for_each_chunk(layers, 2 * std::mem::size_of::<T>() + 2, |l| {
        prune_in_place_slice(l.p, l.mask, T::floor_of(l.threshold.0))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::pool::{set_num_threads, PARALLEL_MIN_BYTES};
    use crate::runtime::random::Stream;

    /// The percentile by sorting, as NumPy's documentation defines it.
    fn sorted_percentile(x: &[f64], ratio: f64) -> f64 {
        let mut a: Vec<f64> = x.iter().map(|v| v.abs()).collect();
        if a.iter().any(|v| v.is_nan()) {
            return f64::NAN;
        }
        a.sort_by(|p, q| p.partial_cmp(q).unwrap());
        let n = a.len();
        let v = (n - 1) as f64 * ((100.0 * ratio) / 100.0);
        let (i, j, g) = if v >= (n - 1) as f64 {
            (n - 1, n - 1, v + 1.0)
        } else {
            (v.floor() as usize, v.floor() as usize + 1, v - v.floor())
        };
        let d = a[j] - a[i];
        if g >= 0.5 {
            a[j] - d * (1.0 - g)
        } else {
            a[i] + d * g
        }
    }

    fn normal(n: usize, seed: u64, scale: f64) -> Vec<f64> {
        let s = Stream::new(seed, 0);
        (0..n as u64).map(|i| scale * s.normal(i)).collect()
    }

    fn same(a: f64, b: f64) -> bool {
        a.to_bits() == b.to_bits()
    }

    fn check(x: &[f64], ratios: &[f64]) {
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let x32_64: Vec<f64> = x32.iter().map(|&v| v as f64).collect();
        for &r in ratios {
            let want = sorted_percentile(x, r);
            let got = threshold(&[x], r).unwrap();
            assert!(same(got, want), "f64 n={} r={r}: {got} != {want}", x.len());
            let want = sorted_percentile(&x32_64, r);
            let got = threshold(&[&x32[..]], r).unwrap();
            assert!(same(got, want), "f32 n={} r={r}: {got} != {want}", x.len());
        }
    }

    const RATIOS: [f64; 9] = [0.0, 1e-9, 0.1, 0.3, 0.5, 0.7, 0.999, 1.0 - 1e-12, 1.0];

    #[test]
    fn the_threshold_is_the_sorted_percentile() {
        for n in [1, 2, 3, 10, 4095, 4097, 50_000, 300_001] {
            check(&normal(n, n as u64, 1.0), &RATIOS);
        }
    }

    #[test]
    fn ties_zeros_and_infinities() {
        let ties: Vec<f64> = (0..100_000).map(|i| ((i % 7) as f64 - 3.0) * 0.5).collect();
        check(&ties, &RATIOS);
        check(&[2.5; 20_000], &RATIOS);
        check(&[-0.0; 9], &RATIOS);
        let mut inf = normal(10_000, 1, 1.0);
        inf[5] = f64::INFINITY;
        inf[17] = f64::NEG_INFINITY;
        // NumPy interpolates into infinity (inf * 0 is NaN), all of which the sorted
        // percentile reproduces.
        check(&inf, &RATIOS);
        check(&[1.0, f64::INFINITY], &RATIOS);
    }

    #[test]
    fn heavy_ties_at_the_ends_of_the_bracket() {
        // Weights already 30% pruned (zeros), and a run of equal values past the middle.
        let mut x = normal(200_000, 4, 1.0);
        for (i, v) in x.iter_mut().enumerate() {
            if i % 10 < 3 {
                *v = 0.0;
            } else if i % 10 == 5 {
                *v = -0.8;
            }
        }
        check(
            &x,
            &[
                0.0, 0.2, 0.299, 0.3, 0.30001, 0.31, 0.5, 0.65, 0.7, 0.75, 1.0,
            ],
        );
        check(&vec![0.0; 50_000], &[0.0, 0.3, 1.0]);
    }

    #[test]
    fn random_ties_sizes_and_ratios() {
        // Past SELECT_MAX, with few distinct magnitudes (ties at and inside every bracket).
        let s = Stream::new(21, 0);
        for case in 0..40u64 {
            let n = 4097 + (s.bits(case) % 30_000) as usize;
            let levels = 1 + s.bits(case + 100) % 40;
            let x: Vec<f64> = (0..n as u64)
                .map(|i| (s.bits(1000 * case + i + 7) % levels) as f64 * 0.25 - 2.0)
                .collect();
            let ratio = s.uniform(case + 200);
            check(&x, &[ratio, ratio * ratio, 1.0 - ratio * ratio]);
        }
    }

    #[test]
    fn two_large_runs_of_equal_keys_resolve_to_the_last_digit() {
        // The rank is the last of 5000 equal keys (more than SELECT_MAX, too many to gather),
        // the next rank the first of the other run: the selection narrows every digit.
        let x: Vec<f64> = (0..10_000)
            .map(|i| if i % 2 == 0 { 1.0 } else { 2.0 })
            .collect();
        let r = 4999.0 / 9999.0;
        check(&x, &[r, 0.5, 0.49]);
    }

    #[test]
    fn a_large_gathered_bucket_is_narrowed_again() {
        // 20000 keys in one top-digit bucket of 300000: gathered, then histogrammed.
        let mut x = normal(300_000, 3, 1000.0);
        for (i, v) in x.iter_mut().take(20_000).enumerate() {
            *v = 1.0 + i as f64 * 1e-9;
        }
        check(&x, &[0.01, 0.03, 0.05, 20_000.0 / 299_999.0]);
    }

    #[test]
    fn a_misleading_sample_falls_back_to_radix_selection() {
        // Every sampled index (a multiple of 32) holds a small value, every other a large one:
        // the bracket around the sample's 30% misses the rank.
        let x: Vec<f64> = (0..100_000)
            .map(|i| {
                if i % 32 == 0 {
                    1e-3 * i as f64
                } else {
                    1e3 + i as f64
                }
            })
            .collect();
        check(&x, &[0.3, 0.01, 0.5]);
    }

    #[test]
    fn radix_selection_alone_is_exact() {
        // The road taken when no bracket is found, on data the bracket would have served.
        let mut x = normal(300_000, 3, 1000.0);
        for (i, v) in x.iter_mut().take(20_000).enumerate() {
            *v = 1.0 + i as f64 * 1e-9;
        }
        let runs: Vec<f64> = (0..10_000).map(|i| (i % 2 + 1) as f64).collect();
        for data in [&x, &runs] {
            let mut sorted: Vec<u64> = data.iter().map(|v| v.key()).collect();
            sorted.sort_unstable();
            for rank in [0, 1, 4999, 5000, 9998, data.len() / 3, data.len() - 2] {
                let start = Target {
                    group: Group {
                        prefix: 0,
                        shift: f64::KEY_BITS,
                    },
                    rank,
                    count: data.len(),
                    pair: true,
                    above: u64::MAX,
                    first: true,
                };
                let got = select(&[&data[..]], start, f64::INF_KEY);
                assert_eq!(got, Some((sorted[rank], sorted[rank + 1])), "rank {rank}");
            }
        }
    }

    #[test]
    fn nan_anywhere_gives_nan_and_empty_gives_none() {
        for n in [1, 100, 100_000] {
            let mut x = normal(n, 5, 1.0);
            x[n / 2] = f64::NAN;
            for r in RATIOS {
                assert!(threshold(&[&x[..]], r).unwrap().is_nan());
            }
            let layers = [&x[..], &[0.5][..]];
            assert!(threshold(&layers, 0.3).unwrap().is_nan());
        }
        let empty: [&[f32]; 2] = [&[], &[]];
        assert_eq!(threshold(&empty, 0.3), None);
        assert_eq!(layer_thresholds(&empty, 0.3), vec![None, None]);
    }

    #[test]
    fn global_is_the_threshold_of_the_concatenation() {
        let parts = [
            normal(70_000, 1, 1.0),
            normal(5, 2, 3.0),
            vec![],
            normal(CHUNK, 3, 0.1),
        ];
        let all: Vec<f64> = parts.concat();
        let views: Vec<&[f64]> = parts.iter().map(|p| &p[..]).collect();
        for r in RATIOS {
            assert!(same(
                threshold(&views, r).unwrap(),
                sorted_percentile(&all, r)
            ));
        }
        let each = layer_thresholds(&views, 0.3);
        for (p, t) in parts.iter().zip(each) {
            match t {
                None => assert!(p.is_empty()),
                Some(t) => assert!(same(t, sorted_percentile(p, 0.3))),
            }
        }
    }

    #[test]
    fn floor_of_keeps_the_float64_comparison() {
        for x in [0.1f64, 1.0 / 3.0, 1e-40, 3.5e38, 1e300, f64::INFINITY] {
            let c = f32::floor_of(x);
            assert!(c as f64 <= x);
            let up = if c.is_finite() {
                f32::from_bits(c.to_bits() + 1)
            } else {
                c
            };
            assert!(up as f64 > x || c == f32::INFINITY, "{x}");
        }
        assert!(f32::floor_of(f64::NAN).is_nan());
    }

    #[test]
    fn pruned_entries_are_positive_zero() {
        let w = [-0.0f32, f32::NAN, -3.0, 0.5, -0.25, 2.0];
        let mut out = [9.0f32; 6];
        prune_into(vec![PruneInto {
            w: &w,
            out: &mut out,
            threshold: Each(0.5),
        }]);
        let bits: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, [0.0f32, 0.0, -3.0, 0.0, 0.0, 2.0].map(f32::to_bits));

        let mut mask = [7u8; 6];
        mask_into(vec![MaskInto {
            w: &w,
            mask: &mut mask,
            threshold: Each(f64::NAN),
        }]);
        assert_eq!(mask, [0; 6]);

        let mut p = w;
        apply_masks(vec![Masked {
            p: &mut p,
            mask: &[0, 0, 1, 0, 2, 1],
        }]);
        let bits: Vec<u32> = p.iter().map(|v| v.to_bits()).collect();
        assert_eq!(bits, [0.0f32, 0.0, -3.0, 0.0, -0.25, 2.0].map(f32::to_bits));

        // A weight once masked stays pruned, however large it is now.
        let mut p = [5.0f64, 5.0, 0.1, -4.0];
        let mut mask = [0u8, 1, 1, 1];
        prune_in_place(vec![PruneInPlace {
            p: &mut p,
            mask: &mut mask,
            threshold: Each(0.1),
        }]);
        assert_eq!((p, mask), ([0.0, 5.0, 0.0, -4.0], [0, 1, 0, 1]));
    }

    #[test]
    fn one_thread_equals_many() {
        let n = PARALLEL_MIN_BYTES / 4 + 3 * CHUNK + 11;
        let x: Vec<f32> = normal(n, 9, 1.0).into_iter().map(|v| v as f32).collect();
        let small: Vec<f32> = x[..1000].to_vec();
        let layers = [&x[..], &small[..]];
        let run = |threads| {
            set_num_threads(threads);
            let t = threshold(&layers, 0.3).unwrap();
            let each = layer_thresholds(&layers, 0.7);
            let mut out = vec![0.0f32; n];
            prune_into(vec![PruneInto {
                w: &x,
                out: &mut out,
                threshold: Each(t),
            }]);
            (
                t.to_bits(),
                each,
                out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            )
        };
        let one = run(1);
        assert_eq!(one, run(2));
        assert_eq!(one, run(3));
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let all = [x64, small.iter().map(|&v| v as f64).collect()].concat();
        assert!(same(f64::from_bits(one.0), sorted_percentile(&all, 0.3)));
    }
}
