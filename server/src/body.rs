//! Request bodies and parameters: size limits before and after
//! decompression (the guard against compression bombs), gzip and snappy,
//! and Prometheus-style parameters from the query string and form bodies.

use std::io::Read;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};

use super::error::{ApiError, ApiResult, Kind};

/// Reads a whole body, refusing more than `max` bytes.
pub async fn read(body: Body, max: usize) -> ApiResult<Vec<u8>> {
    axum::body::to_bytes(body, max)
        .await
        .map(|b| b.to_vec())
        .map_err(|_| {
            ApiError::new(
                Kind::TooLarge,
                format!(
                    "request body over the limit of {max} bytes (or the connection failed); \
                     send smaller batches or raise --max-body-bytes"
                ),
            )
        })
}

/// Undoes `Content-Encoding: gzip` (or `identity`/none), refusing output
/// beyond `max` bytes.
pub fn decode_content_encoding(
    headers: &HeaderMap,
    body: Vec<u8>,
    max: usize,
) -> ApiResult<Vec<u8>> {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match enc.as_str() {
        "" | "identity" => Ok(body),
        "gzip" | "x-gzip" => gunzip(&body, max),
        other => Err(ApiError::new(
            Kind::UnsupportedMedia,
            format!("unsupported Content-Encoding {other:?}: send gzip or no encoding"),
        )),
    }
}

/// Decompresses gzip, refusing output beyond `max` bytes.
pub fn gunzip(data: &[u8], max: usize) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(data)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad(format!("malformed gzip body: {e}")))?;
    if out.len() > max {
        return Err(too_big_decompressed(max));
    }
    Ok(out)
}

/// Output bytes one input byte of a snappy block can become at most: the
/// densest element, a 3-byte copy, writes 64 bytes.
const SNAPPY_MAX_RATIO: usize = 22;

/// Scratch kept by a thread beyond this, when a request needs far less,
/// is freed: one large request must not pin its buffer for good.
const SCRATCH_KEEP: usize = 32 << 20;

/// Decompresses a snappy block (remote_write) into `buf`, checking the
/// length it announces against `max` and against what its bytes can
/// possibly expand to, before allocating anything. `buf` is scratch kept
/// from request to request: filling a fresh zeroed buffer of every
/// request's size cost ~3% of remote_write CPU.
pub fn unsnappy<'a>(data: &[u8], max: usize, buf: &'a mut Vec<u8>) -> ApiResult<&'a [u8]> {
    let bad = |e: snap::Error| ApiError::bad(format!("malformed snappy body: {e}"));
    let len = snap::raw::decompress_len(data).map_err(bad)?;
    if len > max {
        return Err(too_big_decompressed(max));
    }
    let possible = data.len().saturating_mul(SNAPPY_MAX_RATIO);
    if len > possible {
        return Err(ApiError::bad(format!(
            "malformed snappy body: it announces {len} bytes, more than its {} bytes can hold",
            data.len()
        )));
    }
    if buf.capacity() > SCRATCH_KEEP && len < buf.capacity() / 4 {
        *buf = Vec::new();
    }
    if buf.len() < len {
        buf.resize(len, 0);
    }
    let n = snap::raw::Decoder::new()
        .decompress(data, &mut buf[..len])
        .map_err(bad)?;
    Ok(&buf[..n])
}

fn too_big_decompressed(max: usize) -> ApiError {
    ApiError::new(
        Kind::TooLarge,
        format!(
            "decompressed body over the limit of {max} bytes; send smaller batches or raise \
             --max-decompressed-bytes"
        ),
    )
}

/// The media type of a request, lower-cased, without parameters.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Request parameters: the URL's query string plus, for form POSTs, the
/// body's (Prometheus reads both).
#[derive(Debug, Default)]
pub struct Params(Vec<(String, String)>);

/// A handler's parameters, as its last argument: the query string and a
/// form body, as Prometheus' API takes them.
impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ApiError;

    async fn from_request(req: Request, _: &S) -> ApiResult<Params> {
        let (parts, body) = req.into_parts();
        let mut pairs: Vec<(String, String)> = (parts.uri.query())
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        if media_type(&parts.headers) == "application/x-www-form-urlencoded" {
            let bytes = read(body, 16 << 20).await?;
            pairs.extend(form_urlencoded::parse(&bytes).into_owned());
        }
        Ok(Params(pairs))
    }
}

impl Params {
    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name` (for `match[]`).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snappy_block_announcing_gigabytes_is_refused_before_allocating() {
        // Varint length 0xFFFFFFFF, then garbage: decompress_vec would ask
        // for 4 GiB.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f, 0x00];
        let mut buf = Vec::new();
        let e = unsnappy(&bomb, 1 << 20, &mut buf).unwrap_err();
        assert_eq!(e.kind, Kind::TooLarge, "{e}");
        assert!(buf.capacity() < 1 << 20);
        let ok = snap::raw::Encoder::new().compress_vec(b"hello").unwrap();
        let long = snap::raw::Encoder::new().compress_vec(&[7; 100]).unwrap();
        assert_eq!(unsnappy(&long, 100, &mut buf).unwrap(), [7; 100]);
        // The scratch is longer now: only the block's bytes come back.
        assert_eq!(unsnappy(&ok, 10, &mut buf).unwrap(), b"hello");
        assert_eq!(
            unsnappy(&ok[..ok.len() - 1], 10, &mut buf)
                .unwrap_err()
                .kind,
            Kind::BadData
        );
    }

    #[test]
    fn a_short_snappy_block_announcing_more_than_it_can_hold_is_refused() {
        // Issue 19: 7 bytes announcing just under 256 MiB were zero-filled
        // before decoding failed (8 clients took the server to 1 GB).
        let mut bomb = Vec::new();
        let mut n = (256u64 << 20) - 1;
        while n >= 0x80 {
            bomb.push((n as u8) | 0x80);
            n >>= 7;
        }
        bomb.push(n as u8);
        bomb.extend_from_slice(&[0x00, 0x00]);
        let mut buf = Vec::new();
        let e = unsnappy(&bomb, 256 << 20, &mut buf).unwrap_err();
        assert_eq!(e.kind, Kind::BadData, "{e}");
        assert!(e.to_string().contains("more than its"), "{e}");
        assert_eq!(buf.capacity(), 0, "nothing allocated");
        // The densest real block still decodes: long runs of one byte.
        let dense = snap::raw::Encoder::new()
            .compress_vec(&[0; 1 << 20])
            .unwrap();
        assert!(dense.len() * SNAPPY_MAX_RATIO >= 1 << 20);
        assert_eq!(unsnappy(&dense, 1 << 20, &mut buf).unwrap().len(), 1 << 20);
    }

    #[test]
    fn gzip_output_is_capped() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).unwrap();
        let gz = enc.finish().unwrap();
        assert!(gz.len() < 5000);
        assert_eq!(gunzip(&gz, 1000).unwrap_err().kind, Kind::TooLarge);
        assert_eq!(gunzip(&gz, 1 << 20).unwrap().len(), 1 << 20);
        assert_eq!(gunzip(b"not gzip", 100).unwrap_err().kind, Kind::BadData);
    }
}
