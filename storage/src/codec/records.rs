//! Frames of log records and spans, laid out column by column: each field
//! goes to its own column, so zstd over a frame sees timestamps next to
//! timestamps and service names next to service names. The WAL logs a
//! frame as one record; a block's record file holds zstd-compressed frames,
//! laid out [`Layout::Packed`]: log bodies as template and variables
//! (`template.rs`), a pass a flush can afford and a write should not.
//! A frame's column count tells its layout.
//!
//! ```text
//! frame  = rows uvarint | ncols uvarint | len uvarint * ncols | column bytes…
//! value  = tag u8 | payload        (0 str, 1 bool, 2 int, 3 double,
//!                                   4 bytes, 5 array, 6 map)
//! ```
//!
//! Field-to-column assignments are in `docs/format.md`. Decoding checks
//! every length and count against the bytes present, limits nesting to
//! [`MAX_VALUE_DEPTH`] and requires each column to be consumed exactly.

use std::borrow::Borrow;

use rustc_hash::FxHashMap;
use sextant_index::put_uvarint;

use super::bits::BitWriter;
use super::cursor::Cursor;
use super::template::{self, Ids};
use super::{unzigzag, zigzag};
use crate::model::{
    AnyValue, Attributes, LogRecord, MAX_VALUE_DEPTH, Resource, Span, SpanEvent, SpanId, SpanKind,
    SpanLink, StatusCode, TraceId,
};

/// How a frame's columns are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Every field as it is: the WAL's frames, written on the ingest path.
    Plain,
    /// Fields re-coded to compress better (log bodies as template and
    /// variables): a block's frames, written at flush.
    Packed,
}

/// A record type stored in column frames.
pub trait Columnar: Sized {
    /// Number of columns of the record's fields as they are: the first
    /// columns of every layout.
    const COLS: usize;
    /// Number of columns, [`Layout::Plain`]; equal to `COLS` for a type
    /// whose plain layout adds nothing.
    const PLAIN_COLS: usize = Self::COLS;
    /// Number of columns, [`Layout::Packed`]; equal to `COLS` for a type
    /// whose packed layout is its plain one.
    const PACKED_COLS: usize = Self::COLS;
    /// Column counts a frame may have: the layouts written now and those
    /// older blocks and WAL segments hold.
    const READ_COLS: &'static [usize] = &[Self::COLS];
    /// Columns of random ids, which block files compress at zstd's
    /// fastest level.
    const RANDOM_COLS: &'static [usize] = &[];
    /// Appends `rows` to the columns: `PLAIN_COLS` of them for the plain
    /// layout, `PACKED_COLS` for the packed one (or any of `READ_COLS`).
    /// `shared` gathers what the frames of one file share, if anything.
    fn encode<R: Borrow<Self>>(
        rows: &[R],
        cols: &mut [Vec<u8>],
        shared: Option<&SharedTemplatesWriter>,
    );
    /// Notes in `shared` what the frames of a file of `rows` share
    /// (nothing, unless the type says otherwise).
    fn share<R: Borrow<Self>>(rows: &[R], shared: &mut SharedTemplatesWriter) {
        let _ = (rows, shared);
    }
    /// Reads `n` rows from the column cursors (as many as the layout has),
    /// with what the frames of their file share. Rows that `pick` leaves
    /// out are stepped over without building their strings and come back
    /// as placeholders (ids and times only), so indexes stay aligned.
    #[doc(hidden)]
    fn decode_rows<'b>(
        n: usize,
        cols: &mut [Cursor<'b>],
        pick: Pick<'_>,
        shared: &'b SharedTemplates,
    ) -> Result<Vec<Self>, String>;
    /// The record's trace and span ids.
    fn ids(&self) -> (TraceId, SpanId);
}

/// A test of a record's (trace id, span id), for reads that need only
/// some records of some traces.
pub type IdPick<'a> = &'a dyn Fn(&TraceId, &SpanId) -> bool;

/// A test of a log record's body (with its row's index in the frame), for
/// reads that check the text first.
pub type BodyPick<'a> = &'a dyn Fn(usize, &AnyValue) -> bool;

/// Which rows of a frame a read builds: those `mask` marks (all when
/// unset) whose trace and span ids `ids` accepts (all when unset).
#[derive(Clone, Copy, Default)]
pub struct Pick<'a> {
    /// Rows by index in the frame.
    pub mask: Option<&'a [bool]>,
    /// A test of a row's (trace id, span id).
    pub ids: Option<IdPick<'a>>,
    /// A test of a log row's body, built first: a row it turns away keeps
    /// its body but not its other text (resource, attributes, severity
    /// text), which is stepped over. A search's candidates are whole pages
    /// of rows, most of which fail its text, and building their
    /// resources and attributes was a sixth of a rare term's query.
    pub body: Option<BodyPick<'a>>,
}

impl Pick<'_> {
    /// Rows a read of a frame of `rows` rows decodes: up to the last one
    /// the mask marks (a search wants a row or two of a frame, and the
    /// rows after them need not even be stepped over), or all of them.
    pub fn rows_read(&self, rows: usize) -> usize {
        self.mask.map_or(rows, |m| {
            m.iter().rposition(|&k| k).map_or(0, |i| i + 1).min(rows)
        })
    }

    fn keeps(&self, i: usize, trace: &TraceId, span: &SpanId) -> bool {
        self.mask.is_none_or(|m| m.get(i).copied().unwrap_or(false))
            && self.ids.is_none_or(|f| f(trace, span))
    }
}

/// Encodes `rows` as one frame, appended to `out`. Returns where in `out`
/// each column starts, for a writer that compresses columns apart.
pub fn encode_frame<T: Columnar, R: Borrow<T>>(
    rows: &[R],
    layout: Layout,
    out: &mut Vec<u8>,
) -> Vec<usize> {
    encode_frame_sharing(rows, layout, None, out)
}

/// [`encode_frame`] in the packed layout, as a frame of a file whose
/// frames share `shared` (a block file's: [`SharedTemplatesWriter::of`]
/// its rows).
pub fn encode_block_frame<T: Columnar, R: Borrow<T>>(
    rows: &[R],
    shared: &SharedTemplatesWriter,
    out: &mut Vec<u8>,
) -> Vec<usize> {
    encode_frame_sharing(rows, Layout::Packed, Some(shared), out)
}

fn encode_frame_sharing<T: Columnar, R: Borrow<T>>(
    rows: &[R],
    layout: Layout,
    shared: Option<&SharedTemplatesWriter>,
    out: &mut Vec<u8>,
) -> Vec<usize> {
    let ncols = match layout {
        Layout::Plain => T::PLAIN_COLS,
        Layout::Packed => T::PACKED_COLS,
    };
    COLUMNS.with_borrow_mut(|kept| {
        // Only grown: a thread that writes the WAL (plain) and flushes
        // (packed) keeps the buffers of both.
        if kept.len() < ncols {
            kept.resize_with(ncols, Vec::new);
        }
        let cols = &mut kept[..ncols];
        cols.iter_mut().for_each(Vec::clear);
        T::encode(rows, cols, shared);
        put_uvarint(out, rows.len() as u64);
        put_uvarint(out, ncols as u64);
        for c in cols.iter() {
            put_uvarint(out, c.len() as u64);
        }
        let mut starts = Vec::with_capacity(ncols);
        for c in cols.iter() {
            starts.push(out.len());
            out.extend_from_slice(c);
        }
        // A rare huge frame does not stay resident for good.
        for c in kept.iter_mut().filter(|c| c.capacity() > MAX_KEPT_COLUMN) {
            *c = Vec::new();
        }
        starts
    })
}

/// Bytes of capacity a kept column buffer may hold between frames.
const MAX_KEPT_COLUMN: usize = 1 << 20;

thread_local! {
    /// Column buffers kept from one frame to the next on a thread: grown
    /// from empty for every frame, they were reallocated their way up, a
    /// copy of every column again. (`Columnar::encode` never encodes a
    /// frame itself, so the borrow is never taken twice.)
    static COLUMNS: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Decodes a frame; bad bytes give an error, never a panic, and memory
/// stays proportional to the input.
pub fn decode_frame<T: Columnar>(buf: &[u8]) -> Result<Vec<T>, String> {
    decode_frame_rows(buf, Pick::default(), &NO_SHARED_TEMPLATES)
}

/// [`decode_frame`], building only the rows `pick` keeps (the others are
/// placeholders) and reading no further than [`Pick::rows_read`] (the
/// result ends there): a read that needs a few rows of a frame skips the
/// string and attribute work of the rest. `shared`: what the frames of
/// the frame's file share.
pub fn decode_frame_rows<'b, T: Columnar>(
    buf: &'b [u8],
    pick: Pick<'_>,
    shared: &'b SharedTemplates,
) -> Result<Vec<T>, String> {
    let mut c = Cursor::new(buf);
    let rows = c.count()?;
    let ncols = c.uvarint()?;
    let ncols = match usize::try_from(ncols) {
        Ok(n) if T::READ_COLS.contains(&n) => n,
        _ => {
            return Err(format!(
                "frame has {ncols} columns, expected one of {:?}",
                T::READ_COLS
            ));
        }
    };
    let mut lens = Vec::with_capacity(ncols);
    for _ in 0..ncols {
        lens.push(usize::try_from(c.uvarint()?).map_err(|_| "column length")?);
    }
    let mut cols = Vec::with_capacity(ncols);
    for len in lens {
        cols.push(Cursor::new(c.bytes(len)?));
    }
    if !c.done() {
        return Err("trailing bytes after the columns".into());
    }
    let read = pick.rows_read(rows);
    let out = T::decode_rows(read, &mut cols, pick, shared)?;
    if read == rows && cols.iter().any(|c| !c.done()) {
        return Err("column has bytes left over".into());
    }
    Ok(out)
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_uvarint(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn put_value(out: &mut Vec<u8>, v: &AnyValue) {
    match v {
        AnyValue::Str(s) => {
            out.push(0);
            put_str(out, s.as_bytes());
        }
        AnyValue::Bool(b) => out.extend_from_slice(&[1, u8::from(*b)]),
        AnyValue::Int(i) => {
            out.push(2);
            put_uvarint(out, zigzag(*i));
        }
        AnyValue::Double(d) => {
            out.push(3);
            out.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        AnyValue::Bytes(b) => {
            out.push(4);
            put_str(out, b);
        }
        AnyValue::Array(vs) => {
            out.push(5);
            put_uvarint(out, vs.len() as u64);
            for v in vs {
                put_value(out, v);
            }
        }
        AnyValue::Map(kvs) => {
            out.push(6);
            put_attrs(out, kvs);
        }
    }
}

fn put_attrs(out: &mut Vec<u8>, attrs: &Attributes) {
    put_uvarint(out, attrs.len() as u64);
    for (k, v) in attrs {
        put_str(out, k.as_bytes());
        put_value(out, v);
    }
}

fn get_value(c: &mut Cursor<'_>, depth: usize) -> Result<AnyValue, String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("value nested too deeply".into());
    }
    Ok(match c.u8()? {
        0 => AnyValue::Str(c.str()?),
        1 => AnyValue::Bool(c.u8()? != 0),
        2 => AnyValue::Int(unzigzag(c.uvarint()?)),
        3 => AnyValue::Double(c.f64()?),
        4 => AnyValue::Bytes(c.blob()?.to_vec()),
        5 => {
            let n = c.count()?;
            let mut vs = Vec::with_capacity(n);
            for _ in 0..n {
                vs.push(get_value(c, depth + 1)?);
            }
            AnyValue::Array(vs)
        }
        6 => AnyValue::Map(get_attrs(c, depth + 1)?),
        t => return Err(format!("unknown value tag {t}")),
    })
}

/// Skips an encoded value: its structure is checked, its strings are not
/// built.
fn skip_value(c: &mut Cursor<'_>, depth: usize) -> Result<(), String> {
    if depth > MAX_VALUE_DEPTH {
        return Err("value nested too deeply".into());
    }
    match c.u8()? {
        0 | 4 => {
            c.blob()?;
        }
        1 => {
            c.u8()?;
        }
        2 => {
            c.uvarint()?;
        }
        3 => {
            c.f64()?;
        }
        5 => {
            for _ in 0..c.count()? {
                skip_value(c, depth + 1)?;
            }
        }
        6 => {
            skip_attrs(c, depth + 1)?;
        }
        t => return Err(format!("unknown value tag {t}")),
    }
    Ok(())
}

fn skip_attrs(c: &mut Cursor<'_>, depth: usize) -> Result<(), String> {
    for _ in 0..c.count()? {
        c.blob()?;
        skip_value(c, depth)?;
    }
    Ok(())
}

/// A string, or (`keep` false) an empty one with the bytes stepped over.
fn str_if(c: &mut Cursor<'_>, keep: bool) -> Result<String, String> {
    if keep {
        c.str()
    } else {
        c.blob().map(|_| String::new())
    }
}

/// A log body, or (`keep` false) an empty one stepped over. A template
/// body takes its variables from `vars`, the packed layout's columns, and
/// its template from the row, its frame's list or its file's shared ones.
fn body_if<'b>(
    c: &mut Cursor<'b>,
    vars: Option<&mut template::Sources<'_, 'b>>,
    (list, shared): (Option<&TemplateList<'b>>, &'b SharedTemplates),
    ids: Ids<'_>,
    keep: bool,
) -> Result<AnyValue, String> {
    let (t, slots) = match c.peek() {
        Some(TEMPLATE_TAG) => {
            c.u8()?;
            (c.blob()?, None)
        }
        Some(TEMPLATE_INDEX_TAG) => {
            c.u8()?;
            let list = list.ok_or("a template index in a frame without a template list")?;
            (list.get(c.uvarint()?)?, None)
        }
        Some(SHARED_TEMPLATE_TAG) if list.is_some() => {
            c.u8()?;
            let (t, slots) = shared.get(c.uvarint()?)?;
            (t, Some(slots))
        }
        _ if keep => return get_value(c, 0),
        _ => return skip_value(c, 0).map(|()| AnyValue::default()),
    };
    let vars = vars.ok_or("a template body in a frame without variable columns")?;
    if keep {
        template::unpack(t, slots, ids, vars).map(AnyValue::Str)
    } else {
        template::skip(t, slots, vars).map(|()| AnyValue::default())
    }
}

/// The bytes of the encoded attributes at `c`, stepped over.
fn attrs_bytes<'b>(c: &mut Cursor<'b>) -> Result<&'b [u8], String> {
    let start = c.rest();
    skip_attrs(c, 0)?;
    Ok(&start[..start.len() - c.rest().len()])
}

/// Resources of a frame read row by row (the plain layout, spans): a row
/// whose resource bytes are those of the row before shares its resource,
/// so a frame's records hold a few resources, not one each.
#[derive(Default)]
struct SharedResources<'b> {
    last: Option<(&'b [u8], Resource)>,
    /// What rows left out by a pick hold.
    none: Resource,
}

impl<'b> SharedResources<'b> {
    /// The next row's resource, or (`keep` false) an empty one, stepped
    /// over.
    fn next(&mut self, c: &mut Cursor<'b>, keep: bool) -> Result<Resource, String> {
        let bytes = attrs_bytes(c)?;
        if !keep {
            return Ok(Resource::clone(&self.none));
        }
        match &self.last {
            Some((b, r)) if *b == bytes => Ok(Resource::clone(r)),
            _ => {
                let r = Resource::new(get_attrs(&mut Cursor::new(bytes), 0)?);
                self.last = Some((bytes, Resource::clone(&r)));
                Ok(r)
            }
        }
    }
}

/// The distinct attribute lists of a frame's column, in first-use order,
/// each written once to a list column; rows hold their index.
#[derive(Default)]
struct AttrsTable {
    by_bytes: FxHashMap<Vec<u8>, u64>,
    scratch: Vec<u8>,
}

impl AttrsTable {
    /// The index of `attrs`, written to `list` when it is new.
    fn index(&mut self, attrs: &Attributes, list: &mut Vec<u8>) -> u64 {
        self.scratch.clear();
        put_attrs(&mut self.scratch, attrs);
        if let Some(&i) = self.by_bytes.get(&self.scratch) {
            return i;
        }
        let i = self.by_bytes.len() as u64;
        list.extend_from_slice(&self.scratch);
        self.by_bytes.insert(self.scratch.clone(), i);
        i
    }
}

/// [`AttrsTable`] for resources, looked up by address first: rows of one
/// batch share theirs.
#[derive(Default)]
struct ResourceTable {
    by_address: FxHashMap<usize, u64>,
    lists: AttrsTable,
}

impl ResourceTable {
    /// The index of `r`, written to `list` when it is new.
    fn index(&mut self, r: &Resource, list: &mut Vec<u8>) -> u64 {
        let address = Resource::as_ptr(r).addr();
        if let Some(&i) = self.by_address.get(&address) {
            return i;
        }
        let i = self.lists.index(r, list);
        // Rows are borrowed for the whole frame: no address is reused.
        self.by_address.insert(address, i);
        i
    }
}

/// A frame's list of distinct resources or attribute sets: where each
/// entry is, found up front, and its value, built the first time a row
/// that is built uses it (a search builds a few rows of a frame).
struct AttrsList<'b, T> {
    entries: Vec<(&'b [u8], Option<T>)>,
    /// What rows left out by a pick hold.
    none: T,
    /// What the list holds, for errors.
    what: &'static str,
}

/// A frame's resource list.
type ResourceList<'b> = AttrsList<'b, Resource>;
/// A frame's attribute sets (blocks from version 10).
type AttrSetList<'b> = AttrsList<'b, Attributes>;

impl<'b, T: Clone + Default + From<Attributes>> AttrsList<'b, T> {
    fn read(c: &mut Cursor<'b>, what: &'static str) -> Result<Self, String> {
        let mut entries = Vec::new();
        while !c.done() {
            entries.push((attrs_bytes(c)?, None));
        }
        Ok(AttrsList {
            entries,
            none: T::default(),
            what,
        })
    }

    /// Entry `i`, or (`keep` false) an empty one; an index past the list
    /// is an error either way.
    fn get(&mut self, i: u64, keep: bool) -> Result<T, String> {
        let n = self.entries.len();
        let (bytes, built) = usize::try_from(i)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
            .ok_or_else(|| format!("{} {i} of {n}", self.what))?;
        if !keep {
            return Ok(self.none.clone());
        }
        if let Some(v) = built {
            return Ok(v.clone());
        }
        let v = T::from(get_attrs(&mut Cursor::new(bytes), 0)?);
        *built = Some(v.clone());
        Ok(v)
    }
}

/// Attributes, or (`keep` false) none, stepped over.
fn attrs_if(c: &mut Cursor<'_>, keep: bool) -> Result<Attributes, String> {
    if keep {
        get_attrs(c, 0)
    } else {
        skip_attrs(c, 0).map(|()| Vec::new())
    }
}

fn get_attrs(c: &mut Cursor<'_>, depth: usize) -> Result<Attributes, String> {
    let n = c.count()?;
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push((c.str()?, get_value(c, depth)?));
    }
    Ok(out)
}

/// Columns of a log frame.
mod log_col {
    pub const TIME: usize = 0;
    pub const OBSERVED: usize = 1;
    pub const SEVERITY: usize = 2;
    pub const BODY: usize = 3;
    pub const ATTRS: usize = 4;
    pub const RESOURCE: usize = 5;
    pub const TRACE: usize = 6;
    // The packed layout adds the bodies' decimal and hex variables as
    // columns 7 and 8 (`template.rs`), from block version 7 the frame's
    // distinct resources as column 9, column 5 then holding each row's
    // index among them, from version 10 the frame's distinct attribute
    // sets as column 12, column 4 then holding each row's index among
    // them, and from version 11 the rows' trace flags as column 13, out
    // of column 6: a constant byte among random ones cost a byte a row
    // there (zstd codes it as a literal), next to nothing on its own.
}

/// The observed-time column's value: the offset from the record's time,
/// zigzagged. The packed layout swaps two codes: the one of an unset
/// observed time (0, whose offset is the whole time: about 3 bytes a
/// record after zstd for senders that leave it unset) and 1 (an offset of
/// -1 ns, which nothing sends). A swap is its own inverse, so
/// [`observed_ns`] applies it too.
fn observed_code(time_ns: i64, offset_code: u64, packed: bool) -> u64 {
    let unset = zigzag(0i64.wrapping_sub(time_ns));
    match offset_code {
        c if packed && c == unset => 1,
        1 if packed => unset,
        c => c,
    }
}

/// The observed time of a record of `time_ns` whose column value is `v`.
fn observed_ns(time_ns: i64, v: u64, packed: bool) -> i64 {
    time_ns.wrapping_add(unzigzag(observed_code(time_ns, v, packed)))
}

/// Tag of a string body written as its template (packed layout only).
const TEMPLATE_TAG: u8 = 7;
/// Tag of a string body written as the index of its template in the
/// frame's template list (packed layout of 12 columns only).
const TEMPLATE_INDEX_TAG: u8 = 8;

/// The distinct templates of a frame, in first-use order, each written
/// once to the frame's template column; rows hold their index. A frame of
/// 256 rows holds a few dozen templates: written in every row, each cost
/// zstd a match of 4 to 6 bytes (measured on 800k lines: 5.6 B a line of
/// the synthetic corpus, 3.3 of the demo's, against 3.7 and 1.6 as a list
/// and indexes).
#[derive(Default)]
struct TemplateTable {
    index: FxHashMap<Vec<u8>, u64>,
}

impl TemplateTable {
    /// The index of `template`, written to `list` when it is new.
    fn index(&mut self, template: &[u8], list: &mut Vec<u8>) -> u64 {
        if let Some(&i) = self.index.get(template) {
            return i;
        }
        let i = self.index.len() as u64;
        put_str(list, template);
        self.index.insert(template.to_vec(), i);
        i
    }
}

/// Tag of a string body written as the index of its template among those
/// its file's frames share (block `logs` files from version 8).
const SHARED_TEMPLATE_TAG: u8 = 9;

/// Bytes of templates the frames of a file share at most (as listed,
/// before compression): a reader holds them while the block is open.
/// Templates past them go to their frame's list.
const MAX_SHARED_TEMPLATE_BYTES: usize = 64 << 10;

/// The templates a file's frames share, with how their decimals are
/// written: gathered over a sample of the file's rows
/// ([`Columnar::share`], [`SHARE_SAMPLE_ROWS`]) before its frames are
/// encoded. Listed in each frame, the synthetic corpus's
/// 70-odd templates a frame cost 2.8 bytes a line and the demo's 1.1
/// (800k lines); listed once a block, next to nothing. A shared template's
/// decimals are written as bits, each its slot's value less the least of
/// the block in as many bits as the slot's range needs: varints spent
/// 13.6 bytes a line on the synthetic corpus's numbers (ports, octets,
/// sizes, ids), their bits 9.3.
#[derive(Default)]
pub struct SharedTemplatesWriter {
    index: FxHashMap<Vec<u8>, u64>,
    /// Each shared template, and the least and greatest value of each of
    /// its decimals.
    entries: Vec<(Vec<u8>, Ranges)>,
    /// Bytes the list takes, at most.
    bytes: usize,
    /// How each template's decimals are written, once all are seen.
    slots: Vec<template::Slots>,
}

impl SharedTemplatesWriter {
    /// A writer of the templates `rows` share: those of an evenly spread
    /// sample of them, with their slots' ranges there. A template the
    /// sample misses is a rare one and goes to its frames' lists; a value
    /// outside its slot's range (about one in as many as the sample has,
    /// at worst) takes its row's template there too.
    pub fn of<T: Columnar, R: Borrow<T>>(rows: &[R]) -> Self {
        let mut w = Self::default();
        let step = rows.len().div_ceil(SHARE_SAMPLE_ROWS).max(1);
        if step == 1 {
            T::share(rows, &mut w);
        } else {
            // A row from each run of `step`, at a place that varies from
            // run to run: every `step`-th row would miss whatever comes
            // back with a period that shares a factor with the step (the
            // synthetic corpus's services take turns).
            let sample: Vec<&T> = rows
                .chunks(step)
                .enumerate()
                .map(|(k, run)| {
                    let at = (k as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
                    run[at as usize % run.len()].borrow()
                })
                .collect();
            T::share(&sample, &mut w);
        }
        w.slots = w
            .entries
            .iter()
            .map(|(_, r)| template::Slots::new(r))
            .collect();
        w
    }

    /// Notes a body of `template` whose decimals are the varints
    /// `decimals`, sharing the template if new and there is room.
    fn add(&mut self, template: &[u8], decimals: &[u8]) {
        let i = match self.index.get(template) {
            Some(&i) => i as usize,
            None => {
                let n = varint_count(decimals);
                // A length or value takes at most 10 bytes, a width 1.
                let bytes = template.len() + 10 + 11 * n;
                if self.bytes + bytes > MAX_SHARED_TEMPLATE_BYTES {
                    return;
                }
                self.bytes += bytes;
                self.index
                    .insert(template.to_vec(), self.entries.len() as u64);
                self.entries
                    .push((template.to_vec(), vec![(u64::MAX, 0); n]));
                self.entries.len() - 1
            }
        };
        let mut c = Cursor::new(decimals);
        for range in &mut self.entries[i].1 {
            let Ok(v) = c.uvarint() else { break };
            *range = (range.0.min(v), range.1.max(v));
        }
    }

    /// The index of a shared template and how its decimals are written.
    fn get(&self, template: &[u8]) -> Option<(u64, &template::Slots)> {
        let &i = self.index.get(template)?;
        Some((i, self.slots.get(i as usize)?))
    }

    /// Appends the shared templates to `out`, nothing if there are none:
    /// `count varint | len varint | zstd frame of count × (len varint |
    /// template | (least varint | bits u8) × its decimals)`, `len` being
    /// the list's bytes before compression.
    pub fn finish(self, out: &mut Vec<u8>) -> std::io::Result<()> {
        if self.entries.is_empty() {
            return Ok(());
        }
        let mut list = Vec::with_capacity(self.bytes);
        for ((t, _), s) in self.entries.iter().zip(&self.slots) {
            put_str(&mut list, t);
            for &(least, bits) in &s.slots {
                put_uvarint(&mut list, least);
                list.push(bits);
            }
        }
        let packed = zstd::bulk::compress(&list, 3)?;
        put_uvarint(out, self.entries.len() as u64);
        put_uvarint(out, list.len() as u64);
        out.extend_from_slice(&packed);
        Ok(())
    }
}

/// The least and greatest value of each decimal of a template.
type Ranges = Vec<(u64, u64)>;

/// Rows of a file whose templates are shared, at most: packing every body
/// of a block a second time for its templates cost the flush of 10M demo
/// lines 18% more time (15.2 → 18.0 s), and a sample of 64k rows still
/// cost 2M demo lines (blocks of 150k rows) 13–15% of their ingest CPU.
const SHARE_SAMPLE_ROWS: usize = 1 << 14;

/// Packs `text`, the body of `r`: its template into `template` and its
/// decimals into `decimals` (both cleared first), its hex bytes onto
/// `hex`.
fn pack_body(
    r: &LogRecord,
    text: &str,
    template: &mut Vec<u8>,
    decimals: &mut Vec<u8>,
    hex: &mut Vec<u8>,
) {
    template.clear();
    decimals.clear();
    let ids = Ids {
        trace: &r.trace_id,
        span: &r.span_id,
    };
    template::pack(
        text,
        ids,
        template,
        &mut template::Columns { decimals, hex },
    );
}

/// The number of varints in `bytes`.
fn varint_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b < 0x80).count()
}

/// The templates a file's frames share, as [`SharedTemplatesWriter`]
/// wrote them.
#[derive(Debug, Default)]
pub struct SharedTemplates {
    list: Vec<(Box<[u8]>, template::Slots)>,
}

/// What a file without shared templates (the WAL, older blocks) shares.
static NO_SHARED_TEMPLATES: SharedTemplates = SharedTemplates { list: Vec::new() };

impl SharedTemplates {
    /// Reads shared templates (empty bytes: none). Bad bytes give an
    /// error; memory stays under [`MAX_SHARED_TEMPLATE_BYTES`] whatever
    /// they claim.
    pub fn read(bytes: &[u8]) -> Result<Self, String> {
        if bytes.is_empty() {
            return Ok(Self::default());
        }
        let mut c = Cursor::new(bytes);
        let count = c.uvarint()?;
        let len = c.uvarint()?;
        let len = usize::try_from(len)
            .ok()
            .filter(|&n| n <= MAX_SHARED_TEMPLATE_BYTES)
            .ok_or_else(|| format!("shared templates of {len} bytes"))?;
        let list =
            zstd::bulk::decompress(c.rest(), len).map_err(|e| format!("shared templates: {e}"))?;
        if list.len() != len {
            return Err(format!("shared templates: {} bytes, not {len}", list.len()));
        }
        let mut c = Cursor::new(&list);
        let mut out = Vec::new();
        while !c.done() {
            let t = c.blob()?;
            let mut slots = Vec::new();
            for _ in 0..template::decimals_of(t)? {
                let least = c.uvarint()?;
                let bits = c.u8()?;
                if bits > 64 {
                    return Err(format!("a shared template's decimal of {bits} bits"));
                }
                slots.push((least, bits));
            }
            let bits = slots.iter().map(|&(_, b)| usize::from(b)).sum();
            out.push((t.into(), template::Slots { slots, bits }));
        }
        if out.len() as u64 != count {
            return Err(format!("{} shared templates, not {count}", out.len()));
        }
        Ok(SharedTemplates { list: out })
    }

    fn get(&self, i: u64) -> Result<(&[u8], &template::Slots), String> {
        let n = self.list.len();
        usize::try_from(i)
            .ok()
            .and_then(|i| self.list.get(i))
            .map(|(t, s)| (&t[..], s))
            .ok_or_else(|| format!("shared template {i} of {n}"))
    }
}

/// A frame's template column: each template, found up front.
struct TemplateList<'b>(Vec<&'b [u8]>);

impl<'b> TemplateList<'b> {
    fn read(c: &mut Cursor<'b>) -> Result<Self, String> {
        let mut list = Vec::new();
        while !c.done() {
            list.push(c.blob()?);
        }
        Ok(TemplateList(list))
    }

    fn get(&self, i: u64) -> Result<&'b [u8], String> {
        let n = self.0.len();
        usize::try_from(i)
            .ok()
            .and_then(|i| self.0.get(i).copied())
            .ok_or_else(|| format!("template {i} of {n}"))
    }
}

/// Rows ahead whose strings a frame's encoding asks the CPU to load
/// ([`LogRecord::prefetch_heap`]): a flush encodes records written
/// minutes before, each a chain of cache misses. A WAL frame's records
/// are the first use of a batch some megabytes large (an OTLP exporter's
/// default batch is 8192 records): copying the demo's attribute strings
/// into the WAL frame had been 7% of the write path at 10M lines, and
/// the write path was 20% faster with the prefetch (decisions.md §31).
const PREFETCH_ROWS: usize = 8;

impl Columnar for LogRecord {
    const COLS: usize = 7;
    /// The fields and the frame's resource list (WAL frames from
    /// 2026-12-07): a resource of a demo record is four attributes, which
    /// each row repeated, half of encoding a WAL frame.
    const PLAIN_COLS: usize = 8;
    const PACKED_COLS: usize = 14;
    /// WAL frames from before 2026-12-07 and blocks of versions 1 to 4
    /// hold 7 columns, with a resource written out in every row; blocks
    /// of versions 5 and 6 hold 9: packed, a resource in every row; blocks
    /// of version 7 hold 10: a template in every row; blocks of versions
    /// 8 and 9 hold 12: attributes written out in every row; blocks of
    /// version 10 hold 13: a row's trace flags after its ids.
    const READ_COLS: &'static [usize] = &[7, 8, 9, 10, 12, 13, 14];
    /// Trace and span ids: a demo line's 24 random bytes, 73% of its
    /// records' compressed bytes and a third of the time zstd took on them
    /// at level 3.
    const RANDOM_COLS: &'static [usize] = &[log_col::TRACE];

    fn share<R: Borrow<Self>>(rows: &[R], shared: &mut SharedTemplatesWriter) {
        let (mut template, mut decimals, mut hex) = (Vec::new(), Vec::new(), Vec::new());
        for r in rows {
            let r = r.borrow();
            if let AnyValue::Str(text) = &r.body {
                hex.clear();
                pack_body(r, text, &mut template, &mut decimals, &mut hex);
                shared.add(&template, &decimals);
            }
        }
    }

    fn encode<R: Borrow<Self>>(
        rows: &[R],
        cols: &mut [Vec<u8>],
        shared: Option<&SharedTemplatesWriter>,
    ) {
        use log_col::*;
        let (cols, vars) = cols.split_at_mut(Self::COLS);
        // The variables of packed bodies, then the frame's resource list
        // (without one, each row's resource is written out), then its
        // template list (without one, each row's template is), then its
        // attribute sets (without them, each row's attributes are).
        let (mut vars, mut table, mut list, mut sets, mut flag_col) = match vars {
            [table] => (None, Some(table), None, None, None),
            // The packed layout's columns, as many as asked (see `log_col`).
            packed => {
                let mut col = packed.iter_mut();
                let vars = col.next().zip(col.next());
                let table = col.next();
                let list = col.next().zip(col.next());
                (vars, table, list, col.next(), col.next())
            }
        };
        let mut prev = 0i64;
        let mut template = Vec::new();
        // A body's decimals as varints, then as values.
        let (mut scratch, mut values) = (Vec::new(), Vec::new());
        let mut bits = BitWriter::default();
        let mut resources = ResourceTable::default();
        let mut attr_sets = AttrsTable::default();
        let mut templates = TemplateTable::default();
        for (j, r) in rows.iter().enumerate() {
            if let Some(ahead) = rows.get(j + PREFETCH_ROWS) {
                ahead.borrow().prefetch_heap();
            }
            if let Some(ahead) = rows.get(j + PREFETCH_ROWS / 2) {
                ahead.borrow().prefetch_attr_strings();
            }
            let r = r.borrow();
            put_uvarint(&mut cols[TIME], zigzag(r.time_ns.wrapping_sub(prev)));
            prev = r.time_ns;
            let offset = zigzag(r.observed_ns.wrapping_sub(r.time_ns));
            let code = observed_code(r.time_ns, offset, vars.is_some());
            put_uvarint(&mut cols[OBSERVED], code);
            cols[SEVERITY].push(r.severity);
            put_str(&mut cols[SEVERITY], r.severity_text.as_bytes());
            match (&r.body, &mut vars) {
                (AnyValue::Str(text), Some((decimals, hex))) => {
                    pack_body(r, text, &mut template, &mut scratch, hex);
                    let own = shared
                        .and_then(|s| s.get(&template))
                        .filter(|(_, slots)| slots.fit(&scratch, &mut values));
                    match (&mut list, own) {
                        (Some(_), Some((i, slots))) => {
                            cols[BODY].push(SHARED_TEMPLATE_TAG);
                            put_uvarint(&mut cols[BODY], i);
                            for (&v, &(least, width)) in values.iter().zip(&slots.slots) {
                                bits.bits(v - least, width);
                            }
                        }
                        (Some((list, _)), None) => {
                            cols[BODY].push(TEMPLATE_INDEX_TAG);
                            put_uvarint(&mut cols[BODY], templates.index(&template, list));
                            decimals.extend_from_slice(&scratch);
                        }
                        (None, _) => {
                            cols[BODY].push(TEMPLATE_TAG);
                            put_str(&mut cols[BODY], &template);
                            decimals.extend_from_slice(&scratch);
                        }
                    }
                }
                (body, _) => put_value(&mut cols[BODY], body),
            }
            match &mut sets {
                Some(sets) => {
                    let i = attr_sets.index(&r.attributes, sets);
                    put_uvarint(&mut cols[ATTRS], i);
                }
                None => put_attrs(&mut cols[ATTRS], &r.attributes),
            }
            match &mut table {
                Some(table) => {
                    let i = resources.index(&r.resource, table);
                    put_uvarint(&mut cols[RESOURCE], i);
                }
                None => put_attrs(&mut cols[RESOURCE], &r.resource),
            }
            cols[TRACE].extend_from_slice(&r.trace_id);
            cols[TRACE].extend_from_slice(&r.span_id);
            let flags = flag_col.as_deref_mut().unwrap_or(&mut cols[TRACE]);
            put_uvarint(flags, u64::from(r.flags));
        }
        if let Some((_, column)) = list {
            column.extend_from_slice(bits.bytes());
        }
    }

    fn ids(&self) -> (TraceId, SpanId) {
        (self.trace_id, self.span_id)
    }

    fn decode_rows<'b>(
        n: usize,
        c: &mut [Cursor<'b>],
        pick: Pick<'_>,
        file_templates: &'b SharedTemplates,
    ) -> Result<Vec<Self>, String> {
        use log_col::*;
        let mut out = Vec::with_capacity(n.min(c[TIME].remaining()));
        let (c, vars) = c.split_at_mut(Self::COLS);
        // A plain frame has no variable columns: a template body there is
        // an error.
        let (mut vars, mut table, list, mut sets, mut flag_col) = match vars {
            [table] => (
                None,
                Some(ResourceList::read(table, "resource")?),
                None,
                None,
                None,
            ),
            // The packed layout's columns, as many as the frame's version
            // has (see `log_col`).
            packed => {
                let mut col = packed.iter_mut();
                let (decimals, hex) = (col.next(), col.next());
                let table = col.next().map(|t| ResourceList::read(t, "resource"));
                let list = col.next().map(TemplateList::read).transpose()?;
                let bits = col.next().map(|b| b.bytes(b.remaining())).transpose()?;
                let sets = col.next().map(|s| AttrSetList::read(s, "attribute set"));
                let vars = match (decimals, hex, bits) {
                    (Some(d), Some(h), Some(b)) => Some(template::Sources::with_bits(d, h, b)),
                    (Some(d), Some(h), None) => Some(template::Sources::new(d, h)),
                    _ => None,
                };
                (
                    vars,
                    table.transpose()?,
                    list,
                    sets.transpose()?,
                    col.next(),
                )
            }
        };
        let mut shared = SharedResources::default();
        let mut prev = 0i64;
        for i in 0..n {
            // Columns are separate cursors: the ids come first, to decide.
            let trace_id = c[TRACE].array()?;
            let span_id = c[TRACE].array()?;
            let flags = flag_col.as_deref_mut().unwrap_or(&mut c[TRACE]).uvarint()?;
            let flags = u32::try_from(flags).map_err(|_| "log flags")?;
            let keep = pick.keeps(i, &trace_id, &span_id);
            let ids = Ids {
                trace: &trace_id,
                span: &span_id,
            };
            let time_ns = prev.wrapping_add(unzigzag(c[TIME].uvarint()?));
            prev = time_ns;
            // The body first: whether the row's other text is built
            // depends on it.
            let body = body_if(
                &mut c[BODY],
                vars.as_mut(),
                (list.as_ref(), file_templates),
                ids,
                keep,
            )?;
            let keep = keep && pick.body.is_none_or(|f| f(i, &body));
            let resource = match &mut table {
                Some(t) => t.get(c[RESOURCE].uvarint()?, keep)?,
                None => shared.next(&mut c[RESOURCE], keep)?,
            };
            out.push(LogRecord {
                time_ns,
                observed_ns: observed_ns(time_ns, c[OBSERVED].uvarint()?, vars.is_some()),
                severity: c[SEVERITY].u8()?,
                severity_text: str_if(&mut c[SEVERITY], keep)?,
                body,
                attributes: match &mut sets {
                    Some(s) => s.get(c[ATTRS].uvarint()?, keep)?,
                    None => attrs_if(&mut c[ATTRS], keep)?,
                },
                resource,
                trace_id,
                span_id,
                flags,
            });
        }
        if let Some(v) = &mut vars {
            v.catch_up()?;
        }
        Ok(out)
    }
}

/// Columns of a span frame.
mod span_col {
    pub const TRACE: usize = 0;
    pub const IDS: usize = 1;
    pub const NAME: usize = 2;
    pub const STATUS: usize = 3;
    pub const START: usize = 4;
    pub const DURATION: usize = 5;
    pub const ATTRS: usize = 6;
    pub const RESOURCE: usize = 7;
    pub const EVENTS: usize = 8;
}

impl Columnar for Span {
    const COLS: usize = 9;

    fn encode<R: Borrow<Self>>(
        rows: &[R],
        cols: &mut [Vec<u8>],
        _: Option<&SharedTemplatesWriter>,
    ) {
        use span_col::*;
        let mut prev = 0i64;
        for s in rows {
            let s = s.borrow();
            cols[TRACE].extend_from_slice(&s.trace_id);
            cols[IDS].extend_from_slice(&s.span_id);
            cols[IDS].extend_from_slice(&s.parent_span_id);
            put_str(&mut cols[NAME], s.name.as_bytes());
            cols[STATUS].extend_from_slice(&[s.kind as u8, s.status as u8]);
            put_str(&mut cols[STATUS], s.status_message.as_bytes());
            put_uvarint(&mut cols[START], zigzag(s.start_ns.wrapping_sub(prev)));
            prev = s.start_ns;
            put_uvarint(
                &mut cols[DURATION],
                s.end_ns.wrapping_sub(s.start_ns) as u64,
            );
            put_attrs(&mut cols[ATTRS], &s.attributes);
            put_attrs(&mut cols[RESOURCE], &s.resource);
            let ev = &mut cols[EVENTS];
            put_uvarint(ev, s.events.len() as u64);
            for e in &s.events {
                put_uvarint(ev, zigzag(e.time_ns.wrapping_sub(s.start_ns)));
                put_str(ev, e.name.as_bytes());
                put_attrs(ev, &e.attributes);
            }
            put_uvarint(ev, s.links.len() as u64);
            for l in &s.links {
                ev.extend_from_slice(&l.trace_id);
                ev.extend_from_slice(&l.span_id);
                put_attrs(ev, &l.attributes);
            }
        }
    }

    fn ids(&self) -> (TraceId, SpanId) {
        (self.trace_id, self.span_id)
    }

    fn decode_rows(
        n: usize,
        c: &mut [Cursor<'_>],
        pick: Pick<'_>,
        _: &SharedTemplates,
    ) -> Result<Vec<Self>, String> {
        use span_col::*;
        let mut out = Vec::with_capacity(n.min(c[TRACE].remaining() / 16));
        let mut prev = 0i64;
        let mut shared = SharedResources::default();
        for i in 0..n {
            let trace_id = c[TRACE].array()?;
            let span_id = c[IDS].array()?;
            let keep = pick.keeps(i, &trace_id, &span_id);
            let parent_span_id = c[IDS].array()?;
            let name = str_if(&mut c[NAME], keep)?;
            let kind = SpanKind::from_u8(c[STATUS].u8()?);
            let status = StatusCode::from_u8(c[STATUS].u8()?);
            let status_message = str_if(&mut c[STATUS], keep)?;
            let start_ns = prev.wrapping_add(unzigzag(c[START].uvarint()?));
            prev = start_ns;
            let end_ns = start_ns.wrapping_add(c[DURATION].uvarint()? as i64);
            let attributes = attrs_if(&mut c[ATTRS], keep)?;
            let resource = shared.next(&mut c[RESOURCE], keep)?;
            let ev = &mut c[EVENTS];
            let ne = ev.count()?;
            let mut events = Vec::with_capacity(if keep { ne } else { 0 });
            for _ in 0..ne {
                let time_ns = start_ns.wrapping_add(unzigzag(ev.uvarint()?));
                let name = str_if(ev, keep)?;
                let attributes = attrs_if(ev, keep)?;
                if keep {
                    events.push(SpanEvent {
                        time_ns,
                        name,
                        attributes,
                    });
                }
            }
            let nl = ev.count()?;
            let mut links = Vec::with_capacity(if keep { nl } else { 0 });
            for _ in 0..nl {
                let (trace_id, span_id) = (ev.array()?, ev.array()?);
                let attributes = attrs_if(ev, keep)?;
                if keep {
                    links.push(SpanLink {
                        trace_id,
                        span_id,
                        attributes,
                    });
                }
            }
            out.push(Span {
                trace_id,
                span_id,
                parent_span_id,
                name,
                kind,
                start_ns,
                end_ns,
                status,
                status_message,
                attributes,
                resource,
                events,
                links,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn value() -> impl Strategy<Value = AnyValue> {
        let leaf = prop_oneof![
            ".{0,12}".prop_map(AnyValue::Str),
            any::<bool>().prop_map(AnyValue::Bool),
            any::<i64>().prop_map(AnyValue::Int),
            any::<u64>().prop_map(|b| AnyValue::Double(f64::from_bits(b))),
            proptest::collection::vec(any::<u8>(), 0..8).prop_map(AnyValue::Bytes),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(AnyValue::Array),
                proptest::collection::vec(("[a-z.]{0,6}", inner), 0..4).prop_map(AnyValue::Map),
            ]
        })
    }

    pub(crate) fn attrs() -> impl Strategy<Value = Attributes> {
        proptest::collection::vec(("[a-z._]{0,8}", value()), 0..4)
    }

    /// A log body: any value, or a line with numbers, hex ids and
    /// template marker bytes, which may print the record's own ids (the
    /// flag).
    fn body() -> impl Strategy<Value = (AnyValue, bool)> {
        prop_oneof![
            value().prop_map(|v| (v, false)),
            (
                "([a-f0-9 =:/.-]{1,20}|[0-9]{1,21}|[\\x10-\\x14é]){0,6}",
                any::<bool>()
            )
                .prop_map(|(t, own)| (AnyValue::Str(t), own)),
        ]
    }

    pub(crate) fn log() -> impl Strategy<Value = LogRecord> {
        (
            (any::<i64>(), any::<i64>(), 0u8..=24, "[A-Z]{0,5}", 0u8..4),
            (body(), attrs(), attrs()),
            (any::<[u8; 16]>(), any::<[u8; 8]>(), any::<u32>()),
        )
            .prop_map(
                |((t, o, sev, st, which), ((mut body, own), a, r), (tr, sp, fl))| {
                    // Unset, as the time, and the code swapped with unset.
                    let o = match which {
                        0 => 0,
                        1 => t,
                        2 => t.wrapping_sub(1),
                        _ => o,
                    };
                    if let (AnyValue::Str(text), true) = (&mut body, own) {
                        *text = format!(
                            "{text} trace_id={} span_id={}.",
                            crate::model::hex(&tr),
                            crate::model::hex(&sp)
                        );
                    }
                    LogRecord {
                        time_ns: t,
                        observed_ns: o,
                        severity: sev,
                        severity_text: st,
                        body,
                        attributes: a,
                        resource: r.into(),
                        trace_id: tr,
                        span_id: sp,
                        flags: fl,
                    }
                },
            )
    }

    pub(crate) fn span() -> impl Strategy<Value = Span> {
        (
            (
                any::<[u8; 16]>(),
                any::<[u8; 8]>(),
                any::<[u8; 8]>(),
                ".{0,10}",
            ),
            (0u8..6, 0u8..3, ".{0,6}", any::<i64>(), any::<i64>()),
            (attrs(), attrs()),
            proptest::collection::vec((any::<i64>(), "[a-z]{0,5}", attrs()), 0..3),
            proptest::collection::vec((any::<[u8; 16]>(), any::<[u8; 8]>(), attrs()), 0..2),
        )
            .prop_map(
                |((tr, sp, par, name), (k, st, msg, s, e), (a, r), ev, ln)| Span {
                    trace_id: tr,
                    span_id: sp,
                    parent_span_id: par,
                    name,
                    kind: SpanKind::from_u8(k),
                    status: StatusCode::from_u8(st),
                    status_message: msg,
                    start_ns: s,
                    end_ns: e,
                    attributes: a,
                    resource: r.into(),
                    events: ev
                        .into_iter()
                        .map(|(t, n, a)| SpanEvent {
                            time_ns: t,
                            name: n,
                            attributes: a,
                        })
                        .collect(),
                    links: ln
                        .into_iter()
                        .map(|(t, s, a)| SpanLink {
                            trace_id: t,
                            span_id: s,
                            attributes: a,
                        })
                        .collect(),
                },
            )
    }

    /// Equality that compares doubles bit for bit (NaN round trips).
    fn same<T: std::fmt::Debug>(a: &T, b: &T) -> bool {
        format!("{a:?}") == format!("{b:?}")
    }

    proptest! {
        #[test]
        fn logs_round_trip(rows in proptest::collection::vec(log(), 0..8)) {
            for layout in [Layout::Plain, Layout::Packed] {
                let mut buf = Vec::new();
                encode_frame(&rows, layout, &mut buf);
                let back: Vec<LogRecord> = decode_frame(&buf).unwrap();
                prop_assert!(same(&rows, &back), "{:?}", layout);
            }
        }

        #[test]
        fn spans_round_trip(rows in proptest::collection::vec(span(), 0..8)) {
            for layout in [Layout::Plain, Layout::Packed] {
                let mut buf = Vec::new();
                encode_frame(&rows, layout, &mut buf);
                let back: Vec<Span> = decode_frame(&buf).unwrap();
                prop_assert!(same(&rows, &back));
            }
        }

        #[test]
        fn selected_rows_decode_as_in_full(
            spans in proptest::collection::vec(span(), 0..8),
            logs in proptest::collection::vec(log(), 0..8),
            mask in proptest::collection::vec(any::<bool>(), 8),
            packed in any::<bool>(),
            block in any::<bool>(),
            body_test in any::<bool>(),
        ) {
            let layout = if packed { Layout::Packed } else { Layout::Plain };
            let (mut sb, mut lb) = (Vec::new(), Vec::new());
            encode_frame(&spans, layout, &mut sb);
            // As a block file's frame, sharing its templates (their
            // decimals as bits), or alone.
            let mut shared = Vec::new();
            if block {
                let writer = SharedTemplatesWriter::of::<LogRecord, _>(&logs);
                encode_block_frame(&logs, &writer, &mut lb);
                writer.finish(&mut shared).unwrap();
            } else {
                encode_frame(&logs, layout, &mut lb);
            }
            let shared = SharedTemplates::read(&shared).unwrap();
            // A body test, when given, turns away bodies of odd length:
            // those rows keep their body only, and the rows after them
            // still decode whole.
            let even = |_: usize, b: &AnyValue| b.to_text().len().is_multiple_of(2);
            let pick = |n: usize| Pick {
                mask: Some(&mask[..n]),
                body: body_test.then_some(&even as BodyPick),
                ..Pick::default()
            };
            let s: Vec<Span> = decode_frame_rows(&sb, pick(spans.len()), &NO_SHARED_TEMPLATES).unwrap();
            let l: Vec<LogRecord> = decode_frame_rows(&lb, pick(logs.len()), &shared).unwrap();
            // Up to the last row the mask keeps.
            let read = |n: usize| mask[..n].iter().rposition(|&k| k).map_or(0, |i| i + 1);
            prop_assert_eq!(s.len(), read(spans.len()));
            prop_assert_eq!(l.len(), read(logs.len()));
            for (i, keep) in mask.iter().enumerate() {
                if *keep && i < spans.len() {
                    prop_assert!(same(&s[i], &spans[i]));
                }
                if *keep && i < logs.len() {
                    if !body_test || even(i, &logs[i].body) {
                        prop_assert!(same(&l[i], &logs[i]));
                    } else {
                        prop_assert!(same(&l[i].body, &logs[i].body));
                    }
                }
            }
        }

        #[test]
        fn attribute_sets_round_trip_listed_once(
            picks in proptest::collection::vec((0usize..3, any::<u32>()), 0..12),
            pool in proptest::collection::vec(attrs(), 3),
        ) {
            let rows: Vec<LogRecord> = picks
                .iter()
                .map(|&(k, flags)| LogRecord {
                    attributes: pool[k].clone(),
                    body: AnyValue::Str(format!("row {k}")),
                    flags,
                    ..LogRecord::default()
                })
                .collect();
            let mut buf = Vec::new();
            encode_frame(&rows, Layout::Packed, &mut buf);
            let back: Vec<LogRecord> = decode_frame(&buf).unwrap();
            prop_assert!(same(&rows, &back));
            // Each distinct set once, in column 12. Distinct as written:
            // a set holding a NaN is not `==` to itself, yet is one set.
            let written = |a: &Attributes| {
                let mut b = Vec::new();
                put_attrs(&mut b, a);
                b
            };
            let mut distinct: Vec<Vec<u8>> = rows.iter().map(|r| written(&r.attributes)).collect();
            distinct.sort();
            distinct.dedup();
            let (_, cols) = columns(&buf);
            let list = AttrSetList::read(&mut Cursor::new(&cols[12]), "set").unwrap();
            prop_assert_eq!(list.entries.len(), distinct.len());
            // Blocks of version 10 (13 columns, flags after the ids) and
            // of versions 8 and 9 (12, attributes in every row) still
            // read, and encoding writes them to the same bytes.
            let v10 = without_flag_column(&buf);
            let v8 = without_attribute_sets(&v10);
            for old in [v10, v8] {
                prop_assert!(same(&rows, &decode_frame::<LogRecord>(&old).unwrap()));
                let mut cols = vec![Vec::new(); columns(&old).1.len()];
                LogRecord::encode(&rows, &mut cols, None);
                prop_assert_eq!(frame(rows.len() as u64, &cols), old);
            }
        }

        #[test]
        fn shared_resources_round_trip_and_stay_shared(
            picks in proptest::collection::vec((0usize..3, any::<bool>()), 0..12),
            pool in proptest::collection::vec(attrs(), 3),
        ) {
            // Rows take one of three resources, either the same allocation
            // or an equal copy.
            let pool: Vec<Resource> = pool.into_iter().map(Resource::new).collect();
            let rows: Vec<LogRecord> = picks
                .iter()
                .map(|&(k, copy)| LogRecord {
                    resource: if copy { Resource::new(pool[k].to_vec()) } else { Resource::clone(&pool[k]) },
                    body: AnyValue::Str(format!("row {k}")),
                    ..LogRecord::default()
                })
                .collect();
            for layout in [Layout::Plain, Layout::Packed] {
                let mut buf = Vec::new();
                encode_frame(&rows, layout, &mut buf);
                let back: Vec<LogRecord> = decode_frame(&buf).unwrap();
                prop_assert!(same(&rows, &back));
                if layout == Layout::Packed {
                    // As blocks of version 7 hold it (10 columns), checked
                    // below as well.
                    buf = without_template_list(&without_attribute_sets(&without_flag_column(&buf)));
                }
                // Every equal resource is one allocation, listed once: at
                // most three.
                let mut distinct: Vec<usize> =
                    back.iter().map(|r| Resource::as_ptr(&r.resource).addr()).collect();
                distinct.sort_unstable();
                distinct.dedup();
                let (_, cols) = columns(&buf);
                let table = ResourceList::read(&mut Cursor::new(&cols[cols.len() - 1]), "resource").unwrap();
                prop_assert_eq!(distinct.len(), table.entries.len());
                prop_assert!(table.entries.len() <= 3);
                // The same frame with each row's resource written out, as
                // blocks before version 7 and WAL segments before
                // 2026-12-07 hold it (9 and 7 columns).
                let old = without_resource_list(&buf);
                let back: Vec<LogRecord> = decode_frame(&old).unwrap();
                prop_assert!(same(&rows, &back), "{} columns still read", cols.len() - 1);
                for (a, b) in back.iter().zip(back.iter().skip(1)) {
                    // Equal neighbours share.
                    prop_assert!(a.resource != b.resource || Resource::ptr_eq(&a.resource, &b.resource));
                }
                // Encoding writes those layouts too, to the same bytes.
                let mut cols = vec![Vec::new(); cols.len() - 1];
                LogRecord::encode(&rows, &mut cols, None);
                prop_assert_eq!(frame(rows.len() as u64, &cols), old);
            }
        }

        #[test]
        fn damaged_frames_never_panic(rows in proptest::collection::vec(span(), 1..4), cut in any::<usize>(), flip in any::<(usize, u8)>()) {
            let mut buf = Vec::new();
            encode_frame(&rows, Layout::Plain, &mut buf);
            damage(buf, cut, flip);
        }

        #[test]
        fn damaged_log_frames_never_panic(rows in proptest::collection::vec(log(), 1..4), cut in any::<usize>(), flip in any::<(usize, u8)>(), packed in any::<bool>()) {
            let mut buf = Vec::new();
            encode_frame(&rows, if packed { Layout::Packed } else { Layout::Plain }, &mut buf);
            damage(buf, cut, flip);
        }
    }

    /// A frame's row count and columns.
    fn columns(frame: &[u8]) -> (u64, Vec<Vec<u8>>) {
        let mut c = Cursor::new(frame);
        let rows = c.uvarint().unwrap();
        let lens: Vec<u64> = (0..c.uvarint().unwrap())
            .map(|_| c.uvarint().unwrap())
            .collect();
        let cols = lens
            .iter()
            .map(|&n| c.bytes(n as usize).unwrap().to_vec())
            .collect();
        (rows, cols)
    }

    /// A frame of `rows` rows from its columns.
    fn frame(rows: u64, cols: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        put_uvarint(&mut out, rows);
        put_uvarint(&mut out, cols.len() as u64);
        for c in cols {
            put_uvarint(&mut out, c.len() as u64);
        }
        cols.iter().for_each(|c| out.extend_from_slice(c));
        out
    }

    /// An attribute set index past the frame's list, and a flag column
    /// shorter than its rows, are errors naming what is wrong.
    #[test]
    fn bad_attribute_indexes_and_flags_are_errors() {
        let rows = vec![LogRecord {
            attributes: vec![("code.function".into(), AnyValue::Str("get".into()))],
            flags: 1,
            ..LogRecord::default()
        }];
        let mut buf = Vec::new();
        encode_frame(&rows, Layout::Packed, &mut buf);
        let (n, cols) = columns(&buf);
        let mut past = cols.clone();
        past[log_col::ATTRS] = vec![5];
        let err = decode_frame::<LogRecord>(&frame(n, &past)).unwrap_err();
        assert!(err.contains("attribute set 5 of 1"), "{err}");
        let mut short = cols;
        short[13].clear();
        assert!(decode_frame::<LogRecord>(&frame(n, &short)).is_err());
    }

    /// A packed log frame of 14 columns with each row's flags after its
    /// ids in column 6 and no flag column (13), as blocks of version 10
    /// hold it.
    fn without_flag_column(frame_with: &[u8]) -> Vec<u8> {
        let (rows, mut cols) = columns(frame_with);
        let flags = cols.pop().unwrap();
        let (mut flags, mut ids) = (Cursor::new(&flags), Cursor::new(&cols[log_col::TRACE]));
        let mut each = Vec::new();
        for _ in 0..rows {
            each.extend_from_slice(ids.bytes(24).unwrap());
            put_uvarint(&mut each, flags.uvarint().unwrap());
        }
        cols[log_col::TRACE] = each;
        frame(rows, &cols)
    }

    /// A packed log frame of 13 columns with each row's attributes written
    /// out in column 4 and no attribute sets (column 12), as blocks of
    /// versions 8 and 9 hold it.
    fn without_attribute_sets(frame_with: &[u8]) -> Vec<u8> {
        let (rows, mut cols) = columns(frame_with);
        let sets = cols.pop().unwrap();
        let mut sets = AttrSetList::read(&mut Cursor::new(&sets), "set").unwrap();
        let mut index = Cursor::new(&cols[log_col::ATTRS]);
        let mut each = Vec::new();
        for _ in 0..rows {
            put_attrs(
                &mut each,
                &sets.get(index.uvarint().unwrap(), true).unwrap(),
            );
        }
        cols[log_col::ATTRS] = each;
        frame(rows, &cols)
    }

    /// A packed log frame of 12 columns, none of its templates shared,
    /// with each row's template written out in column 3 and no template
    /// list (column 10) or decimal bits (column 11), as blocks of version
    /// 7 hold it.
    fn without_template_list(frame_with: &[u8]) -> Vec<u8> {
        let (rows, mut cols) = columns(frame_with);
        assert!(cols.pop().unwrap().is_empty(), "no shared template's bits");
        let list = cols.pop().unwrap();
        let list = TemplateList::read(&mut Cursor::new(&list)).unwrap();
        let mut bodies = Cursor::new(&cols[log_col::BODY]);
        let mut each = Vec::new();
        for _ in 0..rows {
            if bodies.peek() == Some(TEMPLATE_INDEX_TAG) {
                bodies.u8().unwrap();
                each.push(TEMPLATE_TAG);
                put_str(&mut each, list.get(bodies.uvarint().unwrap()).unwrap());
            } else {
                let start = bodies.rest();
                skip_value(&mut bodies, 0).unwrap();
                each.extend_from_slice(&start[..start.len() - bodies.rest().len()]);
            }
        }
        cols[log_col::BODY] = each;
        frame(rows, &cols)
    }

    /// A log frame with each row's resource written out in column 5 and
    /// no resource list (the last column), as blocks of versions 5 and 6
    /// (packed) and WAL segments before 2026-12-07 (plain) hold it.
    fn without_resource_list(frame_with: &[u8]) -> Vec<u8> {
        let (rows, mut cols) = columns(frame_with);
        let mut each = Vec::new();
        let list = cols.last().unwrap();
        let mut table = ResourceList::read(&mut Cursor::new(list), "resource").unwrap();
        let mut index = Cursor::new(&cols[log_col::RESOURCE]);
        for _ in 0..rows {
            put_attrs(
                &mut each,
                &table.get(index.uvarint().unwrap(), true).unwrap(),
            );
        }
        cols[log_col::RESOURCE] = each;
        cols.pop();
        frame(rows, &cols)
    }

    /// Frames of rows whose bodies are `bodies`, written as a block file's
    /// with the templates they share, and those templates read back.
    fn block_frames(bodies: &[String]) -> (Vec<Vec<LogRecord>>, Vec<Vec<u8>>, SharedTemplates) {
        let rows: Vec<LogRecord> = bodies
            .iter()
            .map(|b| LogRecord {
                body: AnyValue::Str(b.clone()),
                ..LogRecord::default()
            })
            .collect();
        let (frames, shared) = block_file(&rows, 3);
        let parts = rows.chunks(3).map(<[LogRecord]>::to_vec).collect();
        (parts, frames, shared)
    }

    /// `rows` as a block file's frames of `per_frame` rows, and the
    /// templates they share, read back.
    fn block_file(rows: &[LogRecord], per_frame: usize) -> (Vec<Vec<u8>>, SharedTemplates) {
        let writer = SharedTemplatesWriter::of::<LogRecord, _>(rows);
        let frames: Vec<Vec<u8>> = rows
            .chunks(per_frame)
            .map(|part| {
                let mut buf = Vec::new();
                encode_block_frame(part, &writer, &mut buf);
                buf
            })
            .collect();
        let mut shared = Vec::new();
        writer.finish(&mut shared).unwrap();
        (frames, SharedTemplates::read(&shared).unwrap())
    }

    proptest! {
        /// Frames that share templates decode with them to their rows,
        /// and fail without them.
        #[test]
        fn shared_templates_round_trip(
            bodies in proptest::collection::vec("(took [0-9]{1,3}ms|x|[a-c ]{0,5}|é)", 1..12),
        ) {
            let (parts, frames, shared) = block_frames(&bodies);
            for (rows, frame) in parts.iter().zip(&frames) {
                let back: Vec<LogRecord> = decode_frame_rows(frame, Pick::default(), &shared).unwrap();
                prop_assert!(same(rows, &back));
                prop_assert!(decode_frame::<LogRecord>(frame).is_err());
            }
        }

        /// Any bytes as shared templates are an error or a list, never a
        /// panic, and never more than the cap however much they claim.
        #[test]
        fn any_bytes_as_shared_templates_are_safe(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            list in proptest::collection::vec(any::<u8>(), 0..64),
            count in 0u64..4,
        ) {
            let _ = SharedTemplates::read(&bytes);
            let mut claimed = Vec::new();
            put_uvarint(&mut claimed, count);
            put_uvarint(&mut claimed, list.len() as u64);
            claimed.extend_from_slice(&zstd::bulk::compress(&list, 1).unwrap());
            if let Ok(t) = SharedTemplates::read(&claimed) {
                prop_assert_eq!(t.list.len() as u64, count);
            }
        }
    }

    #[test]
    fn shared_decimals_are_bits_and_values_outside_their_slots_are_not() {
        let bodies: Vec<String> = (0..9)
            .map(|i| format!("GET /orders/{} took {}ms", 1000 + i * 7, i))
            .collect();
        let (parts, frames, shared) = block_frames(&bodies);
        assert_eq!(shared.list.len(), 1);
        // 1000..1056 in 6 bits (997..1060), 0..8 in 4 (0..15).
        assert_eq!(shared.list[0].1.slots, [(997, 6), (0, 4)]);
        for (rows, frame) in parts.iter().zip(&frames) {
            let (_, cols) = columns(frame);
            assert!(cols[7].is_empty(), "no varint decimals");
            assert_eq!(cols[11].len(), (rows.len() * 10).div_ceil(8));
        }
        // Rows whose numbers the block's slots cannot hold are written as
        // their frame's own, with varints.
        let writer = SharedTemplatesWriter::of::<LogRecord, _>(&parts[0]);
        let mut list = Vec::new();
        let other = [LogRecord {
            body: AnyValue::Str("GET /orders/5 took 99ms".into()),
            ..LogRecord::default()
        }];
        let mut frame = Vec::new();
        encode_block_frame(&other, &writer, &mut frame);
        writer.finish(&mut list).unwrap();
        let shared = SharedTemplates::read(&list).unwrap();
        let back: Vec<LogRecord> = decode_frame_rows(&frame, Pick::default(), &shared).unwrap();
        assert_eq!(back, other);
        assert!(!columns(&frame).1[7].is_empty());
    }

    #[test]
    fn a_sample_of_many_rows_finds_templates_that_take_turns() {
        // More rows than the sample: templates that come back every 10
        // rows, whose numbers a sample may not cover.
        let rows: Vec<LogRecord> = (0..SHARE_SAMPLE_ROWS * 2 + 7)
            .map(|i| LogRecord {
                body: AnyValue::Str(format!("svc-{:02} took {}ms", i % 10, i % 1000)),
                ..LogRecord::default()
            })
            .collect();
        let (frames, shared) = block_file(&rows, 256);
        assert_eq!(shared.list.len(), 10);
        for (part, frame) in rows.chunks(256).zip(&frames) {
            let back: Vec<LogRecord> = decode_frame_rows(frame, Pick::default(), &shared).unwrap();
            assert_eq!(back, part);
        }
    }

    #[test]
    fn templates_past_the_shared_cap_are_listed_in_their_frame() {
        // Templates of 1 KiB, each its own: the first 63 or so are shared,
        // the rest listed in their frames.
        let bodies: Vec<String> = (0..100u8)
            .map(|i| {
                format!(
                    "{}{}",
                    char::from(b'a' + i % 26),
                    "z".repeat(1000 + usize::from(i))
                )
            })
            .collect();
        let (parts, frames, shared) = block_frames(&bodies);
        assert!(
            (50..100).contains(&shared.list.len()),
            "{}",
            shared.list.len()
        );
        for (rows, frame) in parts.iter().zip(&frames) {
            let back: Vec<LogRecord> = decode_frame_rows(frame, Pick::default(), &shared).unwrap();
            assert!(same(rows, &back));
        }
        let mut huge = Vec::new();
        put_uvarint(&mut huge, 1);
        put_uvarint(&mut huge, (MAX_SHARED_TEMPLATE_BYTES + 1) as u64);
        assert_eq!(
            SharedTemplates::read(&huge).unwrap_err(),
            format!(
                "shared templates of {} bytes",
                MAX_SHARED_TEMPLATE_BYTES + 1
            )
        );
    }

    #[test]
    fn templates_are_listed_once_a_frame_and_an_index_past_the_list_is_an_error() {
        let rows: Vec<LogRecord> = (0..6)
            .map(|i| LogRecord {
                body: AnyValue::Str(format!("took {}ms on shard {}", i * 7, i % 2)),
                ..LogRecord::default()
            })
            .collect();
        let mut buf = Vec::new();
        encode_frame(&rows, Layout::Packed, &mut buf);
        let (n, mut cols) = columns(&buf);
        let list = TemplateList::read(&mut Cursor::new(&cols[10])).unwrap();
        assert_eq!(list.0, [b"took \x11ms on shard \x11"]);
        assert_eq!(decode_frame::<LogRecord>(&buf).unwrap(), rows);
        cols[10].clear();
        let err = decode_frame::<LogRecord>(&frame(n, &cols)).unwrap_err();
        assert_eq!(err, "template 0 of 0");
        cols.truncate(10);
        let err = decode_frame::<LogRecord>(&frame(n, &cols)).unwrap_err();
        assert_eq!(err, "a template index in a frame without a template list");
    }

    #[test]
    fn a_row_of_a_resource_not_listed_is_an_error() {
        let row = LogRecord {
            resource: vec![("service.name".into(), "api".into())].into(),
            ..LogRecord::default()
        };
        let mut buf = Vec::new();
        encode_frame(&[row], Layout::Packed, &mut buf);
        let (rows, mut cols) = columns(&buf);
        cols[9].clear();
        let err = decode_frame::<LogRecord>(&frame(rows, &cols)).unwrap_err();
        assert_eq!(err, "resource 0 of 0");
    }

    /// Decodes `buf` cut at `cut` and with one byte flipped, as spans and
    /// as logs, whole and for some rows: errors are fine, panics are not.
    fn damage(mut buf: Vec<u8>, cut: usize, flip: (usize, u8)) {
        let _ = decode_frame::<Span>(&buf[..cut % buf.len()]);
        let _ = decode_frame::<LogRecord>(&buf[..cut % buf.len()]);
        let i = flip.0 % buf.len();
        buf[i] ^= flip.1 | 1;
        let _ = decode_frame::<Span>(&buf);
        let _ = decode_frame::<LogRecord>(&buf);
        // Rows stepped over, built, and not read (after the last one kept).
        let some = [false, true, false, false];
        let pick = Pick {
            mask: Some(&some),
            ..Pick::default()
        };
        let _ = decode_frame_rows::<Span>(&buf, pick, &NO_SHARED_TEMPLATES);
        let _ = decode_frame_rows::<LogRecord>(&buf, pick, &NO_SHARED_TEMPLATES);
    }

    /// Writes seed frames for the `span_decode` and `log_decode` fuzz
    /// targets to `fuzz/seeds/` (committed): random bytes rarely form a
    /// frame whose column lengths add up, so without seeds the fuzzer
    /// never reaches the column decoders. Rerun after a format change:
    /// `cargo test -p sextant-storage write_fuzz_seeds -- --ignored`.
    #[test]
    #[ignore]
    fn write_fuzz_seeds() {
        use proptest::strategy::ValueTree;
        use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
        fn write<T: Columnar + std::fmt::Debug>(dir: &str, rows: impl Strategy<Value = T>) {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../fuzz/seeds")
                .join(dir);
            std::fs::create_dir_all(&dir).unwrap();
            let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]);
            let mut runner = TestRunner::new_with_rng(Config::default(), rng);
            let frames = proptest::collection::vec(rows, 1..5);
            for i in 0..24 {
                let rows = frames.new_tree(&mut runner).unwrap().current();
                let layout = if i % 2 == 0 {
                    Layout::Plain
                } else {
                    Layout::Packed
                };
                let mut buf = Vec::new();
                encode_frame(&rows, layout, &mut buf);
                std::fs::write(dir.join(format!("frame-{i:02}")), buf).unwrap();
            }
        }
        write("span_decode", span());
        write("log_decode", log());
        // Block frames after the templates their file shares, behind a
        // byte giving the shared bytes' length (see the target).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/log_decode");
        let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &[9; 32]);
        let mut runner = TestRunner::new_with_rng(Config::default(), rng);
        let frames = proptest::collection::vec(log(), 1..5);
        let mut written = 0;
        while written < 8 {
            let rows = frames.new_tree(&mut runner).unwrap().current();
            let writer = SharedTemplatesWriter::of::<LogRecord, _>(&rows);
            let mut frame = Vec::new();
            encode_block_frame(&rows, &writer, &mut frame);
            let mut shared = Vec::new();
            writer.finish(&mut shared).unwrap();
            if let (Ok(n), false) = (u8::try_from(shared.len()), shared.is_empty()) {
                let seed = [&[n][..], &shared, &frame].concat();
                std::fs::write(dir.join(format!("shared-{written:02}")), seed).unwrap();
                written += 1;
            }
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut buf = Vec::new();
        for _ in 0..100 {
            buf.extend_from_slice(&[5, 1]);
        }
        buf.push(1);
        buf.push(0);
        let mut c = Cursor::new(&buf);
        assert!(get_value(&mut c, 0).is_err());
    }
}
