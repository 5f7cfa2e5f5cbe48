//! Every Redis key and channel name, in one place.
//!
//! A user's keys share the hash tag `{<user tag>}` (see `ids::user_tag`), and a verification id
//! starts with its user's tag, so a registration's approval (verification + methods + audit) is
//! one single-slot script on Redis Cluster too.

use crate::ids::{TenantId, VerificationId};

#[derive(Clone, Debug)]
pub struct Keys {
    /// Shared, not owned: the store (and so the app state) is cloned for every request.
    prefix: std::sync::Arc<str>,
}

impl Keys {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// What every key and channel starts with.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Hash: one verification. TTL: its expiry plus `verification.retain_secs`.
    pub fn verification(&self, id: &VerificationId) -> String {
        concat(&[&self.prefix, ":{", id.user_tag(), "}:vf:", id.as_str()])
    }

    /// Hash: the user's methods (`m:<method id>` → JSON) and `default`. No TTL.
    pub fn methods(&self, user_tag: &str) -> String {
        concat(&[&self.prefix, ":{", user_tag, "}:methods"])
    }

    /// Stream: the user's security-info audit events, capped.
    pub fn audit(&self, user_tag: &str) -> String {
        concat(&[&self.prefix, ":{", user_tag, "}:audit"])
    }

    /// String: the tenant's policy document (JSON). No TTL. Absent: the configured default.
    pub fn policy(&self, tenant: &TenantId) -> String {
        format!("{}:{{t:{}}}:policy", self.prefix, tenant.as_str())
    }

    /// Stream: events waiting for delivery to portal back-ends (all tenants).
    pub fn outbox(&self) -> String {
        format!("{}:{{outbox}}:events", self.prefix)
    }

    // --- Abuse protection and event delivery ---

    /// Sorted set: calls counted against one rate limit (`name`) of `subject`, scored by time in
    /// ms. Every limit key of a tenant shares the hash tag `{t:<tenant>}`, so one script checks
    /// and records all of them atomically on Redis Cluster too. TTL: the limit's window.
    pub fn rate(&self, tenant: &str, name: &str, subject: &str) -> String {
        concat(&[&self.prefix, ":{t:", tenant, "}:rl:", name, ":", subject])
    }

    /// String: the id of the user's live verification. TTL: that verification's expiry.
    pub fn live(&self, user_tag: &str) -> String {
        concat(&[&self.prefix, ":{", user_tag, "}:live"])
    }

    /// String: an `Idempotency-Key`'s record (pending, then the answer). `key_hash` is a hash of
    /// the operation and the caller's key, never the key itself. TTL: 24 h.
    pub fn idempotency(&self, user_tag: &str, key_hash: &str) -> String {
        concat(&[&self.prefix, ":{", user_tag, "}:idem:", key_hash])
    }

    /// String: set by a fraud report (the reporting verification's id). TTL: the block's length.
    pub fn blocked(&self, user_tag: &str) -> String {
        concat(&[&self.prefix, ":{", user_tag, "}:blocked"])
    }

    /// String: the next free outbound-call slot of the provider account (Unix µs). TTL: short.
    pub fn pacing(&self, account: &str) -> String {
        format!("{}:{{provider:{account}}}:next-call", self.prefix)
    }

    /// Hash: the provider account's circuit breaker (failures, open_until, probe_at). TTL:
    /// refreshed on each failure (cool-down × 10 + a day); deleted on success.
    pub fn circuit(&self, account: &str) -> String {
        format!("{}:{{provider:{account}}}:circuit", self.prefix)
    }

    /// Sorted set: verification id → when its call is next checked against the provider's
    /// record (Unix ms). Its own hash tag, used only by single-key commands. No TTL: entries
    /// leave when their verification ended or expired.
    pub fn reconcile_due(&self) -> String {
        format!("{}:{{recon}}:due", self.prefix)
    }

    /// Sorted set: outbox entry ids waiting for a retry, scored by when they are due (Unix ms).
    pub fn outbox_retries(&self) -> String {
        format!("{}:{{outbox}}:retries", self.prefix)
    }

    /// Hash: outbox entry id → attempts made so far.
    pub fn outbox_attempts(&self) -> String {
        format!("{}:{{outbox}}:attempts", self.prefix)
    }

    /// Hash: tenant → the events URL that answered 410 (delivery to it is off). No TTL.
    pub fn outbox_disabled(&self) -> String {
        format!("{}:{{outbox}}:disabled", self.prefix)
    }

    /// Hash: one External MFA sign-in (the checked request, its current verification, how it
    /// ended). Its own hash tag per sign-in; single-key commands only. TTL: at most 10 minutes
    /// (`external_mfa::signin::TTL_SECS`).
    pub fn external_mfa_signin(&self, id: &str) -> String {
        concat(&[&self.prefix, ":{xmfa:", id, "}:signin"])
    }

    /// Pub/sub channel announcing a verification's status changes. It carries the user's hash
    /// tag, so on a cluster it is a shard channel in the slot of the keys the transition writes.
    pub fn change_channel(&self, id: &VerificationId) -> String {
        concat(&[
            &self.prefix,
            ":{",
            id.user_tag(),
            "}:vf-changed:",
            id.as_str(),
        ])
    }

    /// Pattern matching every change channel of this prefix (braces are literal in a pattern).
    pub fn change_pattern(&self) -> String {
        format!("{}:{{*}}:vf-changed:*", self.prefix)
    }

    /// The verification id back from a change channel name.
    pub fn id_from_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        let (_tag, id) = channel
            .strip_prefix(&*self.prefix)?
            .strip_prefix(":{")?
            .split_once("}:vf-changed:")?;
        Some(id)
    }
}

/// Joins key parts into one exactly-sized string: the transition builds six keys per webhook,
/// and `format!` costs several times as much as copying the parts.
fn concat(parts: &[&str]) -> String {
    let mut key = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for part in parts {
        key.push_str(part);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{TenantId, UserId, user_tag};

    #[test]
    fn a_users_keys_share_one_hash_tag() {
        let keys = Keys::new("cv");
        let (t, u) = (TenantId::parse("t").unwrap(), UserId::parse("u").unwrap());
        let id = VerificationId::generate(&t, &u);
        let tag = format!("{{{}}}", user_tag(&t, &u));
        assert!(keys.verification(&id).contains(&tag));
        assert!(keys.methods(id.user_tag()).contains(&tag));
        assert!(keys.audit(id.user_tag()).contains(&tag));
        assert!(keys.verification(&id).ends_with(id.as_str()));
        assert_eq!(keys.policy(&t), "cv:{t:t}:policy");
        assert_eq!(
            keys.id_from_channel(&keys.change_channel(&id)),
            Some(id.as_str())
        );
        assert!(keys.change_channel(&id).contains(&tag));
        assert_eq!(
            Keys::new("cv2").id_from_channel(&keys.change_channel(&id)),
            None
        );
    }
}
