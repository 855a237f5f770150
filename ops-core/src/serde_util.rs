//! Serde helpers shared by the domain types.

/// Serialize a [`std::time::Duration`] as whole milliseconds (`u64`).
pub(crate) mod duration_ms {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// Milliseconds, or a human string (`"30s"`): [`crate::duration::deserialize`].
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        crate::duration::deserialize(d)
    }
}

/// Serialize an `Option<Duration>` as whole milliseconds or `null`.
pub(crate) mod opt_duration_ms {
    use std::time::Duration;

    use serde::{Deserializer, Serializer};

    #[allow(clippy::ref_option, reason = "serde's `with` passes &Option<T>")]
    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        crate::duration::deserialize_opt(d)
    }
}
