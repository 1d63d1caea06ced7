//! OTLP traces to [`Span`]s.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sextant_storage::{Resource, Span, SpanEvent, SpanKind, SpanLink, StatusCode};

use super::{attributes, id, ns, resource_with_scope};
use crate::error::ApiResult;

/// Converts every span of a request; one bad span refuses the request.
pub fn convert(req: &ExportTraceServiceRequest) -> ApiResult<Vec<Span>> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let res = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        for ss in &rs.scope_spans {
            let resource = resource_with_scope(res, ss.scope.as_ref())?;
            for s in &ss.spans {
                let status = s.status.as_ref();
                out.push(Span {
                    trace_id: id("trace_id", &s.trace_id)?,
                    span_id: id("span_id", &s.span_id)?,
                    parent_span_id: id("parent_span_id", &s.parent_span_id)?,
                    name: s.name.clone(),
                    kind: SpanKind::from_u8(u8::try_from(s.kind).unwrap_or(0)),
                    start_ns: ns("start_time_unix_nano", s.start_time_unix_nano)?,
                    end_ns: ns("end_time_unix_nano", s.end_time_unix_nano)?,
                    status: StatusCode::from_u8(status.map_or(0, |st| st.code as u8)),
                    status_message: status.map_or_else(String::new, |st| st.message.clone()),
                    attributes: attributes(&s.attributes)?,
                    resource: Resource::clone(&resource),
                    events: s
                        .events
                        .iter()
                        .map(|e| {
                            Ok(SpanEvent {
                                time_ns: ns("event time_unix_nano", e.time_unix_nano)?,
                                name: e.name.clone(),
                                attributes: attributes(&e.attributes)?,
                            })
                        })
                        .collect::<ApiResult<_>>()?,
                    links: s
                        .links
                        .iter()
                        .map(|l| {
                            Ok(SpanLink {
                                trace_id: id("link trace_id", &l.trace_id)?,
                                span_id: id("link span_id", &l.span_id)?,
                                attributes: attributes(&l.attributes)?,
                            })
                        })
                        .collect::<ApiResult<_>>()?,
                });
            }
        }
    }
    Ok(out)
}
