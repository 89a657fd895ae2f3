//! A pod's labels in one allocation.
//!
//! A pod of a Milvus release has four to ten labels. As a `BTreeMap<String, String>` they cost a
//! B-tree node (about 550 bytes however few they are) and two allocations per label; `list -A` holds
//! every pod of every release, so that was a fifth of its memory. Here they are one string of
//! `key NUL value NUL` entries sorted by key: neither a label key nor a value can hold a NUL (the API
//! server validates both), and a handful of entries is searched faster in one run of bytes than in a
//! tree.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const SEP: char = '\0';

/// A pod's labels, in key order.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct PodLabels(Box<str>);

impl PodLabels {
    /// The value of label `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Each label as (key, value), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.0.split_terminator(SEP);
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for PodLabels {
    /// The labels given; of a key given twice, the last value (as a JSON object's).
    fn from_iter<I: IntoIterator<Item = (K, V)>>(labels: I) -> Self {
        let mut labels: Vec<(K, V)> = labels.into_iter().collect();
        // Stable: of equal keys the last given stays last, and is the one kept below.
        labels.sort_by(|a, b| a.0.as_ref().cmp(b.0.as_ref()));
        let mut text =
            String::with_capacity(labels.iter().map(|(k, v)| k.as_ref().len() + v.as_ref().len() + 2).sum());
        for (i, (key, value)) in labels.iter().enumerate() {
            if labels.get(i + 1).is_some_and(|next| next.0.as_ref() == key.as_ref()) {
                continue;
            }
            for part in [key.as_ref(), value.as_ref()] {
                // A NUL cannot be in a label: it would split one, so it goes.
                text.extend(part.chars().filter(|c| *c != SEP));
                text.push(SEP);
            }
        }
        PodLabels(text.into_boxed_str())
    }
}

impl label_selector::Labels for PodLabels {
    fn label(&self, key: &str) -> Option<&str> {
        self.get(key)
    }
}

impl fmt::Debug for PodLabels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for PodLabels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        for (key, value) in self.iter() {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for PodLabels {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Map;
        impl<'de> Visitor<'de> for Map {
            type Value = PodLabels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of label keys to values")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PodLabels, A::Error> {
                let mut labels: Vec<(std::borrow::Cow<'de, str>, std::borrow::Cow<'de, str>)> =
                    Vec::with_capacity(map.size_hint().unwrap_or(8));
                while let Some((key, value)) = map.next_entry::<BorrowedOrOwned, BorrowedOrOwned>()? {
                    labels.push((key.0, value.0));
                }
                Ok(labels.into_iter().collect())
            }
        }
        deserializer.deserialize_map(Map)
    }
}

/// A string borrowed from the input when it can be (no escapes), else owned.
struct BorrowedOrOwned<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for BorrowedOrOwned<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Text;
        impl<'de> Visitor<'de> for Text {
            type Value = BorrowedOrOwned<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(BorrowedOrOwned(std::borrow::Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(BorrowedOrOwned(std::borrow::Cow::Owned(s.to_string())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(BorrowedOrOwned(std::borrow::Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use label_selector::{Labels as _, Selector};

    #[test]
    fn labels_are_kept_in_key_order_and_found_by_key() {
        let labels: PodLabels =
            serde_json::from_str(r#"{"component":"querynode","app.kubernetes.io/instance":"r","empty":""}"#)
                .expect("decodes");
        assert_eq!(
            labels.iter().collect::<Vec<_>>(),
            [("app.kubernetes.io/instance", "r"), ("component", "querynode"), ("empty", "")]
        );
        assert_eq!(labels.get("component"), Some("querynode"));
        assert_eq!(labels.get("empty"), Some(""));
        assert_eq!(labels.get("comp"), None);
        assert_eq!(labels.get("querynode"), None, "a value is not a key");
        assert!(labels.contains_key("app.kubernetes.io/instance"));
        assert_eq!(labels.label("component"), Some("querynode"));
        let selector = Selector::parse("component in (querynode,proxy),!missing").expect("parses");
        assert!(selector.matches(&labels));
        assert!(!Selector::parse("component=proxy").expect("parses").matches(&labels));
    }

    #[test]
    fn labels_go_back_out_as_the_same_json() {
        let json = serde_json::json!({"a\"b": "x\\y", "z": "1", "m": ""});
        let labels: PodLabels = serde_json::from_value(json.clone()).expect("decodes");
        assert_eq!(serde_json::to_value(&labels).expect("encodes"), json);
        let escaped: PodLabels = serde_json::from_str(r#"{"k\u0041":"v\n"}"#).expect("decodes");
        assert_eq!(escaped.get("kA"), Some("v\n"));
        assert!(PodLabels::default().is_empty());
        assert_eq!(PodLabels::default().iter().count(), 0);
        assert_eq!(format!("{:?}", labels), r#"{"a\"b": "x\\y", "m": "", "z": "1"}"#);
    }

    #[test]
    fn of_a_key_given_twice_the_last_value_is_kept() {
        let labels: PodLabels = [("k", "1"), ("a", "x"), ("k", "2")].into_iter().collect();
        assert_eq!(labels.iter().collect::<Vec<_>>(), [("a", "x"), ("k", "2")]);
        assert!(serde_json::from_str::<PodLabels>(r#"{"k": 1}"#).is_err());
    }

    #[test]
    fn labels_take_a_fraction_of_a_map() {
        let labels: PodLabels =
            (0..6).map(|i| (format!("app.kubernetes.io/key-{i}"), format!("v{i}"))).collect();
        assert_eq!(size_of::<PodLabels>(), 16);
        assert_eq!(labels.0.len(), 6 * ("app.kubernetes.io/key-0".len() + "v0".len() + 2));
    }
}
