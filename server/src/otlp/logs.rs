//! OTLP logs to [`LogRecord`]s.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use sextant_storage::{AnyValue, LogRecord, Resource};

use super::{attributes, id, ns, resource_with_scope, value};
use crate::error::{ApiError, ApiResult};

/// Converts every record of a request; one bad record refuses the request.
pub fn convert(req: &ExportLogsServiceRequest) -> ApiResult<Vec<LogRecord>> {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        let res = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for sl in &rl.scope_logs {
            let resource = resource_with_scope(res, sl.scope.as_ref())?;
            for r in &sl.log_records {
                let severity = u8::try_from(r.severity_number)
                    .ok()
                    .filter(|s| *s <= 24)
                    .ok_or_else(|| {
                        ApiError::bad(format!(
                            "severity_number {} is not in 0..=24",
                            r.severity_number
                        ))
                    })?;
                let mut attrs = attributes(&r.attributes)?;
                if !r.event_name.is_empty() {
                    attrs.push(("event.name".into(), AnyValue::Str(r.event_name.clone())));
                }
                out.push(LogRecord {
                    time_ns: ns("time_unix_nano", r.time_unix_nano)?,
                    observed_ns: ns("observed_time_unix_nano", r.observed_time_unix_nano)?,
                    severity,
                    severity_text: r.severity_text.clone(),
                    body: value(r.body.as_ref(), 0)?,
                    attributes: attrs,
                    resource: Resource::clone(&resource),
                    trace_id: id("trace_id", &r.trace_id)?,
                    span_id: id("span_id", &r.span_id)?,
                    flags: r.flags,
                });
            }
        }
    }
    Ok(out)
}
