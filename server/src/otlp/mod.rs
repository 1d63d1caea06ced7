//! OpenTelemetry (OTLP) requests turned into Sextant's model: logs and
//! spans map field by field; metrics follow the OpenTelemetry
//! Prometheus-compatibility rules (`metrics`).

pub mod json;
pub mod logs;
pub mod metrics;
pub mod traces;

use opentelemetry_proto::tonic::common::v1::{
    AnyValue as PbAny, InstrumentationScope, KeyValue, any_value::Value as PbValue,
};
use sextant_storage::{AnyValue, Attributes, Resource};

use super::error::{ApiError, ApiResult};

/// Deepest nesting of arrays and maps converted (deeper: refused, before
/// the recursion could exhaust the stack).
const MAX_DEPTH: usize = 32;

/// Converts attributes.
pub fn attributes(kvs: &[KeyValue]) -> ApiResult<Attributes> {
    kvs.iter()
        .map(|kv| Ok((kv.key.clone(), value(kv.value.as_ref(), 0)?)))
        .collect()
}

/// Resource attributes plus scope name/version (`otel.scope.name`,
/// `otel.scope.version`), as a log or span's producer attributes: one
/// resource, shared by every record of the scope.
pub fn resource_with_scope(
    resource: &[KeyValue],
    scope: Option<&InstrumentationScope>,
) -> ApiResult<Resource> {
    let mut out = attributes(resource)?;
    if let Some(s) = scope {
        if !s.name.is_empty() {
            out.push(("otel.scope.name".into(), AnyValue::Str(s.name.clone())));
        }
        if !s.version.is_empty() {
            out.push((
                "otel.scope.version".into(),
                AnyValue::Str(s.version.clone()),
            ));
        }
    }
    Ok(Resource::new(out))
}

/// Converts an `AnyValue` (absent: empty string).
pub fn value(v: Option<&PbAny>, depth: usize) -> ApiResult<AnyValue> {
    if depth > MAX_DEPTH {
        return Err(ApiError::bad(format!(
            "attribute value nested deeper than {MAX_DEPTH} levels"
        )));
    }
    Ok(match v.and_then(|v| v.value.as_ref()) {
        None => AnyValue::Str(String::new()),
        Some(PbValue::StringValue(s)) => AnyValue::Str(s.clone()),
        Some(PbValue::BoolValue(b)) => AnyValue::Bool(*b),
        Some(PbValue::IntValue(i)) => AnyValue::Int(*i),
        Some(PbValue::DoubleValue(d)) => AnyValue::Double(*d),
        Some(PbValue::BytesValue(b)) => AnyValue::Bytes(b.clone()),
        Some(PbValue::ArrayValue(a)) => AnyValue::Array(
            a.values
                .iter()
                .map(|v| value(Some(v), depth + 1))
                .collect::<ApiResult<_>>()?,
        ),
        Some(PbValue::KvlistValue(kv)) => AnyValue::Map(
            kv.values
                .iter()
                .map(|kv| Ok((kv.key.clone(), value(kv.value.as_ref(), depth + 1)?)))
                .collect::<ApiResult<_>>()?,
        ),
        Some(PbValue::StringValueStrindex(_)) => {
            return Err(ApiError::bad(
                "string_value_strindex is only valid inside profiles; send string_value",
            ));
        }
    })
}

/// A fixed-size id from bytes: empty means none (zeros), any other length
/// is refused.
pub fn id<const N: usize>(what: &str, b: &[u8]) -> ApiResult<[u8; N]> {
    if b.is_empty() {
        return Ok([0; N]);
    }
    b.try_into().map_err(|_| {
        ApiError::bad(format!(
            "{what} has {} bytes; OTLP ids are {N} bytes (hex strings in JSON)",
            b.len()
        ))
    })
}

/// Nanoseconds as the signed value the model keeps.
pub fn ns(what: &str, v: u64) -> ApiResult<i64> {
    i64::try_from(v).map_err(|_| ApiError::bad(format!("{what} {v} is beyond the year 2262")))
}
