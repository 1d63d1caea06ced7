//! Logs and spans, after the OpenTelemetry data model, and the checks and
//! normalisations every write applies to them.

use rustc_hash::FxHashMap;

use crate::error::{Error, Result};

/// W3C trace id; all zeros means "none".
pub type TraceId = [u8; 16];
/// W3C span id; all zeros means "none".
pub type SpanId = [u8; 8];

/// Deepest nesting of arrays and maps in a value.
pub const MAX_VALUE_DEPTH: usize = 32;

/// An attribute value or log body (OpenTelemetry `AnyValue`).
#[derive(Debug, Clone, PartialEq)]
pub enum AnyValue {
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// A float (NaN and infinities kept).
    Double(f64),
    /// Raw bytes (a body that is not UTF-8 lands here).
    Bytes(Vec<u8>),
    /// A list of values.
    Array(Vec<AnyValue>),
    /// Key-value pairs, in the order given.
    Map(Vec<(String, AnyValue)>),
}

impl Default for AnyValue {
    fn default() -> Self {
        AnyValue::Str(String::new())
    }
}

impl From<&str> for AnyValue {
    fn from(s: &str) -> Self {
        AnyValue::Str(s.to_string())
    }
}

impl AnyValue {
    /// The value as text: strings as they are, bytes as lossy UTF-8,
    /// scalars formatted, arrays and maps as JSON. Log search and attribute
    /// matchers see this form.
    pub fn to_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            AnyValue::Str(s) => s.as_str().into(),
            AnyValue::Bytes(b) => String::from_utf8_lossy(b),
            AnyValue::Bool(b) => b.to_string().into(),
            AnyValue::Int(i) => i.to_string().into(),
            AnyValue::Double(d) => d.to_string().into(),
            AnyValue::Array(_) | AnyValue::Map(_) => {
                let mut s = String::new();
                self.write_json(&mut s);
                s.into()
            }
        }
    }

    fn write_json(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            AnyValue::Array(vs) => {
                out.push('[');
                for (i, v) in vs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    v.write_json(out);
                }
                out.push(']');
            }
            AnyValue::Map(kvs) => {
                out.push('{');
                for (i, (k, v)) in kvs.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k:?}:");
                    v.write_json(out);
                }
                out.push('}');
            }
            AnyValue::Str(s) => {
                let _ = write!(out, "{s:?}");
            }
            AnyValue::Bytes(_) => {
                let _ = write!(out, "{:?}", self.to_text());
            }
            other => out.push_str(&other.to_text()),
        }
    }

    fn depth(&self) -> usize {
        match self {
            AnyValue::Array(vs) => 1 + vs.iter().map(AnyValue::depth).max().unwrap_or(0),
            AnyValue::Map(kvs) => 1 + kvs.iter().map(|(_, v)| v.depth()).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Whether [`AnyValue::truncate`] would cut anything.
    fn too_long(&self, max: usize) -> bool {
        match self {
            AnyValue::Str(s) => s.len() > max,
            AnyValue::Bytes(b) => b.len() > max,
            AnyValue::Array(vs) => vs.iter().any(|v| v.too_long(max)),
            AnyValue::Map(kvs) => kvs.iter().any(|(_, v)| v.too_long(max)),
            _ => false,
        }
    }

    /// Cuts strings and bytes longer than `max` bytes (strings at a
    /// character boundary); returns how many were cut.
    fn truncate(&mut self, max: usize) -> usize {
        match self {
            AnyValue::Str(s) if s.len() > max => {
                let mut end = max;
                while !s.is_char_boundary(end) {
                    end -= 1;
                }
                s.truncate(end);
                1
            }
            AnyValue::Bytes(b) if b.len() > max => {
                b.truncate(max);
                1
            }
            AnyValue::Array(vs) => vs.iter_mut().map(|v| v.truncate(max)).sum(),
            AnyValue::Map(kvs) => kvs.iter_mut().map(|(_, v)| v.truncate(max)).sum(),
            _ => 0,
        }
    }
}

/// Attributes: key-value pairs in the order given.
pub type Attributes = Vec<(String, AnyValue)>;

/// A record's resource attributes, shared. Every record an OTLP
/// `ResourceLogs` or `ResourceSpans` carries has the same resource, and a
/// frame's rows mostly repeat a few: shared, a resource is allocated,
/// checked and freed once instead of once a record (on the demo's logs,
/// resources were a quarter of ingest CPU) and a packed frame lists each
/// of its resources once (`codec/records.rs`).
pub type Resource = std::sync::Arc<Attributes>;

/// The resource attribute naming the service.
pub const SERVICE_NAME: &str = "service.name";

/// `service.name` of a resource; OpenTelemetry's `unknown_service` if unset.
pub fn service_of(resource: &Attributes) -> std::borrow::Cow<'_, str> {
    resource
        .iter()
        .find(|(k, _)| k == SERVICE_NAME)
        .map_or("unknown_service".into(), |(_, v)| v.to_text())
}

/// A log record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogRecord {
    /// When the event happened, ns since the epoch (0: use `observed_ns`).
    pub time_ns: i64,
    /// When a collector saw it, ns since the epoch.
    pub observed_ns: i64,
    /// OpenTelemetry severity number, 0 (unset) to 24.
    pub severity: u8,
    /// Severity as the source wrote it (`ERROR`, `warn`, …).
    pub severity_text: String,
    /// The message: usually a string, possibly structured.
    pub body: AnyValue,
    /// Attributes of the event.
    pub attributes: Attributes,
    /// Attributes of the producer (`service.name`, `host.name`, …).
    pub resource: Resource,
    /// Trace of the request that logged it (zeros: none).
    pub trace_id: TraceId,
    /// Span that logged it (zeros: none).
    pub span_id: SpanId,
    /// W3C trace flags.
    pub flags: u32,
}

impl LogRecord {
    /// The producing service.
    pub fn service(&self) -> std::borrow::Cow<'_, str> {
        service_of(&self.resource)
    }

    /// Milliseconds since the epoch (the time partitions are in ms).
    pub fn time_ms(&self) -> i64 {
        self.time_ns.div_euclid(1_000_000)
    }

    /// Asks the CPU to load the record's body, severity text and
    /// attribute list, rows before they are read: a flush encodes, then
    /// frees, records written minutes before, and each is otherwise a
    /// chain of cache misses. The attributes' own strings are a second
    /// step ([`LogRecord::prefetch_attr_strings`]), once the list is in.
    /// (An empty string or list has no allocation, only a dangling
    /// pointer, which a prefetch would send through a page walk.)
    pub(crate) fn prefetch_heap(&self) {
        if let AnyValue::Str(s) = &self.body {
            crate::prefetch(s.as_ptr());
        }
        if !self.severity_text.is_empty() {
            crate::prefetch(self.severity_text.as_ptr());
        }
        if !self.attributes.is_empty() {
            crate::prefetch(self.attributes.as_ptr());
        }
    }

    /// The second step of [`LogRecord::prefetch_heap`]: the strings of
    /// the attributes, their list having been asked for some rows before.
    pub(crate) fn prefetch_attr_strings(&self) {
        for (k, v) in &self.attributes {
            crate::prefetch(k.as_ptr());
            if let AnyValue::Str(s) = v
                && !s.is_empty()
            {
                crate::prefetch(s.as_ptr());
            }
        }
    }
}

/// Span kind (OpenTelemetry numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum SpanKind {
    /// Not given.
    #[default]
    Unspecified = 0,
    /// Internal operation.
    Internal = 1,
    /// Server side of a request.
    Server = 2,
    /// Client side of a request.
    Client = 3,
    /// Sends a message.
    Producer = 4,
    /// Receives a message.
    Consumer = 5,
}

impl SpanKind {
    /// From the OpenTelemetry number (unknown numbers: `Unspecified`).
    pub fn from_u8(v: u8) -> SpanKind {
        match v {
            1 => SpanKind::Internal,
            2 => SpanKind::Server,
            3 => SpanKind::Client,
            4 => SpanKind::Producer,
            5 => SpanKind::Consumer,
            _ => SpanKind::Unspecified,
        }
    }

    /// Lowercase name used by filters (`server`, `client`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Unspecified => "unspecified",
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }
}

/// Span status code (OpenTelemetry numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum StatusCode {
    /// Not set.
    #[default]
    Unset = 0,
    /// Explicitly successful.
    Ok = 1,
    /// Failed.
    Error = 2,
}

impl StatusCode {
    /// From the OpenTelemetry number (unknown numbers: `Unset`).
    pub fn from_u8(v: u8) -> StatusCode {
        match v {
            1 => StatusCode::Ok,
            2 => StatusCode::Error,
            _ => StatusCode::Unset,
        }
    }

    /// Lowercase name used by filters (`unset`, `ok`, `error`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatusCode::Unset => "unset",
            StatusCode::Ok => "ok",
            StatusCode::Error => "error",
        }
    }
}

/// A timed event inside a span.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanEvent {
    /// ns since the epoch.
    pub time_ns: i64,
    /// Event name (`exception`, …).
    pub name: String,
    /// Its attributes.
    pub attributes: Attributes,
}

/// A link from a span to another span (possibly of another trace).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SpanLink {
    /// Linked trace.
    pub trace_id: TraceId,
    /// Linked span.
    pub span_id: SpanId,
    /// Its attributes.
    pub attributes: Attributes,
}

/// A span: one operation of a trace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Span {
    /// The trace (never all zeros).
    pub trace_id: TraceId,
    /// This span (never all zeros).
    pub span_id: SpanId,
    /// The parent span (zeros: a root).
    pub parent_span_id: SpanId,
    /// Operation name.
    pub name: String,
    /// Kind of operation.
    pub kind: SpanKind,
    /// Start, ns since the epoch.
    pub start_ns: i64,
    /// End, ns since the epoch (not before the start).
    pub end_ns: i64,
    /// Outcome.
    pub status: StatusCode,
    /// Message of the status (usually of an error).
    pub status_message: String,
    /// Attributes of the operation.
    pub attributes: Attributes,
    /// Attributes of the producer (`service.name`, …).
    pub resource: Resource,
    /// Timed events.
    pub events: Vec<SpanEvent>,
    /// Links to other spans.
    pub links: Vec<SpanLink>,
}

impl Span {
    /// The producing service.
    pub fn service(&self) -> std::borrow::Cow<'_, str> {
        service_of(&self.resource)
    }

    /// Duration in ns.
    pub fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.start_ns)
    }

    /// Start in ms since the epoch (the time partitions are in ms).
    pub fn start_ms(&self) -> i64 {
        self.start_ns.div_euclid(1_000_000)
    }

    /// Whether the operation failed, by the OpenTelemetry conventions: an
    /// error status; else, unless the status is `Ok` (which the
    /// conventions make final), an `error.type` (set on a failed operation
    /// whatever the status, since 1.21), an `exception` event (recorded
    /// when an exception escapes the span; not one marked
    /// `exception.escaped=false`, handled), or an answer saying the server
    /// failed (HTTP 5xx, old or new attribute, or a gRPC server-failure
    /// code). A 4xx is the client's fault, as the conventions leave it
    /// unset on the server.
    pub fn failed(&self) -> bool {
        match self.status {
            StatusCode::Error => return true,
            StatusCode::Ok => return false,
            StatusCode::Unset => {}
        }
        // One pass over the attributes (this runs for every span written):
        // the HTTP code, new name first, and the gRPC code, by the
        // conventions' successive names (`rpc.grpc.status_code`, a number;
        // `rpc.response.status_code`, then `rpc.status_code`, a name or a
        // number as a string).
        let (mut http, mut rpc): ([Option<&AnyValue>; 2], [Option<&AnyValue>; 3]) =
            Default::default();
        for (k, v) in &self.attributes {
            let slot = match k.as_str() {
                "error.type" if !v.to_text().is_empty() => return true,
                "http.response.status_code" => &mut http[0],
                "http.status_code" => &mut http[1],
                "rpc.grpc.status_code" => &mut rpc[0],
                "rpc.response.status_code" => &mut rpc[1],
                "rpc.status_code" => &mut rpc[2],
                _ => continue,
            };
            slot.get_or_insert(v);
        }
        let escaped = |e: &SpanEvent| {
            e.name == "exception"
                && !e
                    .attributes
                    .iter()
                    .any(|(k, v)| k == "exception.escaped" && *v == AnyValue::Bool(false))
        };
        if self.events.iter().any(escaped) {
            return true;
        }
        let int = |v: &AnyValue| match v {
            AnyValue::Int(i) => Some(*i),
            AnyValue::Str(s) => s.parse().ok(),
            AnyValue::Double(d) => Some(*d as i64),
            _ => None,
        };
        if let Some(code) = http.into_iter().flatten().find_map(int) {
            return code >= 500;
        }
        rpc.into_iter()
            .flatten()
            .next()
            .is_some_and(grpc_server_failed)
    }

    /// The status a query selects by: `Error` when the span
    /// [failed](Span::failed), else its own. Searches and the query
    /// language's `status` field mean the outcome, so an instrumentation
    /// that leaves the status unset on a 5xx is counted as the diagnosis
    /// counts it; the span keeps the status it was sent with.
    pub fn outcome(&self) -> StatusCode {
        match self.failed() {
            true => StatusCode::Error,
            false => self.status,
        }
    }
}

/// Whether a gRPC status (its number, or its name) is one the server
/// failed with: UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL,
/// UNAVAILABLE, DATA_LOSS (the others are the caller's doing).
fn grpc_server_failed(code: &AnyValue) -> bool {
    const FAILED: [(i64, &str); 6] = [
        (2, "UNKNOWN"),
        (4, "DEADLINE_EXCEEDED"),
        (12, "UNIMPLEMENTED"),
        (13, "INTERNAL"),
        (14, "UNAVAILABLE"),
        (15, "DATA_LOSS"),
    ];
    let text = code.to_text();
    let number = match code {
        AnyValue::Int(i) => Some(*i),
        _ => text.parse().ok(),
    };
    FAILED
        .iter()
        .any(|(n, name)| number == Some(*n) || text.eq_ignore_ascii_case(name))
}

/// Limits and normalisation applied to written logs and spans.
#[derive(Debug, Clone, Copy)]
pub struct RecordLimits {
    /// Longer attribute values (strings, bytes) are cut to this many bytes.
    pub max_attr_value_len: usize,
    /// Longer log bodies are cut to this many bytes.
    pub max_body_len: usize,
    /// Most attributes per record, resource included; more is an error.
    pub max_attributes: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        RecordLimits {
            max_attr_value_len: 16 * 1024,
            max_body_len: 1 << 20,
            max_attributes: 256,
        }
    }
}

fn check_attrs(what: &str, attrs: &mut Attributes, lim: &RecordLimits) -> Result<usize> {
    check_shape(what, attrs, lim)?;
    Ok(attrs
        .iter_mut()
        .map(|(_, v)| v.truncate(lim.max_attr_value_len))
        .sum())
}

/// Something worked out once per resource allocation in a batch: the
/// records of an OTLP scope or of a demo instance share theirs, but a demo
/// batch interleaves its services' records, so the resource of the record
/// before was rarely the next one's.
pub(crate) struct ByResource<V> {
    /// By the resource's address; the `Resource` held keeps the address
    /// its own.
    seen: FxHashMap<usize, (Resource, V)>,
}

impl<V> Default for ByResource<V> {
    fn default() -> Self {
        ByResource {
            seen: FxHashMap::default(),
        }
    }
}

/// Resources a [`ByResource`] keeps at most (then it starts again).
const MAX_RESOURCES_KEPT: usize = 1024;

impl<V> ByResource<V> {
    /// The value of `r`, worked out by `make` the first time.
    pub(crate) fn get_or_try_insert<E>(
        &mut self,
        r: &Resource,
        make: impl FnOnce() -> std::result::Result<V, E>,
    ) -> std::result::Result<&V, E> {
        if self.seen.len() >= MAX_RESOURCES_KEPT {
            self.seen.clear();
        }
        let entry = match self.seen.entry(Resource::as_ptr(r).addr()) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => v.insert((Resource::clone(r), make()?)),
        };
        Ok(&entry.1)
    }
}

/// The resources of a batch already checked: the resource to store (the
/// one sent, or its cut copy, which every record sharing the one sent
/// then shares) and the values cut.
pub(crate) type CheckedResources = ByResource<(Resource, usize)>;

/// [`check_attrs`] for a shared resource: copied only when a value is
/// cut, and checked once a batch (`checked`).
fn check_resource(
    what: &str,
    resource: &mut Resource,
    checked: &mut CheckedResources,
    lim: &RecordLimits,
) -> Result<usize> {
    let (stored, cut) = checked.get_or_try_insert(resource, || {
        check_shape(what, resource, lim)?;
        let mut stored = Resource::clone(resource);
        let cut = match stored
            .iter()
            .any(|(_, v)| v.too_long(lim.max_attr_value_len))
        {
            true => check_attrs(what, Resource::make_mut(&mut stored), lim)?,
            false => 0,
        };
        Ok::<_, Error>((stored, cut))
    })?;
    let cut = *cut;
    *resource = Resource::clone(stored);
    Ok(cut)
}

/// Refuses attributes over the count or nesting limits.
fn check_shape(what: &str, attrs: &Attributes, lim: &RecordLimits) -> Result<()> {
    if attrs.len() > lim.max_attributes {
        return Err(Error::InvalidRecord(format!(
            "{what} has {} attributes, over the limit of {} (`limits.max_attributes`)",
            attrs.len(),
            lim.max_attributes
        )));
    }
    for (k, v) in attrs {
        if v.depth() > MAX_VALUE_DEPTH {
            return Err(Error::InvalidRecord(format!(
                "{what}: attribute {k:?} nests deeper than {MAX_VALUE_DEPTH} levels"
            )));
        }
    }
    Ok(())
}

impl LogRecord {
    /// Checks and normalises the record for storage: a zero time takes the
    /// observed time; over-long values are cut (counted in the result).
    /// `checked` holds the resources of the batch checked so far (see
    /// [`check_resource`]).
    pub(crate) fn normalize(
        &mut self,
        lim: &RecordLimits,
        checked: &mut CheckedResources,
    ) -> Result<usize> {
        if self.time_ns == 0 {
            self.time_ns = self.observed_ns;
        }
        if self.time_ns == 0 {
            return Err(Error::InvalidRecord(
                "log record has neither a time nor an observed time".into(),
            ));
        }
        if self.severity > 24 {
            return Err(Error::InvalidRecord(format!(
                "log severity number {} is outside 0..=24",
                self.severity
            )));
        }
        if self.body.depth() > MAX_VALUE_DEPTH {
            return Err(Error::InvalidRecord(format!(
                "log body nests deeper than {MAX_VALUE_DEPTH} levels"
            )));
        }
        let mut cut = self.body.truncate(lim.max_body_len);
        cut += check_attrs("log record", &mut self.attributes, lim)?;
        cut += check_resource("log resource", &mut self.resource, checked, lim)?;
        Ok(cut)
    }
}

impl Span {
    /// Checks and normalises the span for storage (see [`RecordLimits`]);
    /// `checked` as for [`LogRecord::normalize`].
    pub(crate) fn normalize(
        &mut self,
        lim: &RecordLimits,
        checked: &mut CheckedResources,
    ) -> Result<usize> {
        let id = hex(&self.span_id);
        if self.trace_id == [0; 16] {
            return Err(Error::InvalidRecord(format!(
                "span {id} ({:?}) has an all-zero trace id",
                self.name
            )));
        }
        if self.span_id == [0; 8] {
            return Err(Error::InvalidRecord(format!(
                "span {:?} of trace {} has an all-zero span id",
                self.name,
                hex(&self.trace_id)
            )));
        }
        if self.end_ns < self.start_ns {
            return Err(Error::InvalidRecord(format!(
                "span {id} ({:?}) ends ({}) before it starts ({})",
                self.name, self.end_ns, self.start_ns
            )));
        }
        let mut cut = 0;
        for s in [&mut self.name, &mut self.status_message] {
            cut += usize::from(s.len() > lim.max_attr_value_len);
            let mut v = AnyValue::Str(std::mem::take(s));
            v.truncate(lim.max_attr_value_len);
            if let AnyValue::Str(t) = v {
                *s = t;
            }
        }
        cut += check_attrs("span", &mut self.attributes, lim)?;
        cut += check_resource("span resource", &mut self.resource, checked, lim)?;
        for e in &mut self.events {
            cut += check_attrs("span event", &mut e.attributes, lim)?;
        }
        for l in &mut self.links {
            cut += check_attrs("span link", &mut l.attributes, lim)?;
        }
        Ok(cut)
    }
}

/// Lowercase hex of an id.
pub fn hex(id: &[u8]) -> String {
    let mut out = Vec::with_capacity(id.len() * 2);
    put_hex(&mut out, id);
    out.into_iter().map(char::from).collect()
}

/// An id as a matcher sees it: its hex, or `""` when it is all zeros
/// (no trace, as an absent attribute is `""`).
pub(crate) fn id_value(id: &[u8]) -> String {
    match id.iter().any(|&b| b != 0) {
        true => hex(id),
        false => String::new(),
    }
}

/// Appends the lowercase hex of `bytes` to `out` (no allocation: log body
/// templates print ids with it on every read).
pub(crate) fn put_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    }
}

/// Parses a hex trace id (32 digits).
pub fn parse_trace_id(s: &str) -> Result<TraceId> {
    let bad = || Error::InvalidRecord(format!("trace id {s:?} is not 32 hex digits"));
    if s.len() != 32 {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2).ok_or_else(bad)?, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_span_failed_as_the_conventions_say() {
        let span = |status, attrs: &[(&str, AnyValue)]| Span {
            status,
            attributes: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            ..Span::default()
        };
        let unset = |attrs: &[(&str, AnyValue)]| span(StatusCode::Unset, attrs).failed();
        assert!(span(StatusCode::Error, &[]).failed());
        assert!(!span(StatusCode::Ok, &[]).failed());
        let event = |escaped: Option<bool>| Span {
            events: vec![SpanEvent {
                name: "exception".into(),
                attributes: escaped
                    .map(|e| ("exception.escaped".to_string(), AnyValue::Bool(e)))
                    .into_iter()
                    .collect(),
                ..SpanEvent::default()
            }],
            ..Span::default()
        };
        assert!(event(None).failed());
        assert!(event(Some(true)).failed());
        assert!(!event(Some(false)).failed(), "handled");
        // An Ok status is final.
        let code_503 = [("http.response.status_code", AnyValue::Int(503))];
        assert!(!span(StatusCode::Ok, &code_503).failed());
        assert_eq!(span(StatusCode::Ok, &code_503).outcome(), StatusCode::Ok);
        assert_eq!(
            span(StatusCode::Unset, &code_503).outcome(),
            StatusCode::Error
        );
        assert!(!unset(&[]));
        assert!(unset(&[("error.type", "java.net.ConnectException".into())]));
        assert!(!unset(&[("error.type", "".into())]));
        assert!(unset(&[("http.response.status_code", AnyValue::Int(503))]));
        assert!(unset(&[("http.status_code", "500".into())]));
        assert!(!unset(&[("http.response.status_code", AnyValue::Int(404))]));
        // The HTTP code decides when there is one.
        let both = [
            ("http.response.status_code", AnyValue::Int(200)),
            ("rpc.grpc.status_code", AnyValue::Int(14)),
        ];
        assert!(!unset(&both));
        assert!(unset(&[("rpc.grpc.status_code", AnyValue::Int(14))]));
        assert!(!unset(&[("rpc.grpc.status_code", AnyValue::Int(5))]));
        assert!(unset(&[(
            "rpc.response.status_code",
            "DEADLINE_EXCEEDED".into()
        )]));
        assert!(!unset(&[("rpc.response.status_code", "NOT_FOUND".into())]));
        assert!(unset(&[("rpc.status_code", "unavailable".into())]));
        assert!(unset(&[("rpc.status_code", "13".into())]));
    }

    fn batch(resource: &Resource) -> Vec<LogRecord> {
        (1..=3)
            .map(|t| LogRecord {
                time_ns: t,
                resource: Resource::clone(resource),
                ..LogRecord::default()
            })
            .collect()
    }

    fn normalize(rows: &mut [LogRecord], lim: &RecordLimits) -> usize {
        let mut checked = CheckedResources::default();
        rows.iter_mut()
            .map(|r| r.normalize(lim, &mut checked).unwrap())
            .sum()
    }

    #[test]
    fn a_shared_resource_is_cut_as_each_record_own_would_be() {
        let lim = RecordLimits {
            max_attr_value_len: 4,
            ..RecordLimits::default()
        };
        let long = Resource::new(vec![("host.name".into(), "abcdefgh".into())]);
        let mut rows = batch(&long);
        assert_eq!(normalize(&mut rows, &lim), 3);
        for r in &rows {
            assert_eq!(*r.resource, vec![("host.name".into(), "abcd".into())]);
        }
        // Cut once: the records share the cut copy.
        assert!(Resource::ptr_eq(&rows[0].resource, &rows[2].resource));
        // The sender's resource is its own: not cut behind its back.
        assert_eq!(long[0].1, AnyValue::from("abcdefgh"));

        let short = Resource::new(vec![("host.name".into(), "abc".into())]);
        let mut rows = batch(&short);
        assert_eq!(normalize(&mut rows, &lim), 0);
        assert!(rows.iter().all(|r| Resource::ptr_eq(&r.resource, &short)));
    }

    #[test]
    fn a_shared_resource_over_the_limits_fails_the_batch() {
        let lim = RecordLimits {
            max_attributes: 1,
            ..RecordLimits::default()
        };
        let wide = Resource::new(vec![("a".into(), "1".into()), ("b".into(), "2".into())]);
        let mut checked = CheckedResources::default();
        let err = batch(&wide)[0].normalize(&lim, &mut checked).unwrap_err();
        assert!(
            err.to_string().contains("log resource has 2 attributes"),
            "{err}"
        );
    }
}
