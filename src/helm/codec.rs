//! Helm's storage encoding of a release: `data.release` is base64 of gzip of the release as JSON
//! (Helm also reads plain JSON without gzip). A decoded release keeps every top-level field as the
//! exact JSON text Helm wrote, so that a new revision carries the chart, hooks and everything it does
//! not change over byte for byte; only the fields set with [`ReleaseDoc::set`] are written anew.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use base64::Engine;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;

/// Why a stored release could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("data.release is not base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("data.release is not gzip: {0}")]
    Gzip(std::io::Error),
    #[error("data.release is not a JSON release: {0}")]
    Json(#[from] serde_json::Error),
}

/// The gzip magic bytes Helm checks before decompressing.
const GZIP_MAGIC: [u8; 3] = [0x1f, 0x8b, 0x08];

/// One stored release, field by field.
#[derive(Debug, Clone)]
pub struct ReleaseDoc {
    fields: BTreeMap<String, Box<RawValue>>,
}

impl ReleaseDoc {
    /// Decodes `data.release` as stored (the base64 text).
    pub fn decode(data: &[u8]) -> Result<ReleaseDoc, CodecError> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(data.trim_ascii())?;
        let json = if bytes.starts_with(&GZIP_MAGIC) {
            let mut json = Vec::new();
            flate2::read::GzDecoder::new(bytes.as_slice())
                .read_to_end(&mut json)
                .map_err(CodecError::Gzip)?;
            json
        } else {
            bytes
        };
        Ok(ReleaseDoc { fields: serde_json::from_slice(&json)? })
    }

    /// Encodes the release as Helm stores it: JSON, gzip (best compression, as Helm), base64.
    pub fn encode(&self) -> Result<String, CodecError> {
        let json = serde_json::to_vec(&self.fields)?;
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gzip.write_all(&json).map_err(CodecError::Gzip)?;
        let compressed = gzip.finish().map_err(CodecError::Gzip)?;
        Ok(base64::engine::general_purpose::STANDARD.encode(compressed))
    }

    /// A top-level field, decoded; `None` when it is absent or null.
    pub fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CodecError> {
        match self.fields.get(key) {
            Some(raw) if raw.get() != "null" => Ok(Some(serde_json::from_str(raw.get())?)),
            _ => Ok(None),
        }
    }

    /// The exact JSON text of a top-level field.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.fields.get(key).map(|raw| raw.get())
    }

    /// Replaces (or adds) a top-level field.
    pub fn set<T: Serialize>(&mut self, key: &str, value: &T) -> Result<(), CodecError> {
        let raw = serde_json::value::to_raw_value(value)?;
        self.fields.insert(key.to_string(), raw);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn stored(json: &str) -> Vec<u8> {
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gzip.write_all(json.as_bytes()).expect("gzip");
        base64::engine::general_purpose::STANDARD.encode(gzip.finish().expect("gzip")).into_bytes()
    }

    #[test]
    fn fields_not_set_are_carried_over_byte_for_byte() {
        // Go's encoding: HTML characters escaped, numbers as written, keys in struct order.
        let chart =
            r#"{"metadata":{"name":"milvus","version":"5.0.19"},"values":{"a":1.50,"s":"\u003cb\u003e"}}"#;
        let original = format!(r#"{{"name":"r","chart":{chart},"config":{{}},"version":1}}"#);
        let mut doc = ReleaseDoc::decode(&stored(&original)).expect("decodes");
        doc.set("version", &2).expect("set");
        doc.set("config", &json!({"queryNode": {"replicas": 3}})).expect("set");
        let again = ReleaseDoc::decode(doc.encode().expect("encodes").as_bytes()).expect("decodes again");
        assert_eq!(again.raw("chart"), Some(chart));
        assert_eq!(again.get::<i64>("version").expect("version"), Some(2));
        assert_eq!(
            again.get::<Value>("config").expect("config"),
            Some(json!({"queryNode": {"replicas": 3}}))
        );
        assert_eq!(again.get::<Value>("hooks").expect("absent"), None);
    }

    #[test]
    fn plain_json_is_read_and_garbage_is_an_error() {
        let plain = base64::engine::general_purpose::STANDARD.encode(r#"{"version":4}"#);
        let doc = ReleaseDoc::decode(plain.as_bytes()).expect("plain JSON");
        assert_eq!(doc.get::<i64>("version").expect("version"), Some(4));
        assert!(matches!(ReleaseDoc::decode(b"%%%"), Err(CodecError::Base64(_))));
        let not_json = base64::engine::general_purpose::STANDARD.encode("[1,2]");
        assert!(matches!(ReleaseDoc::decode(not_json.as_bytes()), Err(CodecError::Json(_))));
    }
}
