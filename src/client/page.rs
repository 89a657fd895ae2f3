//! Fetching one page of a list, and decoding it while the next one is being fetched.
//!
//! The API server writes a list's `metadata` (its `resourceVersion` and `continue` token) before its
//! `items`. [`decode`] reads a page in one pass and hands the metadata over the moment it has been
//! read, before the items are decoded: the next page can be asked for while this one decodes (on a
//! blocking thread, so the request goes out at once). A page whose metadata comes last still decodes;
//! its metadata is then handed over at the end.
//!
//! A page is [`fetch`]ed as the chunks it arrived in and made contiguous only when its decoding
//! starts, and decoded from its bytes: while one page decodes, the next one is held once (its
//! chunks), not as chunks, a copy and a text as a client's `request_text` would.

use std::fmt;
use std::marker::PhantomData;

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Collected};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ListMeta;
use kube::core::response::Status;
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use tokio::sync::oneshot;

/// A page's body as it arrived: its chunks.
pub type Body = Collected<Bytes>;

/// Sends `request` and reads the whole reply. An error status is an [`kube::Error::Api`] with the
/// server's `Status` (or, for a reply that is not one, its text and code), as kube's own requests
/// report it.
pub async fn fetch(client: &kube::Client, request: http::Request<Vec<u8>>) -> Result<Body, kube::Error> {
    let response = client.send(request.map(kube::client::Body::from)).await?;
    let code = response.status();
    let body = response.into_body().collect().await?;
    if code.is_client_error() || code.is_server_error() {
        let bytes = body.to_bytes();
        let status = serde_json::from_slice::<Status>(&bytes).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(&bytes);
            Status::failure(text.trim(), "Failed to parse error data").with_code(code.as_u16())
        });
        return Err(kube::Error::Api(status.boxed()));
    }
    Ok(body)
}

/// A decoded page: its items and its metadata.
pub struct Page<T> {
    pub items: Vec<T>,
    pub metadata: ListMeta,
}

/// Decodes the list `body`, sending its metadata on `head` as soon as it is read (not sent when the
/// page has none, or fails to decode before it).
pub fn decode<T: DeserializeOwned>(
    body: Body,
    head: oneshot::Sender<ListMeta>,
) -> serde_json::Result<Page<T>> {
    // One copy, of exactly the page's size, and the chunks are given back.
    let mut chunks = body.aggregate();
    let bytes = chunks.copy_to_bytes(chunks.remaining());
    drop(chunks);
    decode_slice(&bytes, head)
}

fn decode_slice<T: DeserializeOwned>(
    bytes: &[u8],
    head: oneshot::Sender<ListMeta>,
) -> serde_json::Result<Page<T>> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let page = PageSeed { head: Some(head), items: PhantomData }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(page)
}

struct PageSeed<T> {
    head: Option<oneshot::Sender<ListMeta>>,
    items: PhantomData<T>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum Field {
    Metadata,
    Items,
    #[serde(other)]
    Other,
}

impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for PageSeed<T> {
    type Value = Page<T>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Page<T>, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: DeserializeOwned> Visitor<'de> for PageSeed<T> {
    type Value = Page<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Kubernetes list")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Page<T>, A::Error> {
        let mut items: Option<Vec<T>> = None;
        let mut metadata: Option<ListMeta> = None;
        while let Some(field) = map.next_key::<Field>()? {
            match field {
                Field::Metadata => {
                    let read: ListMeta = map.next_value()?;
                    if let Some(head) = self.head.take() {
                        // The receiver may be gone (the list was abandoned): nothing to tell.
                        let _ = head.send(read.clone());
                    }
                    metadata = Some(read);
                }
                // `"items": null` is an empty list, as the API server's clients read it.
                Field::Items => items = map.next_value::<Option<Vec<T>>>()?,
                Field::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Page { items: items.unwrap_or_default(), metadata: metadata.unwrap_or_default() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_is_handed_over_before_the_items_are_decoded() {
        // Items that fail to decode: the metadata before them has been handed over all the same.
        let text = r#"{"kind":"PodList","metadata":{"resourceVersion":"7","continue":"next"},"items":[{"bad":1},"x"]}"#;
        let (tx, mut rx) = oneshot::channel();
        assert!(decode_slice::<serde_json::Map<String, serde_json::Value>>(text.as_bytes(), tx).is_err());
        let head = rx.try_recv().expect("the metadata was sent");
        assert_eq!((head.resource_version.as_deref(), head.continue_.as_deref()), (Some("7"), Some("next")));
    }

    #[test]
    fn a_page_decodes_whatever_the_order_of_its_fields() {
        let text = r#"{"items":[{"a":1},{"a":2}],"apiVersion":"v1","metadata":{"resourceVersion":"9"}}"#;
        let (tx, mut rx) = oneshot::channel();
        let page = decode_slice::<serde_json::Value>(text.as_bytes(), tx).expect("decodes");
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.metadata.resource_version.as_deref(), Some("9"));
        assert!(rx.try_recv().is_ok());
        let (tx, _) = oneshot::channel();
        let empty =
            decode_slice::<serde_json::Value>(br#"{"metadata":{},"items":null}"#, tx).expect("decodes");
        assert!(empty.items.is_empty());
        let (tx, _) = oneshot::channel();
        assert!(decode_slice::<serde_json::Value>(br#"{"items":[]} trailing"#, tx).is_err());
    }
}
