//! Block-wise 8-bit optimizer state: bitsandbytes' dynamic quantization, as its CPU backend
//! encodes and decodes it.
//!
//! A state array of `n` values is stored as `n` one-byte codes and one float32 absolute
//! maximum per block of [`BLOCK`] values (the last block may be shorter). A code indexes a
//! sorted map of 256 float32 values in [-1, 1] (signed, for first moments) or [0, 1]
//! (unsigned, for second moments); the value is `map[code] * absmax`. Encoding scales by
//! `1 / absmax` and looks the code up in a table of 65,536 entries over [-1, 1] (the nearest
//! map value to each of 65,536 evenly spaced points), which is what bitsandbytes writes, not
//! always the exact nearest code; the table is held in a few kilobytes ([`Encoder`]), or in
//! registers as a search over its 255 steps ([`Search`], with AVX-512). A block whose maximum
//! is 0 is all code 0.

use std::sync::OnceLock;

use crate::runtime::bundle::Part;

/// Values per block; one float32 maximum each.
pub const BLOCK: usize = 256;
/// Arrays with fewer elements keep float32 state (bitsandbytes' `min_8bit_size`).
pub const MIN_ELEMENTS: usize = 4096;
/// Entries of the encoding table.
const LUT: usize = 1 << 16;

/// The number of blocks (and maxima) of an array of `n` values.
pub fn blocks(n: usize) -> usize {
    n.div_ceil(BLOCK)
}

/// The float32 bits of `bitsandbytes.functional.create_dynamic_map(signed=True)`.
#[rustfmt::skip]
const SIGNED_BITS: [u32; 256] = [
    0xBF7E3333, 0xBF7A999A, 0xBF770000, 0xBF736666, 0xBF6FCCCD, 0xBF6C3333, 0xBF68999A, 0xBF650000,
    0xBF616666, 0xBF5DCCCD, 0xBF5A3333, 0xBF56999A, 0xBF530000, 0xBF4F6666, 0xBF4BCCCD, 0xBF483333,
    0xBF44999A, 0xBF410000, 0xBF3D6666, 0xBF39CCCD, 0xBF363334, 0xBF32999A, 0xBF2F0000, 0xBF2B6666,
    0xBF27CCCD, 0xBF243334, 0xBF20999A, 0xBF1D0000, 0xBF196666, 0xBF15CCCD, 0xBF123334, 0xBF0E999A,
    0xBF0B0000, 0xBF076666, 0xBF03CCCC, 0xBF003333, 0xBEF93332, 0xBEF20000, 0xBEEACCCC, 0xBEE3999A,
    0xBEDC6666, 0xBED53333, 0xBECE0000, 0xBEC6CCCC, 0xBEBF999A, 0xBEB86666, 0xBEB13333, 0xBEAA0000,
    0xBEA2CCCC, 0xBE9B999A, 0xBE946666, 0xBE8D3334, 0xBE860000, 0xBE7D9999, 0xBE6F3333, 0xBE60CCCD,
    0xBE526666, 0xBE440000, 0xBE35999A, 0xBE273333, 0xBE18CCCD, 0xBE0A6666, 0xBDF80000, 0xBDDB3334,
    0xBDC9EB85, 0xBDC428F7, 0xBDBE6667, 0xBDB8A3D7, 0xBDB2E148, 0xBDAD1EB8, 0xBDA75C2A, 0xBDA1999A,
    0xBD9BD70A, 0xBD96147B, 0xBD9051EB, 0xBD8A8F5D, 0xBD84CCCD, 0xBD7E147B, 0xBD728F5D, 0xBD670A3D,
    0xBD5B851F, 0xBD500000, 0xBD447AE1, 0xBD38F5C3, 0xBD2D70A3, 0xBD21EB85, 0xBD166667, 0xBD0AE148,
    0xBCFEB852, 0xBCE7AE15, 0xBCD0A3D7, 0xBCB9999A, 0xBCA28F5D, 0xBC8B851F, 0xBC68F5C3, 0xBC3AE148,
    0xBC1F3B64, 0xBC160418, 0xBC0CCCCD, 0xBC039581, 0xBBF4BC6A, 0xBBE24DD3, 0xBBCFDF3B, 0xBBBD70A4,
    0xBBAB020D, 0xBB989374, 0xBB8624DD, 0xBB676C8A, 0xBB428F5C, 0xBB1DB22D, 0xBAF1A9FC, 0xBAA7EF9D,
    0xBA7765FF, 0xBA59E83E, 0xBA3C6A80, 0xBA1EECC1, 0xBA016F01, 0xB9C7E283, 0xB98CE705, 0xB923D70B,
    0xB8BA1F4B, 0xB88AEFB3, 0xB8378034, 0xB7B24206, 0xB70205FF, 0xB65A1A94, 0xB513A3B7, 0x00000000,
    0x3513A3B7, 0x365A1A94, 0x370205FF, 0x37B24206, 0x38378034, 0x388AEFB3, 0x38BA1F4B, 0x3923D70B,
    0x398CE705, 0x39C7E283, 0x3A016F01, 0x3A1EECC1, 0x3A3C6A80, 0x3A59E83E, 0x3A7765FF, 0x3AA7EF9D,
    0x3AF1A9FC, 0x3B1DB22D, 0x3B428F5C, 0x3B676C8A, 0x3B8624DD, 0x3B989374, 0x3BAB020D, 0x3BBD70A4,
    0x3BCFDF3B, 0x3BE24DD3, 0x3BF4BC6A, 0x3C039581, 0x3C0CCCCD, 0x3C160418, 0x3C1F3B64, 0x3C3AE148,
    0x3C68F5C3, 0x3C8B851F, 0x3CA28F5D, 0x3CB9999A, 0x3CD0A3D7, 0x3CE7AE15, 0x3CFEB852, 0x3D0AE148,
    0x3D166667, 0x3D21EB85, 0x3D2D70A3, 0x3D38F5C3, 0x3D447AE1, 0x3D500000, 0x3D5B851F, 0x3D670A3D,
    0x3D728F5D, 0x3D7E147B, 0x3D84CCCD, 0x3D8A8F5D, 0x3D9051EB, 0x3D96147B, 0x3D9BD70A, 0x3DA1999A,
    0x3DA75C2A, 0x3DAD1EB8, 0x3DB2E148, 0x3DB8A3D7, 0x3DBE6667, 0x3DC428F7, 0x3DC9EB85, 0x3DDB3334,
    0x3DF80000, 0x3E0A6666, 0x3E18CCCD, 0x3E273333, 0x3E35999A, 0x3E440000, 0x3E526666, 0x3E60CCCD,
    0x3E6F3333, 0x3E7D9999, 0x3E860000, 0x3E8D3334, 0x3E946666, 0x3E9B999A, 0x3EA2CCCC, 0x3EAA0000,
    0x3EB13333, 0x3EB86666, 0x3EBF999A, 0x3EC6CCCC, 0x3ECE0000, 0x3ED53333, 0x3EDC6666, 0x3EE3999A,
    0x3EEACCCC, 0x3EF20000, 0x3EF93332, 0x3F003333, 0x3F03CCCC, 0x3F076666, 0x3F0B0000, 0x3F0E999A,
    0x3F123334, 0x3F15CCCD, 0x3F196666, 0x3F1D0000, 0x3F20999A, 0x3F243334, 0x3F27CCCD, 0x3F2B6666,
    0x3F2F0000, 0x3F32999A, 0x3F363334, 0x3F39CCCD, 0x3F3D6666, 0x3F410000, 0x3F44999A, 0x3F483333,
    0x3F4BCCCD, 0x3F4F6666, 0x3F530000, 0x3F56999A, 0x3F5A3333, 0x3F5DCCCD, 0x3F616666, 0x3F650000,
    0x3F68999A, 0x3F6C3333, 0x3F6FCCCD, 0x3F736666, 0x3F770000, 0x3F7A999A, 0x3F7E3333, 0x3F800000
];

/// The float32 bits of `bitsandbytes.functional.create_dynamic_map(signed=False)`.
#[rustfmt::skip]
const UNSIGNED_BITS: [u32; 256] = [
    0x00000000, 0x34AE7BAA, 0x35500998, 0x360E9B38, 0x3692CCF6, 0x36DE4C51, 0x3714E5D5, 0x3783126E,
    0x37E171A0, 0x381FE868, 0x384F1800, 0x387E479A, 0x3896BB99, 0x38AE5364, 0x38C5EB31, 0x3906594B,
    0x394154CA, 0x397C5049, 0x399BA5E4, 0x39B923A2, 0x39D6A163, 0x39F41F22, 0x3A08CE71, 0x3A178D50,
    0x3A264C30, 0x3A350B10, 0x3A43C9EF, 0x3A5288D0, 0x3A6147AF, 0x3A70068E, 0x3A7EC56E, 0x3A958106,
    0x3ABA5E35, 0x3ADF3B64, 0x3B020C4A, 0x3B147AE1, 0x3B26E978, 0x3B395810, 0x3B4BC6A7, 0x3B5E3540,
    0x3B70A3D7, 0x3B818937, 0x3B8AC082, 0x3B93F7CF, 0x3B9D2F1A, 0x3BA66666, 0x3BAF9DB2, 0x3BB8D4FD,
    0x3BC20C4A, 0x3BCB4395, 0x3BD47AE1, 0x3BDDB22E, 0x3BE6E978, 0x3BF020C5, 0x3BF9580F, 0x3C0147AE,
    0x3C05E354, 0x3C0A7EF9, 0x3C0F1AA0, 0x3C13B645, 0x3C1851EB, 0x3C1CED92, 0x3C218937, 0x3C2F5C2A,
    0x3C466667, 0x3C5D70A3, 0x3C747AE2, 0x3C85C28F, 0x3C9147AF, 0x3C9CCCCD, 0x3CA851EB, 0x3CB3D70B,
    0x3CBF5C29, 0x3CCAE147, 0x3CD66667, 0x3CE1EB87, 0x3CED70A3, 0x3CF8F5C3, 0x3D023D70, 0x3D080000,
    0x3D0DC28F, 0x3D13851F, 0x3D1947AF, 0x3D1F0A3D, 0x3D24CCCD, 0x3D2A8F5C, 0x3D3051EB, 0x3D36147B,
    0x3D3BD70A, 0x3D41999A, 0x3D475C28, 0x3D4D1EB8, 0x3D52E147, 0x3D58A3D7, 0x3D5E6667, 0x3D6428F7,
    0x3D69EB87, 0x3D6FAE15, 0x3D7570A3, 0x3D7B3333, 0x3D807AE2, 0x3D835C2A, 0x3D863D71, 0x3D891EB8,
    0x3D8C0000, 0x3D8EE148, 0x3D91C290, 0x3D94A3D7, 0x3D97851F, 0x3D9A6667, 0x3D9D47AF, 0x3DA028F6,
    0x3DA30A3E, 0x3DA5EB85, 0x3DA8CCCD, 0x3DABAE15, 0x3DAE8F5C, 0x3DB170A4, 0x3DB451EB, 0x3DB73333,
    0x3DBA147B, 0x3DBCF5C3, 0x3DBFD70B, 0x3DC2B852, 0x3DC5999A, 0x3DC87AE2, 0x3DCB5C29, 0x3DD40000,
    0x3DE26666, 0x3DF0CCCD, 0x3DFF3333, 0x3E06CCCC, 0x3E0E0000, 0x3E153334, 0x3E1C6666, 0x3E23999A,
    0x3E2ACCCC, 0x3E320000, 0x3E393334, 0x3E406666, 0x3E47999A, 0x3E4ECCCC, 0x3E560000, 0x3E5D3334,
    0x3E646666, 0x3E6B999A, 0x3E72CCCC, 0x3E7A0000, 0x3E809999, 0x3E843333, 0x3E87CCCD, 0x3E8B6666,
    0x3E8F0000, 0x3E92999A, 0x3E963333, 0x3E99CCCC, 0x3E9D6666, 0x3EA10000, 0x3EA4999A, 0x3EA83333,
    0x3EABCCCC, 0x3EAF6666, 0x3EB30000, 0x3EB6999A, 0x3EBA3333, 0x3EBDCCCC, 0x3EC16666, 0x3EC50000,
    0x3EC8999A, 0x3ECC3333, 0x3ECFCCCC, 0x3ED36666, 0x3ED70000, 0x3EDA999A, 0x3EDE3333, 0x3EE1CCCC,
    0x3EE56666, 0x3EE90000, 0x3EEC999A, 0x3EF03333, 0x3EF3CCCC, 0x3EF76666, 0x3EFB0000, 0x3EFE9999,
    0x3F01199A, 0x3F02E666, 0x3F04B333, 0x3F068000, 0x3F084CCC, 0x3F0A199A, 0x3F0BE666, 0x3F0DB334,
    0x3F0F8000, 0x3F114CCD, 0x3F13199A, 0x3F14E666, 0x3F16B334, 0x3F188000, 0x3F1A4CCD, 0x3F1C199A,
    0x3F1DE666, 0x3F1FB334, 0x3F218000, 0x3F234CCD, 0x3F25199A, 0x3F26E666, 0x3F28B334, 0x3F2A8000,
    0x3F2C4CCD, 0x3F2E199A, 0x3F2FE666, 0x3F31B334, 0x3F338000, 0x3F354CCD, 0x3F37199A, 0x3F38E666,
    0x3F3AB334, 0x3F3C8000, 0x3F3E4CCD, 0x3F40199A, 0x3F41E666, 0x3F43B334, 0x3F458000, 0x3F474CCC,
    0x3F49199A, 0x3F4AE666, 0x3F4CB334, 0x3F4E8000, 0x3F504CCC, 0x3F52199A, 0x3F53E666, 0x3F55B334,
    0x3F578000, 0x3F594CCC, 0x3F5B199A, 0x3F5CE666, 0x3F5EB334, 0x3F608000, 0x3F624CCC, 0x3F64199A,
    0x3F65E666, 0x3F67B334, 0x3F698000, 0x3F6B4CCC, 0x3F6D199A, 0x3F6EE666, 0x3F70B334, 0x3F728000,
    0x3F744CCC, 0x3F76199A, 0x3F77E666, 0x3F79B334, 0x3F7B8000, 0x3F7D4CCC, 0x3F7F199A, 0x3F800000
];

/// One map: its 256 values and the encoding table over it, compacted (see [`Encoder`]).
pub struct Codebook {
    pub values: [f32; 256],
    /// Byte `b` of every value in `planes[b]`, for the AVX-512 decoder's byte permutes.
    planes: [[u8; 256]; 4],
    encoder: Encoder,
    /// The encoding table as a search (the AVX-512 path, see [`Search`]).
    search: Search,
}

impl Codebook {
    fn new(bits: &[u32; 256]) -> Self {
        let values = bits.map(f32::from_bits);
        let table = table(&values);
        Codebook {
            values,
            planes: std::array::from_fn(|b| bits.map(|v| v.to_le_bytes()[b])),
            encoder: Encoder::new(&table),
            search: Search::new(&table),
        }
    }

    /// The map for first moments (values of either sign).
    pub fn signed() -> &'static Codebook {
        static BOOK: OnceLock<Codebook> = OnceLock::new();
        BOOK.get_or_init(|| Codebook::new(&SIGNED_BITS))
    }

    /// The map for second moments (values >= 0).
    pub fn unsigned() -> &'static Codebook {
        static BOOK: OnceLock<Codebook> = OnceLock::new();
        BOOK.get_or_init(|| Codebook::new(&UNSIGNED_BITS))
    }

    /// The values of one block: `map[code] * absmax`.
    #[inline(always)]
    pub fn decode(&self, codes: &[u8], absmax: f32, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if codes.len() == BLOCK && out.len() == BLOCK {
            if avx512::decodes() {
                // SAFETY: AVX-512 F, BW and VBMI are present and both blocks are whole.
                return unsafe { avx512::decode(&self.planes, codes, absmax, out) };
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present and both blocks are whole.
                return unsafe { avx2::decode(&self.values, codes, absmax, out) };
            }
        }
        for (o, &c) in out.iter_mut().zip(codes) {
            *o = self.values[usize::from(c)] * absmax;
        }
    }

    /// The codes of one block, written to `codes`; returns its absolute maximum.
    #[inline(always)]
    pub fn encode(&self, x: &[f32], codes: &mut [u8]) -> f32 {
        let absmax = absmax(x);
        if absmax == 0.0 {
            codes.fill(0);
            return absmax;
        }
        let inv = 1.0 / absmax;
        #[cfg(target_arch = "x86_64")]
        if x.len() == BLOCK {
            if avx512::encodes() {
                // SAFETY: AVX-512F and BW are present and the block is whole.
                unsafe { avx512::encode(&self.search, x, inv, codes) };
                return absmax;
            }
            if std::is_x86_feature_detected!("avx2") {
                // SAFETY: AVX2 is present and the block is whole.
                unsafe { avx2::encode(&self.encoder, x, inv, codes) };
                return absmax;
            }
        }
        for (c, &v) in codes.iter_mut().zip(x) {
            *c = self.encoder.code(table_index(v, inv));
        }
        absmax
    }
}

/// bitsandbytes' encoding table over `values`: entry i is the code of -1 + 2i / 65535, the
/// number of midpoints between neighbouring map values that lie below it.
fn table(values: &[f32; 256]) -> Vec<u8> {
    let mid: Vec<f32> = values.windows(2).map(|w| 0.5 * (w[0] + w[1])).collect();
    let mut code = 0;
    (0..LUT)
        .map(|i| {
            let x = -1.0f32 + (2.0f32 * i as f32) / (LUT - 1) as f32;
            while code < mid.len() && mid[code] < x {
                code += 1;
            }
            code as u8
        })
        .collect()
}

/// Buckets of the compact table: 2^SHIFT consecutive indices each.
const SHIFT: u32 = 5;
const BUCKET: usize = 1 << SHIFT;

/// The encoding table in a few kilobytes, so that both maps stay in L1 while a step streams
/// its arrays. The table is a non-decreasing step function of the index with at most 255
/// steps, so most buckets of [`BUCKET`] indices hold at most one step, and by one code: such a
/// bucket is one entry, its first code and (high byte) the offset in the bucket where the code
/// goes up by one ([`BUCKET`] for never). Around t = 0, where the map is dense and the code may
/// rise several times in a bucket or by several codes at once, a window of the table has one
/// entry per index instead (its code, never rising), after the buckets' entries.
struct Encoder {
    /// The buckets' entries, the window's, and a spare one so that a 4-byte gather of the
    /// last stays inside.
    entries: Vec<u16>,
    /// The window: the indices `start..start + len`.
    start: usize,
    len: usize,
}

/// Entries of the buckets: the window's start after them.
const BUCKETS: usize = LUT / BUCKET;

impl Encoder {
    fn new(table: &[u8]) -> Self {
        let entry = |code: u8, at: usize| u16::from(code) | (at as u16) << 8;
        let mut entries = Vec::with_capacity(BUCKETS + 1024);
        let (mut lo, mut hi) = (LUT, 0);
        for (b, t) in table.chunks(BUCKET).enumerate() {
            let rises: Vec<usize> = (1..BUCKET).filter(|&o| t[o] != t[o - 1]).collect();
            let simple = match rises[..] {
                [] => true,
                [o] => t[o] == t[o - 1] + 1,
                _ => false,
            };
            entries.push(entry(t[0], rises.first().map_or(BUCKET, |&o| o)));
            if !simple {
                lo = lo.min(b * BUCKET);
                hi = hi.max((b + 1) * BUCKET);
            }
        }
        let (start, len) = if lo < hi { (lo, hi - lo) } else { (0, 0) };
        entries.extend(table[start..start + len].iter().map(|&c| entry(c, BUCKET)));
        entries.push(0);
        Encoder {
            entries,
            start,
            len,
        }
    }

    /// The table's code at `index`.
    #[inline(always)]
    fn code(&self, index: u16) -> u8 {
        let i = usize::from(index);
        let f = i.wrapping_sub(self.start);
        let slot = if f < self.len {
            BUCKETS + f
        } else {
            i >> SHIFT
        };
        let e = self.entries[slot];
        (e as u8) + u8::from((i % BUCKET) as u16 >= e >> 8)
    }
}

/// The encoding table as thresholds: the code at index `i` is the number of codes `k < 255`
/// whose threshold `T[k]` (the first index whose code exceeds `k`) is at most `i`, since the
/// table never decreases. Counted by a binary search in eight levels: the level of step `s`
/// compares `i` with `T[q * 2s + s - 1]`, `q` the steps taken so far over `2s`. Its `128 / s`
/// thresholds fit in 16 bits and in one to four registers of 32, so the AVX-512 path searches
/// 32 values at a time and reads no table from memory.
struct Search {
    /// Levels s = 1, 2, 4 (128, 64 and 32 thresholds), then 8 to 128 (16 to 1), each of these
    /// padded to 32.
    levels: [u16; Search::LEN],
}

impl Search {
    const LEN: usize = 128 + 64 + 32 + 32 * 5;

    fn new(table: &[u8]) -> Self {
        let t: Vec<usize> = (0..255)
            .map(|k| table.partition_point(|&c| usize::from(c) <= k))
            .collect();
        let mut levels = [0u16; Search::LEN];
        let mut at = 0;
        for s in [1, 2, 4, 8, 16, 32, 64, 128] {
            let n = 128 / s;
            for q in 0..n {
                let threshold = t[q * 2 * s + s - 1];
                // below 65,536: code 255 is the table's at its last index
                debug_assert!(threshold < LUT);
                levels[at + q] = threshold as u16;
            }
            at += n.max(32);
        }
        Search { levels }
    }

    /// The code at table index `i`, as the vector search takes it.
    #[cfg(test)]
    fn code(&self, i: u16) -> u8 {
        let (mut pos, mut at) = (0usize, Search::LEN);
        for s in [128, 64, 32, 16, 8, 4, 2, 1] {
            at -= (128 / s).max(32);
            if self.levels[at + pos / (2 * s)] <= i {
                pos += s;
            }
        }
        pos as u8
    }
}

/// The encoding table's index of `v * inv`: rounded half up as bitsandbytes does,
/// ((t + 1) / 2) * 65535 + 1/2, through i32 (a NaN is index 0).
#[inline(always)]
fn table_index(v: f32, inv: f32) -> u16 {
    let t = (v * inv).clamp(-1.0, 1.0);
    ((t + 1.0) * 0.5 * (LUT - 1) as f32 + 0.5) as i32 as u16
}

/// Whole blocks with AVX2, the same operations as the scalar loops in the same order.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{Encoder, BLOCK, BUCKET, BUCKETS, SHIFT};
    use std::arch::x86_64::*;

    /// `out[i] = values[codes[i]] * absmax`: the values loaded one by one (a gather
    /// instruction is slower than scalar loads from L1 on some machines), then scaled eight
    /// at a time.
    #[target_feature(enable = "avx2")]
    pub unsafe fn decode(values: &[f32; 256], codes: &[u8], absmax: f32, out: &mut [f32]) {
        let (codes, out) = (&codes[..BLOCK], &mut out[..BLOCK]);
        for (o, &c) in out.iter_mut().zip(codes) {
            // SAFETY: a u8 code indexes the 256 values.
            *o = *values.get_unchecked(usize::from(c));
        }
        let scale = _mm256_set1_ps(absmax);
        for k in (0..BLOCK).step_by(8) {
            // SAFETY: k + 8 <= BLOCK.
            let v = _mm256_loadu_ps(out.as_ptr().add(k));
            _mm256_storeu_ps(out.as_mut_ptr().add(k), _mm256_mul_ps(v, scale));
        }
    }

    /// The codes of a block scaled by `inv`: the table indices as [`super::table_index`]
    /// computes them and their entries' slots in vectors, the entries loaded one by one (a
    /// gather instruction is slower than scalar loads from L1 on some machines), then
    /// [`super::Encoder::code`]'s arithmetic in vectors again.
    #[target_feature(enable = "avx2")]
    pub unsafe fn encode(e: &Encoder, x: &[f32], inv: f32, codes: &mut [u8]) {
        let (x, codes) = (&x[..BLOCK], &mut codes[..BLOCK]);
        let (mut index, mut slot, mut entry) = ([0u16; BLOCK], [0u16; BLOCK], [0u16; BLOCK]);
        let to_u16 = |a, b| _mm256_permute4x64_epi64::<0xD8>(_mm256_packus_epi32(a, b));
        for k in (0..BLOCK).step_by(16) {
            // SAFETY: k + 16 <= BLOCK.
            let i = [0, 8].map(|j| self::index(_mm256_loadu_ps(x.as_ptr().add(k + j)), inv));
            let s = i.map(|i| slot_of(e, i));
            _mm256_storeu_si256(index.as_mut_ptr().add(k).cast(), to_u16(i[0], i[1]));
            _mm256_storeu_si256(slot.as_mut_ptr().add(k).cast(), to_u16(s[0], s[1]));
        }
        for (en, &s) in entry.iter_mut().zip(&slot) {
            // SAFETY: a slot indexes the entries.
            *en = *e.entries.get_unchecked(usize::from(s));
        }
        let (byte, mask) = (
            _mm256_set1_epi16(0xFF),
            _mm256_set1_epi16(BUCKET as i16 - 1),
        );
        for k in (0..BLOCK).step_by(32) {
            let c = [0, 16].map(|j| {
                // SAFETY: k + 32 <= BLOCK.
                let en = _mm256_loadu_si256(entry.as_ptr().add(k + j).cast());
                let i = _mm256_loadu_si256(index.as_ptr().add(k + j).cast());
                let at = _mm256_srli_epi16::<8>(en);
                let offset = _mm256_and_si256(i, mask);
                // offset >= at is offset + 1 > at; the comparison's -1 adds one
                let up = _mm256_cmpgt_epi16(_mm256_add_epi16(offset, _mm256_set1_epi16(1)), at);
                _mm256_sub_epi16(_mm256_and_si256(en, byte), up)
            });
            let out = _mm256_permute4x64_epi64::<0xD8>(_mm256_packus_epi16(c[0], c[1]));
            // SAFETY: k + 32 <= BLOCK.
            _mm256_storeu_si256(codes.as_mut_ptr().add(k).cast(), out);
        }
    }

    /// The table indices of eight values, [`super::table_index`]'s: `maxps` gives its second
    /// operand, -1, for a NaN, whose index 0 is a NaN's; `(t + 1) / 2` is exact, so one product
    /// by 65535 / 2 rounds as the two do.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn index(v: __m256, inv: f32) -> __m256i {
        let v = _mm256_mul_ps(v, _mm256_set1_ps(inv));
        let t = _mm256_min_ps(_mm256_max_ps(v, _mm256_set1_ps(-1.0)), _mm256_set1_ps(1.0));
        let s = _mm256_mul_ps(
            _mm256_add_ps(t, _mm256_set1_ps(1.0)),
            _mm256_set1_ps(32767.5),
        );
        _mm256_cvttps_epi32(_mm256_add_ps(s, _mm256_set1_ps(0.5)))
    }

    /// The entries' slots of eight table indices (in 0..65536), one per i32 lane, as
    /// [`super::Encoder::code`] picks them.
    #[inline]
    #[target_feature(enable = "avx2")]
    pub unsafe fn slot_of(e: &Encoder, i: __m256i) -> __m256i {
        let f = _mm256_sub_epi32(i, _mm256_set1_epi32(e.start as i32));
        let inside = _mm256_andnot_si256(
            _mm256_cmpgt_epi32(_mm256_setzero_si256(), f),
            _mm256_cmpgt_epi32(_mm256_set1_epi32(e.len as i32), f),
        );
        _mm256_blendv_epi8(
            _mm256_srli_epi32::<{ SHIFT as i32 }>(i),
            _mm256_add_epi32(f, _mm256_set1_epi32(BUCKETS as i32)),
            inside,
        )
    }
}

/// Whole blocks with AVX-512, the same codes and values as the scalar loops, every lookup in
/// registers: decoding by byte permutes of the map (with VBMI), encoding by [`Search`] in
/// 16-bit lanes, 32 values to a register. (On an AMD Zen 5 a gather of the compact table's
/// entries was no faster than AVX2's loads one by one, and the search on 16 values at a time,
/// in 32-bit lanes, was slower.)
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{Search, BLOCK};
    use std::arch::x86_64::*;

    /// Whether this CPU runs [`encode`].
    pub fn encodes() -> bool {
        std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
    }

    /// Whether this CPU runs [`decode`].
    pub fn decodes() -> bool {
        encodes() && std::is_x86_feature_detected!("avx512vbmi")
    }

    /// `out[i] = values[codes[i]] * absmax`, 64 codes at a time: each byte of the values picked
    /// from its plane (256 bytes in four registers) by two 128-byte permutes on the codes' low
    /// seven bits and a blend on the eighth, and the four bytes interleaved into float32 lanes.
    /// The codes are first permuted so that the interleaving, which works within 128-bit
    /// lanes, leaves the values in order. (A third of the time of picking float32 values from
    /// sixteen registers by `vpermt2ps` on an AMD Zen 5.)
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
    pub unsafe fn decode(planes: &[[u8; 256]; 4], codes: &[u8], absmax: f32, out: &mut [f32]) {
        let (codes, out) = (&codes[..BLOCK], &mut out[..BLOCK]);
        // SAFETY (all loads and stores): 4 * 64 = 256 bytes a plane; k + 64 <= BLOCK.
        let t: [[__m512i; 4]; 4] = std::array::from_fn(|b| {
            std::array::from_fn(|r| _mm512_loadu_si512(planes[b].as_ptr().add(64 * r).cast()))
        });
        // byte 16 * lane + 4 * j + e of the permuted codes is code 16 * j + 4 * lane + e
        let order: [u8; 64] = std::array::from_fn(|p| {
            let (lane, j, e) = (p / 16, p % 16 / 4, p % 4);
            (16 * j + 4 * lane + e) as u8
        });
        let order = _mm512_loadu_si512(order.as_ptr().cast());
        let scale = _mm512_set1_ps(absmax);
        for k in (0..BLOCK).step_by(64) {
            let c =
                _mm512_permutexvar_epi8(order, _mm512_loadu_si512(codes.as_ptr().add(k).cast()));
            let high = _mm512_movepi8_mask(c);
            let [b0, b1, b2, b3] = t.map(|p| {
                let lo = _mm512_permutex2var_epi8(p[0], c, p[1]);
                _mm512_mask_blend_epi8(high, lo, _mm512_permutex2var_epi8(p[2], c, p[3]))
            });
            let (w01, w23) = (
                [_mm512_unpacklo_epi8(b0, b1), _mm512_unpackhi_epi8(b0, b1)],
                [_mm512_unpacklo_epi8(b2, b3), _mm512_unpackhi_epi8(b2, b3)],
            );
            let v = [
                _mm512_unpacklo_epi16(w01[0], w23[0]),
                _mm512_unpackhi_epi16(w01[0], w23[0]),
                _mm512_unpacklo_epi16(w01[1], w23[1]),
                _mm512_unpackhi_epi16(w01[1], w23[1]),
            ];
            for (j, v) in v.into_iter().enumerate() {
                let v = _mm512_mul_ps(_mm512_castsi512_ps(v), scale);
                _mm512_storeu_ps(out.as_mut_ptr().add(k + 16 * j), v);
            }
        }
    }

    /// The table indices of sixteen values, as AVX2's `index` computes eight.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn index(v: __m512, inv: f32) -> __m512i {
        let v = _mm512_mul_ps(v, _mm512_set1_ps(inv));
        let t = _mm512_min_ps(_mm512_max_ps(v, _mm512_set1_ps(-1.0)), _mm512_set1_ps(1.0));
        let s = _mm512_mul_ps(
            _mm512_add_ps(t, _mm512_set1_ps(1.0)),
            _mm512_set1_ps(32767.5),
        );
        _mm512_cvttps_epi32(_mm512_add_ps(s, _mm512_set1_ps(0.5)))
    }

    /// The codes of a block scaled by `inv`: the table indices as [`super::table_index`]
    /// computes them, narrowed to 16-bit lanes, and [`Search`]'s levels on all eight groups of
    /// 32 at once. A level waits on the one before, so the groups are taken level by level
    /// rather than one after another: 30% less time on an AMD Zen 5 than a group at a time,
    /// and 10% less than four at a time (with the values spilled to the stack).
    #[target_feature(enable = "avx512f,avx512bw")]
    pub unsafe fn encode(e: &Search, x: &[f32], inv: f32, codes: &mut [u8]) {
        const GROUPS: usize = BLOCK / 32;
        let (x, codes) = (&x[..BLOCK], &mut codes[..BLOCK]);
        // SAFETY (all loads and stores): the levels hold 12 vectors; 32 * GROUPS = BLOCK.
        let lv: [__m512i; 12] =
            std::array::from_fn(|r| _mm512_loadu_si512(e.levels.as_ptr().add(32 * r).cast()));
        let l128 = _mm512_set1_epi16(e.levels[Search::LEN - 32] as i16);
        let bit6 = _mm512_set1_epi16(1 << 6);
        let i: [__m512i; GROUPS] = std::array::from_fn(|g| {
            let q = [0, 16].map(|j| {
                let v = _mm512_loadu_ps(x.as_ptr().add(32 * g + j));
                _mm512_cvtepi32_epi16(index(v, inv))
            });
            _mm512_inserti64x4::<1>(_mm512_castsi256_si512(q[0]), q[1])
        });
        let step = |pos, t, s: i16, i| {
            let up = _mm512_cmple_epu16_mask(t, i);
            _mm512_mask_add_epi16(pos, up, pos, _mm512_set1_epi16(s))
        };
        let mut pos: [__m512i; GROUPS] =
            std::array::from_fn(|g| step(_mm512_setzero_si512(), l128, 128, i[g]));
        // steps 64 to 4: one register of thresholds each, indexed by pos / 2s
        macro_rules! level {
            ($($r:literal $shift:literal)*) => {$(
                for g in 0..GROUPS {
                    let j = _mm512_srli_epi16::<$shift>(pos[g]);
                    let t = _mm512_permutexvar_epi16(j, lv[$r]);
                    pos[g] = step(pos[g], t, 1 << ($shift - 1), i[g]);
                }
            )*};
        }
        level!(10 7 9 6 8 5 7 4 6 3);
        for g in 0..GROUPS {
            let j = _mm512_srli_epi16::<2>(pos[g]);
            pos[g] = step(pos[g], _mm512_permutex2var_epi16(lv[4], j, lv[5]), 2, i[g]);
        }
        for g in 0..GROUPS {
            let j = _mm512_srli_epi16::<1>(pos[g]);
            let t = _mm512_mask_blend_epi16(
                _mm512_test_epi16_mask(j, bit6),
                _mm512_permutex2var_epi16(lv[0], j, lv[1]),
                _mm512_permutex2var_epi16(lv[2], j, lv[3]),
            );
            let code = _mm512_cvtepi16_epi8(step(pos[g], t, 1, i[g]));
            _mm256_storeu_si256(codes.as_mut_ptr().add(32 * g).cast(), code);
        }
    }
}

/// The largest magnitude of `x` (0 for none; a NaN is passed over), in 64 independent lanes
/// (four registers of sixteen) folded in halves at the end, so that neither the pass nor the
/// fold is one long chain of dependent comparisons; a maximum does not depend on the order it
/// is taken in (no NaN enters a lane). Written as a comparison, `if v > m { v } else { m }`,
/// which is the `maxps` instruction itself (its second operand when either is NaN), where
/// `f32::max` needs a NaN test and a blend besides: that took a fifth of an 8-bit Adam step on
/// an AMD Zen 5.
#[inline(always)]
fn absmax(x: &[f32]) -> f32 {
    const LANES: usize = 64;
    let larger = |m: f32, v: f32| if v > m { v } else { m };
    let mut lanes = [0.0f32; LANES];
    let mut chunks = x.chunks_exact(LANES);
    for c in &mut chunks {
        for k in 0..LANES {
            lanes[k] = larger(lanes[k], c[k].abs());
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |m, &v| larger(m, v.abs()));
    let mut w = LANES;
    while w > 1 {
        w /= 2;
        for k in 0..w {
            lanes[k] = larger(lanes[k], lanes[k + w]);
        }
    }
    larger(tail, lanes[0])
}

/// The block maxima of a state array, cut with its bundle: the pool cuts at multiples of
/// [`BLOCK`] (its chunks are), so element `mid` starts block `mid / BLOCK`.
pub struct Maxima<'a>(pub &'a mut [f32]);

impl Part for Maxima<'_> {
    fn elements(&self) -> Option<usize> {
        None
    }
    fn cut(self, mid: usize) -> (Self, Self) {
        debug_assert_eq!(mid % BLOCK, 0);
        let (a, b) = self.0.split_at_mut(mid / BLOCK);
        (Maxima(a), Maxima(b))
    }
}

/// One 8-bit state array: its codes and block maxima.
pub struct Quantized<'a> {
    pub codes: &'a mut [u8],
    pub absmax: &'a mut [f32],
}

/// Runs `step` block by block over `n` elements with `N` state arrays decoded into
/// float32 buffers (`books[k]` decodes and encodes array `k`): `step(start, buffers)` updates
/// the buffers of the block that starts at element `start` (it has `buffers[k].len()` values)
/// and they are encoded again, their maxima those of the updated values.
#[inline(always)]
pub fn by_block<const N: usize>(
    n: usize,
    state: &mut [Quantized<'_>; N],
    books: [&Codebook; N],
    mut step: impl FnMut(usize, &mut [[f32; BLOCK]; N], usize),
) {
    let mut buf = [[0.0f32; BLOCK]; N];
    for (b, start) in (0..n).step_by(BLOCK).enumerate() {
        let len = BLOCK.min(n - start);
        for k in 0..N {
            let s = &state[k];
            books[k].decode(
                &s.codes[start..start + len],
                s.absmax[b],
                &mut buf[k][..len],
            );
        }
        step(start, &mut buf, len);
        for k in 0..N {
            let s = &mut state[k];
            s.absmax[b] = books[k].encode(&buf[k][..len], &mut s.codes[start..start + len]);
        }
    }
}

crate::bundle! {
    /// One tensor with 8-bit state: float32 parameters and gradients, the codes of one or two
    /// state arrays and their block maxima.
    pub struct Tensor8<'a, T> {
        pub p: &'a mut [T],
        pub g: &'a [T],
        pub first: &'a mut [u8],
        pub first_max: Maxima<'a>,
        pub second: Option<&'a mut [u8]>,
        pub second_max: Option<Maxima<'a>>,
    }
}

impl<'a> Quantized<'a> {
    /// The second state array of a [`Tensor8`] (empty when it has none).
    pub fn second(codes: Option<&'a mut [u8]>, maxima: Option<Maxima<'a>>) -> Self {
        Quantized {
            codes: codes.unwrap_or_default(),
            absmax: maxima.map_or(&mut [], |m| m.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_are_sorted_and_span_their_range() {
        for (book, lo) in [(Codebook::signed(), -1.0), (Codebook::unsigned(), 0.0)] {
            let v = book.values;
            assert!(v.windows(2).all(|w| w[0] <= w[1]));
            assert_eq!(v[255], 1.0);
            assert!(v[0] >= lo && v[0] < lo + 0.01);
        }
    }

    #[test]
    fn encoding_is_within_the_table_resolution_of_the_nearest_code() {
        // The table looks codes up on a grid of spacing 2/65535, so a code may be the
        // second nearest only when the value is that close to a midpoint.
        for book in [Codebook::signed(), Codebook::unsigned()] {
            let x: Vec<f32> = (0..BLOCK)
                .map(|i| ((i as f32 * 0.37).sin() * 3.0).powi(3))
                .collect();
            let mut codes = vec![0u8; BLOCK];
            let absmax = book.encode(&x, &mut codes);
            assert_eq!(absmax, x.iter().fold(0.0f32, |a, v| a.max(v.abs())));
            let mut back = vec![0.0f32; BLOCK];
            book.decode(&codes, absmax, &mut back);
            for i in 0..BLOCK {
                let t = (x[i] / absmax).clamp(-1.0, 1.0);
                let best = book
                    .values
                    .iter()
                    .map(|v| (v - t).abs())
                    .fold(f32::INFINITY, f32::min);
                let got = (book.values[usize::from(codes[i])] - t).abs();
                assert!(got <= best + 2.0 / 65535.0, "{i}: {got} vs {best}");
                assert_eq!(back[i], book.values[usize::from(codes[i])] * absmax);
            }
        }
    }

    fn scalar_codes(book: &Codebook, x: &[f32], inv: f32) -> Vec<u8> {
        x.iter()
            .map(|&v| book.encoder.code(table_index(v, inv)))
            .collect()
    }

    /// The vector encoders this CPU runs, by name.
    #[cfg(target_arch = "x86_64")]
    fn vector_encoders() -> Vec<&'static str> {
        let mut names = Vec::new();
        if std::is_x86_feature_detected!("avx2") {
            names.push("avx2");
        }
        if avx512::encodes() {
            names.push("avx512");
        }
        names
    }

    #[cfg(target_arch = "x86_64")]
    fn vector_codes(name: &str, book: &Codebook, x: &[f32], inv: f32) -> Vec<u8> {
        let mut codes = vec![0u8; BLOCK];
        // SAFETY: `vector_encoders` checked the CPU, and the block is whole.
        unsafe {
            match name {
                "avx2" => avx2::encode(&book.encoder, x, inv, &mut codes),
                _ => avx512::encode(&book.search, x, inv, &mut codes),
            }
        }
        codes
    }

    #[test]
    fn the_compact_encoder_and_the_search_are_the_table_at_every_index() {
        for bits in [&SIGNED_BITS, &UNSIGNED_BITS] {
            let table = table(&bits.map(f32::from_bits));
            let encoder = Encoder::new(&table);
            // the window holds only the dense middle of the table
            assert!(encoder.len > 0 && encoder.len <= 1024);
            let search = Search::new(&table);
            for (i, &code) in table.iter().enumerate() {
                assert_eq!(encoder.code(i as u16), code, "index {i}");
                assert_eq!(search.code(i as u16), code, "index {i}");
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_encoders_match_the_scalar_loop_bitwise() {
        for name in vector_encoders() {
            vector_encoder_matches_the_scalar_loop(name);
        }
    }

    #[cfg(target_arch = "x86_64")]
    fn vector_encoder_matches_the_scalar_loop(name: &str) {
        let special = [
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            0.0,
            -0.0,
            1.0,
            -1.0,
            1e-30,
        ];
        for (r, inv) in [1.0f32, 0.37, 3.0e4, 0.0, f32::INFINITY]
            .into_iter()
            .enumerate()
        {
            let x: Vec<f32> = (0..BLOCK)
                .map(|i| match i % 11 {
                    0 => special[(i / 11 + r) % special.len()],
                    _ => ((i * 7 + r) as f32 * 0.731).sin() * 1.5,
                })
                .collect();
            for book in [Codebook::signed(), Codebook::unsigned()] {
                assert_eq!(
                    vector_codes(name, book, &x, inv),
                    scalar_codes(book, &x, inv),
                    "{name} {inv}"
                );
            }
        }
        // Every index of the table, as the value that lands on it.
        for chunk in (0..LUT).collect::<Vec<_>>().chunks(BLOCK) {
            let x: Vec<f32> = chunk
                .iter()
                .map(|&i| -1.0 + (2.0 * i as f32) / (LUT - 1) as f32)
                .collect();
            for (&i, &v) in chunk.iter().zip(&x) {
                assert_eq!(usize::from(table_index(v, 1.0)), i);
            }
            for book in [Codebook::signed(), Codebook::unsigned()] {
                let want: Vec<u8> = chunk.iter().map(|&i| book.encoder.code(i as u16)).collect();
                assert_eq!(vector_codes(name, book, &x, 1.0), want, "{name}");
                assert_eq!(scalar_codes(book, &x, 1.0), want);
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn vector_decoders_match_the_scalar_loop_bitwise() {
        type Decode = unsafe fn(&Codebook, &[u8], f32, &mut [f32]);
        let mut decoders: Vec<(&str, Decode)> = Vec::new();
        if std::is_x86_feature_detected!("avx2") {
            decoders.push(("avx2", |b, c, a, o| unsafe {
                avx2::decode(&b.values, c, a, o)
            }));
        }
        if avx512::decodes() {
            decoders.push(("avx512", |b, c, a, o| unsafe {
                avx512::decode(&b.planes, c, a, o)
            }));
        }
        // every code, in order and shuffled (neighbouring lanes far apart in the map)
        let orders = [
            (0..=255).collect::<Vec<u8>>(),
            (0..=255u8)
                .map(|c| c.wrapping_mul(97).wrapping_add(13))
                .collect(),
        ];
        for (name, decode) in decoders {
            for book in [Codebook::signed(), Codebook::unsigned()] {
                for codes in &orders {
                    for absmax in [1.0f32, 0.0, 3.7e-3, f32::MAX] {
                        let mut got = [0.0f32; BLOCK];
                        // SAFETY: the CPU has the decoder's features, and the blocks are whole.
                        unsafe { decode(book, codes, absmax, &mut got) };
                        for (&c, g) in codes.iter().zip(&got) {
                            let want = book.values[usize::from(c)] * absmax;
                            assert_eq!(g.to_bits(), want.to_bits(), "{name}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn absmax_is_the_largest_magnitude_passing_over_nan() {
        let want = |x: &[f32]| x.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for n in [0, 1, 15, 16, 17, 100, BLOCK] {
            let x: Vec<f32> = (0..n)
                .map(|i| ((i * 13) as f32 * 0.37).sin() * 2.0)
                .collect();
            let mut with_nan = x.clone();
            with_nan.iter_mut().step_by(5).for_each(|v| *v = f32::NAN);
            let mut with_inf = with_nan.clone();
            if n > 3 {
                with_inf[3] = f32::NEG_INFINITY;
            }
            let zeros = vec![-0.0f32; n];
            let nans = vec![f32::NAN; n];
            for y in [&x, &with_nan, &with_inf, &zeros, &nans] {
                assert_eq!(absmax(y).to_bits(), want(y).to_bits(), "length {n}");
            }
        }
    }

    #[test]
    fn a_zero_block_is_code_zero_and_decodes_to_zero() {
        let mut codes = vec![7u8; 10];
        assert_eq!(Codebook::signed().encode(&[0.0; 10], &mut codes), 0.0);
        assert!(codes.iter().all(|&c| c == 0));
        let mut out = vec![1.0f32; 10];
        Codebook::signed().decode(&codes, 0.0, &mut out);
        assert!(out.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn blocks_are_decoded_stepped_and_encoded_with_the_new_maxima() {
        // 600 values: blocks of 256, 256 and 88; doubling every value doubles each maximum
        // and keeps the codes.
        let n = 600;
        let x: Vec<f32> = (0..n).map(|i| (i as f32 * 0.1).cos()).collect();
        let mut codes = vec![0u8; n];
        let mut absmax = vec![0.0f32; blocks(n)];
        let book = Codebook::signed();
        for (b, start) in (0..n).step_by(BLOCK).enumerate() {
            let end = (start + BLOCK).min(n);
            absmax[b] = book.encode(&x[start..end], &mut codes[start..end]);
        }
        let (codes0, absmax0) = (codes.clone(), absmax.clone());
        let mut state = [Quantized {
            codes: &mut codes,
            absmax: &mut absmax,
        }];
        let mut seen = vec![];
        by_block(n, &mut state, [book], |start, [v], len| {
            seen.push((start, len));
            v[..len].iter_mut().for_each(|x| *x *= 2.0);
        });
        assert_eq!(seen, [(0, 256), (256, 256), (512, 88)]);
        assert_eq!(codes, codes0);
        assert_eq!(absmax, absmax0.iter().map(|a| a * 2.0).collect::<Vec<_>>());
    }
}
