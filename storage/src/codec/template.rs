//! A log body split into its template and its variables, for block frames.
//!
//! Measured on a block of each benchmark corpus, a log body's bytes that
//! zstd cannot shrink are its numbers and hex ids: zstd spends about 4
//! bits a hex digit and more on decimal digits. Written as binary in
//! columns of their own (decimals as varints, hex runs as bytes), and the
//! record's own trace and span ids, which services print into their
//! bodies, as a one-byte reference, the body column holds only the
//! template, which repeats. zstd then kept 24% fewer bytes of the
//! synthetic bodies and 80% fewer of the demo's (whose bodies end in their
//! trace id).
//!
//! ```text
//! template = (byte | 0x10 byte | 0x11 | 0x12 n | 0x13 | 0x14)*
//! ```
//!
//! - a byte other than 0x10–0x14 is itself; `0x10 b` is the byte `b`
//!   (0x10–0x14 in the text);
//! - `0x11`: a decimal number, the next varint of the decimal column,
//!   printed without leading zeros;
//! - `0x12 n`: the next `n` bytes of the hex column, printed as `2n`
//!   lowercase hex digits;
//! - `0x13`: the record's trace id as 32 lowercase hex digits; `0x14`: its
//!   span id as 16.
//!
//! A variable is a whole run of ASCII letters and digits: all digits with
//! no leading zero (up to 19 of them), or lowercase hex of 8 to 64 digits,
//! an even count, with at least one decimal digit (so words such as
//! `deadbeef`… stay in the template), or the number that begins a run
//! ending in letters only (`17ms`: the unit stays). Anything else stays in
//! the template as it is, so every text comes back byte for byte.

use rustc_hash::FxHashMap;
use sextant_index::put_uvarint;

use super::bits::BitReader;
use super::cursor::Cursor;
use crate::model::{SpanId, TraceId, put_hex};

const ESCAPE: u8 = 0x10;
const DECIMAL: u8 = 0x11;
const HEX: u8 = 0x12;
const TRACE: u8 = 0x13;
const SPAN: u8 = 0x14;

/// Longest decimal run taken as a number: 19 digits always fit a u64.
const MAX_DECIMAL_DIGITS: usize = 19;
/// Hex runs taken as bytes: 8 to 64 digits.
const HEX_DIGITS: std::ops::RangeInclusive<usize> = 8..=64;

/// Where a body's variables go.
pub(crate) struct Columns<'a> {
    pub(crate) decimals: &'a mut Vec<u8>,
    pub(crate) hex: &'a mut Vec<u8>,
}

/// The ids a body may refer to instead of spelling them out.
#[derive(Clone, Copy)]
pub(crate) struct Ids<'a> {
    pub(crate) trace: &'a TraceId,
    pub(crate) span: &'a SpanId,
}

/// Byte classes for [`pack`]'s single pass over a body.
const ALNUM: u8 = 1;
const DIGIT: u8 = 2;
const LOWER_HEX: u8 = 4;
const MARKER: u8 = 8;
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = if c.is_ascii_digit() {
            ALNUM | DIGIT | LOWER_HEX
        } else if c >= b'a' && c <= b'f' {
            ALNUM | LOWER_HEX
        } else if c.is_ascii_alphanumeric() {
            ALNUM
        } else if c >= ESCAPE && c <= SPAN {
            MARKER
        } else {
            0
        };
        b += 1;
    }
    t
};

/// Appends the template of `text` to `template` and its variables to
/// `vars`.
pub(crate) fn pack(text: &str, ids: Ids<'_>, template: &mut Vec<u8>, vars: &mut Columns<'_>) {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        // Text up to the next letter, digit or marker byte, as it is.
        let start = i;
        while i < b.len() && CLASS[usize::from(b[i])] & (ALNUM | MARKER) == 0 {
            i += 1;
        }
        template.extend_from_slice(&b[start..i]);
        let Some(&c) = b.get(i) else { break };
        if CLASS[usize::from(c)] & MARKER != 0 {
            template.extend_from_slice(&[ESCAPE, c]);
            i += 1;
            continue;
        }
        // A run of letters and digits, classified in the same pass.
        let (start, mut all, mut any) = (i, u8::MAX, 0u8);
        while let Some(&c) = b.get(i) {
            let class = CLASS[usize::from(c)];
            if class & ALNUM == 0 {
                break;
            }
            all &= class;
            any |= class;
            i += 1;
        }
        let run = &b[start..i];
        if all & DIGIT != 0 && is_number(run) {
            put_decimal(run, template, vars);
        } else if all & LOWER_HEX != 0
            && any & DIGIT != 0
            && HEX_DIGITS.contains(&run.len())
            && run.len().is_multiple_of(2)
        {
            pack_hex(run, ids, template, vars);
        } else if let Some(digits) = number_with_unit(run) {
            put_decimal(&run[..digits], template, vars);
            template.extend_from_slice(&run[digits..]);
        } else {
            template.extend_from_slice(run);
        }
    }
}

/// Whether digits print back as themselves from a number: no leading zero,
/// and few enough to fit a u64.
fn is_number(digits: &[u8]) -> bool {
    digits.len() <= MAX_DECIMAL_DIGITS && (digits[0] != b'0' || digits.len() == 1)
}

/// Digits of a number followed by letters only, such as `17ms`, `5s` or
/// `2xx`: the number is a variable and its unit stays in the template. Kept
/// whole, each duration gave its line a template of its own (17k distinct
/// templates in a block of 800k synthetic lines, most of them for the 10%
/// of lines that print `took 17ms`).
fn number_with_unit(run: &[u8]) -> Option<usize> {
    let digits = run.iter().take_while(|c| c.is_ascii_digit()).count();
    (digits > 0
        && digits < run.len()
        && is_number(&run[..digits])
        && run[digits..].iter().all(u8::is_ascii_alphabetic))
    .then_some(digits)
}

/// A decimal variable: its marker, its value in the decimal column.
fn put_decimal(digits: &[u8], template: &mut Vec<u8>, vars: &mut Columns<'_>) {
    template.push(DECIMAL);
    let n = digits
        .iter()
        .fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    put_uvarint(vars.decimals, n);
}

/// A run of lowercase hex digits: the record's own id, or bytes.
fn pack_hex(run: &[u8], ids: Ids<'_>, template: &mut Vec<u8>, vars: &mut Columns<'_>) {
    let mut bytes = [0u8; 32];
    let n = run.len() / 2;
    for (k, pair) in run.chunks_exact(2).enumerate() {
        bytes[k] = (nibble(pair[0]) << 4) | nibble(pair[1]);
    }
    let bytes = &bytes[..n];
    if bytes == ids.trace && *ids.trace != [0; 16] {
        template.push(TRACE);
    } else if bytes == ids.span && *ids.span != [0; 8] {
        template.push(SPAN);
    } else {
        template.extend_from_slice(&[HEX, n as u8]);
        vars.hex.extend_from_slice(bytes);
    }
}

/// A lowercase hex digit's value.
fn nibble(c: u8) -> u8 {
    if c.is_ascii_digit() {
        c - b'0'
    } else {
        c - b'a' + 10
    }
}

/// Where unpacking reads the variables from. A frame's reader steps over
/// most of its rows: it only counts their templates' variables (each
/// distinct template once) and reads past them all when it next unpacks
/// a body, or finishes.
pub(crate) struct Sources<'a, 'b> {
    decimals: &'a mut Cursor<'b>,
    hex: &'a mut Cursor<'b>,
    /// The decimals of templates with [`Slots`], as bits.
    bits: BitReader<'b>,
    /// Decimals, hex bytes and bits of the templates stepped over, not
    /// yet read past.
    behind: (usize, usize, usize),
    /// Decimals and hex bytes of each template stepped over.
    counts: FxHashMap<&'b [u8], (usize, usize)>,
}

impl<'a, 'b> Sources<'a, 'b> {
    pub(crate) fn new(decimals: &'a mut Cursor<'b>, hex: &'a mut Cursor<'b>) -> Self {
        Self::with_bits(decimals, hex, &[])
    }

    /// Sources whose templates with [`Slots`] read their decimals from
    /// `bits`.
    pub(crate) fn with_bits(
        decimals: &'a mut Cursor<'b>,
        hex: &'a mut Cursor<'b>,
        bits: &'b [u8],
    ) -> Self {
        Sources {
            decimals,
            hex,
            bits: BitReader::new(bits),
            behind: (0, 0, 0),
            counts: FxHashMap::default(),
        }
    }

    /// Reads past the variables of the templates stepped over: before a
    /// body is unpacked, and at the end of a frame (whose columns must
    /// then be used up).
    pub(crate) fn catch_up(&mut self) -> Result<(), String> {
        let (decimals, hex, bits) = std::mem::take(&mut self.behind);
        for _ in 0..decimals {
            self.decimals.uvarint()?;
        }
        self.bits.skip(bits).ok_or(SHORT_BITS)?;
        self.hex.bytes(hex).map(|_| ())
    }
}

const SHORT_BITS: &str = "a log frame's decimal bits end early";

/// How a template's decimals are written as bits: each its slot's least
/// value and bit count (the value less the least, in that many bits), and
/// all the bits a body of the template takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Slots {
    pub(crate) slots: Vec<(u64, u8)>,
    pub(crate) bits: usize,
}

impl Slots {
    /// Slots for values from `ranges` (least, greatest; a range that saw
    /// no value fits none). The ranges come from a sample of the block, so
    /// each slot holds every value its bits can, not only the sample's:
    /// from 0 when the bits reach down that far (most counts and
    /// durations: a sample's least `ms=3` would have sent the block's
    /// `ms=1` rows to their frames' lists), else with the room to spare
    /// split below and above the range.
    pub(crate) fn new(ranges: &[(u64, u64)]) -> Self {
        let slots: Vec<(u64, u8)> = ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo > hi {
                    return (lo, 0);
                }
                let bits = 64 - (hi - lo).leading_zeros();
                let least = match 1u64.checked_shl(bits) {
                    Some(room) if hi >= room => lo - (room - 1 - (hi - lo)) / 2,
                    _ => 0,
                };
                (least, bits as u8)
            })
            .collect();
        let bits = slots.iter().map(|&(_, w)| usize::from(w)).sum();
        Slots { slots, bits }
    }

    /// Whether the varints `decimals` are one value a slot, each within
    /// its slot's bits; `values` gets them.
    pub(crate) fn fit(&self, decimals: &[u8], values: &mut Vec<u64>) -> bool {
        values.clear();
        let mut c = Cursor::new(decimals);
        while !c.done() {
            let Ok(v) = c.uvarint() else { return false };
            values.push(v);
        }
        values.len() == self.slots.len()
            && values.iter().zip(&self.slots).all(|(&v, &(least, bits))| {
                v.checked_sub(least)
                    .is_some_and(|d| bits == 64 || d >> bits == 0)
            })
    }
}

/// The decimals a template reads, and whether it is well formed.
pub(crate) fn decimals_of(template: &[u8]) -> Result<usize, String> {
    count(template).map(|(d, _)| d)
}

/// The text `template` stands for, its variables read from `vars` (its
/// decimals as bits when it has `slots`).
pub(crate) fn unpack(
    template: &[u8],
    slots: Option<&Slots>,
    ids: Ids<'_>,
    vars: &mut Sources<'_, '_>,
) -> Result<String, String> {
    vars.catch_up()?;
    let mut out = Vec::with_capacity(template.len() + 32);
    walk(template, slots, vars, |piece| match piece {
        Piece::Text(t) => out.extend_from_slice(t),
        Piece::Decimal(n) => {
            let mut digits = [0u8; MAX_DECIMAL_DIGITS + 1];
            let mut at = digits.len();
            let mut n = n;
            loop {
                at -= 1;
                digits[at] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            out.extend_from_slice(&digits[at..]);
        }
        Piece::Hex(bytes) => put_hex(&mut out, bytes),
        Piece::Trace => put_hex(&mut out, ids.trace),
        Piece::Span => put_hex(&mut out, ids.span),
    })?;
    String::from_utf8(out).map_err(|_| "invalid UTF-8 in a log body".to_string())
}

/// Steps over the variables of `template` without building its text (see
/// [`Sources`]).
pub(crate) fn skip<'b>(
    template: &'b [u8],
    slots: Option<&Slots>,
    vars: &mut Sources<'_, 'b>,
) -> Result<(), String> {
    let (decimals, hex) = match vars.counts.get(template) {
        Some(&n) => n,
        None => {
            let n = count(template)?;
            vars.counts.insert(template, n);
            n
        }
    };
    match slots {
        Some(s) => vars.behind.2 = vars.behind.2.saturating_add(s.bits),
        None => vars.behind.0 = vars.behind.0.saturating_add(decimals),
    }
    vars.behind.1 = vars.behind.1.saturating_add(hex);
    Ok(())
}

/// The decimals and hex bytes `template` reads.
fn count(template: &[u8]) -> Result<(usize, usize), String> {
    let (mut decimals, mut hex) = (0, 0);
    let mut i = 0;
    loop {
        i += text_run(&template[i..]);
        if i >= template.len() {
            return Ok((decimals, hex));
        }
        let (code, operand, next) = marker(template, i)?;
        i = next;
        match code {
            DECIMAL => decimals += 1,
            HEX => hex += usize::from(operand[0]),
            _ => {}
        }
    }
}

/// The marker at `i` of `template`: its code, its operand byte (the
/// escaped byte, the hex length; empty for the others) and where the next
/// piece starts.
fn marker(template: &[u8], i: usize) -> Result<(u8, &[u8], usize), String> {
    let code = template[i];
    let (operand, end) = match code {
        ESCAPE => ("a log body template ends in an escape", i + 2),
        HEX => ("a log body template ends in a hex marker", i + 2),
        _ => return Ok((code, &[], i + 1)),
    };
    let operand = template.get(i + 1..end).ok_or(operand)?;
    Ok((code, operand, end))
}

/// Whether a template byte is a marker (0x10–0x14).
fn is_marker(c: u8) -> bool {
    (ESCAPE..=SPAN).contains(&c)
}

/// The bytes of `t` before its first marker. Eight bytes at a time: a
/// search steps over the templates of every row of a frame to build the
/// few it wants, and a byte at a time this scan was half of that.
fn text_run(t: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let mut i = 0;
    for chunk in t.chunks_exact(8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        // `z` has a zero byte where the text has one of 0x10–0x17, and
        // the test below flags every zero byte (and maybe some bytes
        // after one): each flag is checked.
        let z = (u64::from_le_bytes(bytes) ^ (ONES * 0x10)) & (ONES * 0xf8);
        let mut flags = z.wrapping_sub(ONES) & !z & (ONES * 0x80);
        while flags != 0 {
            let at = i + (flags.trailing_zeros() / 8) as usize;
            if t.get(at).is_some_and(|&c| is_marker(c)) {
                return at;
            }
            flags &= flags - 1;
        }
        i += 8;
    }
    i + t[i..].iter().take_while(|c| !is_marker(**c)).count()
}

/// A part of a template, as `walk` hands it over.
enum Piece<'a> {
    Text(&'a [u8]),
    Decimal(u64),
    Hex(&'a [u8]),
    Trace,
    Span,
}

/// Calls `f` with each piece of `template` in order, reading the
/// variables; a damaged template is an error.
fn walk<'b>(
    template: &[u8],
    slots: Option<&Slots>,
    vars: &mut Sources<'_, 'b>,
    mut f: impl FnMut(Piece<'_>),
) -> Result<(), String> {
    let mut i = 0;
    let mut slot = 0;
    while i < template.len() {
        let run = text_run(&template[i..]);
        if run > 0 {
            f(Piece::Text(&template[i..i + run]));
            i += run;
            continue;
        }
        let (code, operand, next) = marker(template, i)?;
        i = next;
        match code {
            ESCAPE => f(Piece::Text(operand)),
            DECIMAL => {
                let n = match slots {
                    Some(s) => {
                        let &(least, width) = s
                            .slots
                            .get(slot)
                            .ok_or("a log body template has more decimals than slots")?;
                        slot += 1;
                        let v = vars.bits.bits(width).ok_or(SHORT_BITS)?;
                        least
                            .checked_add(v)
                            .ok_or("a log body number out of range")?
                    }
                    None => vars.decimals.uvarint()?,
                };
                if n >= 10u64.pow(MAX_DECIMAL_DIGITS as u32) {
                    return Err("a log body number out of range".into());
                }
                f(Piece::Decimal(n));
            }
            HEX => f(Piece::Hex(vars.hex.bytes(usize::from(operand[0]))?)),
            TRACE => f(Piece::Trace),
            _ => f(Piece::Span),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn round_trip(text: &str, trace: TraceId, span: SpanId) -> (String, usize) {
        let ids = Ids {
            trace: &trace,
            span: &span,
        };
        let (mut t, mut d, mut h) = (Vec::new(), Vec::new(), Vec::new());
        pack(
            text,
            ids,
            &mut t,
            &mut Columns {
                decimals: &mut d,
                hex: &mut h,
            },
        );
        let packed = t.len() + d.len() + h.len();
        let (mut dc, mut hc) = (Cursor::new(&d), Cursor::new(&h));
        let back = unpack(&t, None, ids, &mut Sources::new(&mut dc, &mut hc)).unwrap();
        assert!(dc.done() && hc.done(), "every variable read");
        let (mut dc, mut hc) = (Cursor::new(&d), Cursor::new(&h));
        let mut src = Sources::new(&mut dc, &mut hc);
        skip(&t, None, &mut src).unwrap();
        src.catch_up().unwrap();
        assert!(dc.done() && hc.done(), "skip steps over every variable");
        (back, packed)
    }

    #[test]
    fn variables_and_own_ids_are_taken_out() {
        let trace = [0xa7; 16];
        let span = [0x01; 8];
        let text = format!(
            "GET /api/orders/81234 took 17ms req=00a1f3c4d5e6b7a8 trace_id={} span={} status=200 007 0 v1.2",
            "a7".repeat(16),
            "01".repeat(8)
        );
        let (back, packed) = round_trip(&text, trace, span);
        assert_eq!(back, text);
        assert!(packed < text.len() - 50, "{packed} of {}", text.len());
    }

    #[test]
    fn numbers_with_units_keep_their_unit_in_the_template() {
        let mut template = Vec::new();
        let (mut decimals, mut hex) = (Vec::new(), Vec::new());
        let mut vars = Columns {
            decimals: &mut decimals,
            hex: &mut hex,
        };
        let ids = Ids {
            trace: &[0; 16],
            span: &[0; 8],
        };
        pack(
            "took 17ms, 0s, 05s, 2xx, 3a4",
            ids,
            &mut template,
            &mut vars,
        );
        // `05s` (a leading zero) and `3a4` (digits after letters) stay.
        assert_eq!(template, b"took \x11ms, \x11s, 05s, \x11xx, 3a4");
        assert_eq!(decimals, [17, 0, 2]);
        for text in ["17ms", "0s", "05s", "2xx", "3a4", "99999999999999999999ms"] {
            assert_eq!(round_trip(text, [0; 16], [0; 8]).0, text);
        }
    }

    #[test]
    fn marker_bytes_in_the_text_are_escaped() {
        let text = "a\u{10}b\u{11}\u{12}\u{13}\u{14}c 12\u{11}";
        assert_eq!(round_trip(text, [1; 16], [2; 8]).0, text);
    }

    #[test]
    fn damaged_templates_are_errors() {
        let ids = Ids {
            trace: &[0; 16],
            span: &[0; 8],
        };
        for (t, d, h) in [
            (&[ESCAPE][..], &[][..], &[][..]),
            (&[HEX][..], &[][..], &[][..]),
            (&[HEX, 4][..], &[][..], &[1, 2][..]),
            (&[DECIMAL][..], &[][..], &[][..]),
            (&[DECIMAL][..], &[0xff; 10][..], &[][..]),
            (&[0xff, 0xfe][..], &[][..], &[][..]),
        ] {
            let (mut dc, mut hc) = (Cursor::new(d), Cursor::new(h));
            let mut src = Sources::new(&mut dc, &mut hc);
            assert!(unpack(t, None, ids, &mut src).is_err(), "{t:?}");
        }
    }

    #[test]
    fn slots_hold_every_value_their_bits_can() {
        let slots = Slots::new(&[(3, 900), (1000, 1056), (7, 7), (0, 0), (u64::MAX, 0)]);
        // From 0 when the bits reach it; else the room split around the
        // range; a range that saw nothing fits nothing.
        assert_eq!(
            slots.slots,
            [(0, 10), (997, 6), (7, 0), (0, 0), (u64::MAX, 0)]
        );
        assert_eq!(Slots::new(&[(0, u64::MAX)]).slots, [(0, 64)]);
        let mut values = Vec::new();
        let fits = |v: u64, values: &mut Vec<u64>| {
            let mut d = Vec::new();
            put_uvarint(&mut d, v);
            Slots::new(&[(1000, 1056)]).fit(&d, values)
        };
        assert!(fits(997, &mut values) && fits(1060, &mut values));
        assert!(!fits(996, &mut values) && !fits(1061, &mut values));
    }

    proptest! {
        /// The word-at-a-time scan stops where a byte-at-a-time one does.
        #[test]
        fn text_runs_end_at_the_first_marker(
            t in proptest::collection::vec(prop_oneof![0x0eu8..0x19, any::<u8>()], 0..40),
        ) {
            let want = t.iter().take_while(|c| !is_marker(**c)).count();
            prop_assert_eq!(text_run(&t), want);
        }

        /// Any text comes back byte for byte, whatever its ids.
        #[test]
        fn any_text_round_trips(
            text in "(([0-9a-fA-Fxu\\-.:= /]|\u{10}|\u{11}|\u{12}|\u{13}|\u{14}|é){0,80})",
            trace in any::<[u8; 16]>(),
            span in any::<[u8; 8]>(),
            with_ids in any::<bool>(),
        ) {
            let mut text = text;
            if with_ids {
                text = format!("{text} trace_id={} {}{text}", crate::model::hex(&trace), crate::model::hex(&span));
            }
            prop_assert_eq!(round_trip(&text, trace, span).0, text);
        }

        /// Decimal runs come back with their exact digits.
        #[test]
        fn numbers_round_trip(n in any::<u64>(), zeros in 0usize..3) {
            let text = format!("x {}{n} y {n}", "0".repeat(zeros));
            prop_assert_eq!(round_trip(&text, [0; 16], [0; 8]).0, text);
        }

        /// Arbitrary bytes as a template and variables are an error or a
        /// text, never a panic.
        #[test]
        fn any_bytes_unpack_safely(
            t in proptest::collection::vec(any::<u8>(), 0..64),
            d in proptest::collection::vec(any::<u8>(), 0..32),
            h in proptest::collection::vec(any::<u8>(), 0..32),
        ) {
            let (mut dc, mut hc) = (Cursor::new(&d), Cursor::new(&h));
            let mut src = Sources::new(&mut dc, &mut hc);
            let _ = unpack(&t, None, Ids { trace: &[3; 16], span: &[4; 8] }, &mut src);
            let (mut dc, mut hc) = (Cursor::new(&d), Cursor::new(&h));
            let mut src = Sources::new(&mut dc, &mut hc);
            if skip(&t, None, &mut src).is_ok() {
                let _ = src.catch_up();
            }
        }
    }
}
