//! The logic: [`Sessions`] over any [`RedisExec`] and [`Clock`], so it runs natively in tests
//! against a real redis-server and unchanged in the component.
//!
//! A session is one hash under the SHA-256 of its id; its user's index is a sorted set of
//! session hashes scored by expiry. The two live in different Redis Cluster slots, so they
//! are written in an order that leaves nothing wrong behind: the index entry first, then the
//! session (a failure in between leaves an index entry without a session, which listing
//! drops), then a check that the entry is still there (a concurrent "log out everywhere"
//! may have taken it; it is put back, so no live session is ever missing from the index).

use serde_json::{Value as Json, json};

use crate::clock::Clock;
use crate::config::SessionsConfig;
use crate::error::SessionError;
use crate::keys;
use crate::redis::{Arg, RedisExec, Value};
use crate::scripts;

/// A session as `GET /v1/sessions/{sid}` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// Its user.
    pub user_id: String,
    /// Its data (a JSON object).
    pub data: Json,
    /// When it was created.
    pub created_ms: u64,
    /// When it expires unless used again.
    pub expires_ms: u64,
    /// Its version (1 at creation, +1 per update): the `ETag`.
    pub version: u64,
}

impl Session {
    /// The contract's JSON.
    pub fn to_json(&self) -> Json {
        json!({
            "user_id": self.user_id,
            "data": self.data,
            "created_ms": self.created_ms,
            "expires_ms": self.expires_ms,
            "version": self.version,
        })
    }
}

/// A new session: its id (shown once; Redis only keeps its hash), expiry and version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The session id: 128 bits from the CSPRNG, 32 hex digits.
    pub session_id: String,
    /// When it expires unless used.
    pub expires_ms: u64,
    /// Its version (1).
    pub version: u64,
}

/// Sessions on Redis.
pub struct Sessions<R, C> {
    redis: R,
    clock: C,
    config: SessionsConfig,
}

impl<R: RedisExec, C: Clock> Sessions<R, C> {
    /// Sessions on `redis`, timed by `clock`, within `config`'s limits.
    pub fn new(redis: R, clock: C, config: SessionsConfig) -> Self {
        Self {
            redis,
            clock,
            config,
        }
    }

    /// The limits in force.
    pub fn config(&self) -> &SessionsConfig {
        &self.config
    }

    /// Creates a session for `user_id` with `data` (a JSON object), living `ttl_s` after its
    /// last use.
    pub fn create(
        &mut self,
        user_id: &str,
        data: &Json,
        ttl_s: Option<u64>,
    ) -> Result<Created, SessionError> {
        keys::validate_user_id(user_id)?;
        let data = self.data_text(data)?;
        let ttl_s = ttl_s.unwrap_or(self.config.default_ttl_s);
        if ttl_s == 0 || ttl_s > self.config.max_ttl_s {
            return Err(SessionError::invalid(
                "ttl_s",
                format!("must be 1 to {}", self.config.max_ttl_s),
            ));
        }
        let session_id = crate::token::secure_token().map_err(SessionError::Unavailable)?;
        let hash = keys::session_hash(&session_id);
        let now = self.clock.now_ms();
        let ttl_ms = ttl_s * 1000;
        let expires_ms = now + ttl_ms;
        self.index_add(user_id, &hash, expires_ms)?;
        let reply = scripts::CREATE.run(
            &mut self.redis,
            &[keys::session(&hash)],
            &[
                Arg::from(&now.to_string()),
                Arg::from(user_id),
                Arg::from(&data),
                Arg::from(&ttl_ms.to_string()),
            ],
        )?;
        if !matches!(reply.as_slice(), [Value::Int(1), ..]) {
            return Err(SessionError::Unavailable("session id collision".into()));
        }
        self.ensure_indexed(user_id, &hash, expires_ms)?;
        Ok(Created {
            session_id,
            expires_ms,
            version: 1,
        })
    }

    /// The session `session_id`, its expiry slid forward when `touch`.
    pub fn get(&mut self, session_id: &str, touch: bool) -> Result<Session, SessionError> {
        keys::validate_session_id(session_id)?;
        let hash = keys::session_hash(session_id);
        let now = self.clock.now_ms().to_string();
        let reply = scripts::READ.run(
            &mut self.redis,
            &[keys::session(&hash)],
            &[Arg::from(&now), Arg::from(if touch { "1" } else { "0" })],
        )?;
        let session = match reply.as_slice() {
            [
                Value::Int(1),
                Value::Bytes(user),
                Value::Bytes(data),
                Value::Int(created),
                Value::Int(expires),
                Value::Int(version),
            ] => Session {
                user_id: String::from_utf8_lossy(user).into_owned(),
                data: serde_json::from_slice(data).unwrap_or(Json::Null),
                created_ms: *created as u64,
                expires_ms: *expires as u64,
                version: *version as u64,
            },
            _ => return Err(SessionError::NotFound),
        };
        if touch {
            self.index_add(&session.user_id, &hash, session.expires_ms)?;
        }
        Ok(session)
    }

    /// Replaces the data of `session_id` when its version is `expected` (any version when
    /// `None`); its expiry slides. Returns the session as it now is.
    pub fn update(
        &mut self,
        session_id: &str,
        expected: Option<u64>,
        data: &Json,
    ) -> Result<Session, SessionError> {
        keys::validate_session_id(session_id)?;
        let data_text = self.data_text(data)?;
        let hash = keys::session_hash(session_id);
        let now = self.clock.now_ms().to_string();
        let expected = expected.map(|v| v.to_string()).unwrap_or_default();
        let reply = scripts::UPDATE.run(
            &mut self.redis,
            &[keys::session(&hash)],
            &[Arg::from(&now), Arg::from(&expected), Arg::from(&data_text)],
        )?;
        match reply.as_slice() {
            [
                Value::Int(1),
                Value::Int(version),
                Value::Int(expires),
                Value::Bytes(user),
                Value::Int(created),
            ] => {
                let session = Session {
                    user_id: String::from_utf8_lossy(user).into_owned(),
                    data: data.clone(),
                    created_ms: *created as u64,
                    expires_ms: *expires as u64,
                    version: *version as u64,
                };
                self.index_add(&session.user_id, &hash, session.expires_ms)?;
                Ok(session)
            }
            [Value::Int(0), Value::Bytes(why), Value::Int(current)] if why == b"version" => {
                Err(SessionError::VersionMismatch(*current as u64))
            }
            _ => Err(SessionError::NotFound),
        }
    }

    /// Ends `session_id`; false when there was none.
    pub fn delete(&mut self, session_id: &str) -> Result<bool, SessionError> {
        keys::validate_session_id(session_id)?;
        let hash = keys::session_hash(session_id);
        let key = keys::session(&hash);
        let user = self
            .redis
            .exec("HGET", &[Arg::from(&key), Arg::from("user_id")])?;
        let deleted = self.redis.exec("DEL", &[Arg::from(&key)])?;
        if let [Value::Bytes(user)] = user.as_slice() {
            let index = keys::user_index(&String::from_utf8_lossy(user));
            self.redis
                .exec("ZREM", &[Arg::from(&index), Arg::from(&hash)])?;
        }
        Ok(matches!(deleted.as_slice(), [Value::Int(1)]))
    }

    /// The live sessions of `user_id` (at most `max_listed`, soonest expiry first), each as
    /// `{"session_ref","created_ms","expires_ms","version"}`: `session_ref` is the first 16
    /// hex digits of the session's hash (ids are never stored, so never listed). Expired and
    /// dangling index entries are dropped on the way.
    pub fn list(&mut self, user_id: &str) -> Result<Vec<Json>, SessionError> {
        keys::validate_user_id(user_id)?;
        let index = keys::user_index(user_id);
        let now = self.clock.now_ms().to_string();
        self.redis.exec(
            "ZREMRANGEBYSCORE",
            &[Arg::from(&index), Arg::from("-inf"), Arg::from(&now)],
        )?;
        let max = self.config.max_listed.saturating_sub(1).to_string();
        let hashes = self.redis.exec(
            "ZRANGE",
            &[Arg::from(&index), Arg::from("0"), Arg::from(&max)],
        )?;
        let mut out = Vec::new();
        for hash in hashes {
            let Value::Bytes(hash) = hash else { continue };
            let hash = String::from_utf8_lossy(&hash).into_owned();
            let fields = self.redis.exec(
                "HMGET",
                &[
                    Arg::from(&keys::session(&hash)),
                    Arg::from("user_id"),
                    Arg::from("created_ms"),
                    Arg::from("expires_ms"),
                    Arg::from("version"),
                ],
            )?;
            let number = |v: &Value| match v {
                Value::Bytes(b) => String::from_utf8_lossy(b).parse::<u64>().ok(),
                _ => None,
            };
            match fields.as_slice() {
                [Value::Bytes(owner), created, expires, version] if owner == user_id.as_bytes() => {
                    out.push(json!({
                        "session_ref": &hash[..16],
                        "created_ms": number(created),
                        "expires_ms": number(expires),
                        "version": number(version),
                    }));
                }
                _ => {
                    // Gone (expired, deleted, or never written): drop the entry.
                    self.redis
                        .exec("ZREM", &[Arg::from(&index), Arg::from(&hash)])?;
                }
            }
        }
        Ok(out)
    }

    /// Ends every session of `user_id` ("log out everywhere"); returns how many were live.
    pub fn revoke_all(&mut self, user_id: &str) -> Result<u64, SessionError> {
        keys::validate_user_id(user_id)?;
        let hashes = scripts::INDEX_TAKE.run(&mut self.redis, &[keys::user_index(user_id)], &[])?;
        let mut revoked = 0;
        for hash in hashes {
            let Value::Bytes(hash) = hash else { continue };
            let key = keys::session(&String::from_utf8_lossy(&hash));
            if let [Value::Int(1)] = self.redis.exec("DEL", &[Arg::from(&key)])?.as_slice() {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    fn data_text(&self, data: &Json) -> Result<String, SessionError> {
        if !data.is_object() {
            return Err(SessionError::invalid("data", "must be a JSON object"));
        }
        let text = data.to_string();
        if text.len() as u64 > self.config.max_data_bytes {
            return Err(SessionError::TooLarge {
                field: "data".into(),
                limit: self.config.max_data_bytes,
            });
        }
        Ok(text)
    }

    fn index_add(
        &mut self,
        user_id: &str,
        hash: &str,
        expires_ms: u64,
    ) -> Result<(), SessionError> {
        scripts::INDEX_ADD.run(
            &mut self.redis,
            &[keys::user_index(user_id)],
            &[
                Arg::from(&self.clock.now_ms().to_string()),
                Arg::from(hash),
                Arg::from(&expires_ms.to_string()),
            ],
        )?;
        Ok(())
    }

    /// Puts the session back in the index if a concurrent revoke-all took the index between
    /// the index entry and the session write (see the module docs).
    fn ensure_indexed(
        &mut self,
        user_id: &str,
        hash: &str,
        expires_ms: u64,
    ) -> Result<(), SessionError> {
        let index = keys::user_index(user_id);
        let score = self
            .redis
            .exec("ZSCORE", &[Arg::from(&index), Arg::from(hash)])?;
        if matches!(score.as_slice(), [] | [Value::Nil]) {
            self.index_add(user_id, hash, expires_ms)?;
        }
        Ok(())
    }
}
