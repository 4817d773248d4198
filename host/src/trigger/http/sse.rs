//! The SSE fan-out: one blocking reader per host feeds every open event stream.
//!
//! A component answers an event-stream request at once with its first events and names the
//! Redis stream to follow (the protocol is in `redwasm_guest::sse`: response headers
//! `redwasm-sse-follow`, `-after`, `-end`). The trigger then keeps the client's response open
//! and feeds it from the [`SseHub`]: one `XREAD BLOCK` over every watched stream, on a
//! connection of its own, each new entry sent to every client of that stream through a
//! broadcast channel. An open stream costs a channel receiver and a small state, not an
//! instance or a Redis connection.
//!
//! - The followed key is prefixed with the component's sandbox prefix: a component can only
//!   follow streams in its own namespace, or those its read grants name (`read_grants`).
//! - A client that joins a stream others already follow gets the entries between its own
//!   position and the reader's from `XRANGE` first, then the live ones: nothing lost, nothing
//!   twice (every entry is delivered only when its id is after the client's last).
//! - A client too slow for the channel is closed; it reconnects with `Last-Event-ID` and the
//!   component replays what it missed.
//! - A new stream wakes the reader at once through a private wake stream, so the reader can
//!   block for long between updates.
//! - Budgets of its own (issue: no component starves the others): open streams per host and
//!   per component, answered 503 beyond.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::BodyExt;
use redis::Value;
use tokio::sync::{Notify, broadcast};

use super::{Body, problem};
use crate::redis::{Blocking, Endpoint};

/// Response header: the Redis stream to follow (in the component's namespace).
const FOLLOW_HEADER: &str = "redwasm-sse-follow";
/// Response header: the last stream id the component's body already carries.
const AFTER_HEADER: &str = "redwasm-sse-after";
/// Response header: space-separated event names that end the stream.
const END_HEADER: &str = "redwasm-sse-end";
/// Request header telling a typed component the host follows streams for it.
pub(super) const FANOUT_REQUEST_HEADER: &str = "redwasm-sse";
/// The keep-alive comment.
const HEARTBEAT: &[u8] = b": keep-alive\n\n";
/// Seconds between keep-alive comments on an idle stream.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// How long the reader blocks when nothing happens (a new stream wakes it earlier).
const READ_BLOCK: Duration = Duration::from_secs(5);
/// Entries read per stream per `XREAD`.
const READ_COUNT: usize = 256;
/// Entries buffered per stream for slow clients before they are closed.
const CHANNEL_CAPACITY: usize = 256;
/// Largest first part (the component's own body) kept.
const MAX_FIRST_BYTES: usize = 8 * 1024 * 1024;
/// The reader's wake stream (in the host's own keyspace, not a component's).
const WAKE_KEY: &str = "redwasm:sse:wake";

/// Open-stream budgets.
#[derive(Clone, Debug)]
pub(super) struct SseLimits {
    /// Open event streams per host.
    pub(super) max_streams: usize,
    /// Open event streams per component.
    pub(super) max_streams_per_component: usize,
}

/// One stream entry, encoded once for every client.
struct Event {
    id: (u64, u64),
    bytes: Bytes,
    ends: Vec<u8>,
}

struct Watch {
    /// The last id the reader has seen.
    last: (u64, u64),
    tx: broadcast::Sender<Arc<Event>>,
    clients: usize,
}

/// The host's fan-out (one per HTTP app).
pub(crate) struct SseHub {
    admin: Option<Arc<Endpoint>>,
    limits: SseLimits,
    watches: Mutex<HashMap<String, Watch>>,
    open: AtomicUsize,
    per_component: Mutex<HashMap<String, usize>>,
    wake: Notify,
    reader_started: std::sync::Once,
    /// Set at shutdown: every open stream ends (clients resume elsewhere with
    /// `Last-Event-ID`), instead of holding the graceful shutdown for its whole grace.
    closing: tokio::sync::watch::Sender<bool>,
}

impl SseHub {
    /// A hub reading through `admin` (the host's Redis); without one, streams end after the
    /// component's first events (clients reconnect and lose nothing).
    pub(crate) fn new(admin: Option<Arc<Endpoint>>, limits: SseLimits) -> Arc<Self> {
        Arc::new(SseHub {
            admin,
            limits,
            watches: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
            per_component: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            reader_started: std::sync::Once::new(),
            closing: tokio::sync::watch::channel(false).0,
        })
    }

    /// Ends every open stream (at shutdown).
    pub(crate) fn close_all(&self) {
        self.closing.send_replace(true);
    }

    /// Open event streams right now.
    pub(crate) fn open_streams(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Turns a component's follow response into a live event stream; any other response is
    /// returned as it is.
    pub(crate) async fn follow(
        self: &Arc<Self>,
        component: &str,
        stream_key: impl FnOnce(&str) -> String,
        response: Response<Body>,
    ) -> Response<Body> {
        let Some(follow) = header(&response, FOLLOW_HEADER) else {
            return response;
        };
        let after = header(&response, AFTER_HEADER).and_then(|a| parse_id(&a));
        let ends: Vec<String> = header(&response, END_HEADER)
            .map(|e| e.split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        let (mut parts, body) = response.into_parts();
        for name in [FOLLOW_HEADER, AFTER_HEADER, END_HEADER] {
            parts.headers.remove(name);
        }
        let first = match http_body_util::Limited::new(body, MAX_FIRST_BYTES)
            .collect()
            .await
        {
            Ok(first) => first.to_bytes(),
            Err(_) => {
                return problem(
                    StatusCode::BAD_GATEWAY,
                    "the component's event stream could not be read",
                );
            }
        };
        let (Some(after), Some(admin)) = (after, self.admin.clone()) else {
            // Nothing to follow with: the first events only; the client reconnects.
            return Response::from_parts(parts, super::full(first));
        };
        let Some(slot) = self.admit(component) else {
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many open event streams; retry later",
            );
        };
        let key = stream_key(&follow);
        let subscription = self.subscribe(&admin, key, after, slot).await;
        let ends: Vec<Vec<u8>> = ends.into_iter().map(String::into_bytes).collect();
        let stream = futures::stream::unfold(
            Some(Client {
                first: Some(first),
                subscription,
                ends,
                closing: self.closing.subscribe(),
                heartbeat: tokio::time::interval_at(
                    tokio::time::Instant::now() + HEARTBEAT_EVERY,
                    HEARTBEAT_EVERY,
                ),
            }),
            |client| async move {
                let mut client = client?;
                let chunk = client.next().await?;
                Some((
                    Ok(http_body::Frame::data(chunk.0)),
                    chunk.1.then_some(client),
                ))
            },
        );
        parts.headers.insert(
            http::header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        );
        parts.headers.remove(http::header::CONTENT_LENGTH);
        Response::from_parts(
            parts,
            http_body_util::StreamBody::new(stream).boxed_unsync(),
        )
    }

    /// Takes a slot in the budgets, or `None` when a budget is spent.
    fn admit(self: &Arc<Self>, component: &str) -> Option<Slot> {
        let mut per = self.per_component.lock().unwrap_or_else(|e| e.into_inner());
        let mine = per.entry(component.to_string()).or_default();
        if *mine >= self.limits.max_streams_per_component {
            return None;
        }
        if self.open.fetch_add(1, Ordering::Relaxed) >= self.limits.max_streams {
            self.open.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        *mine += 1;
        Some(Slot {
            hub: Arc::downgrade(self),
            component: component.to_string(),
        })
    }

    /// Joins the watch of `key` (creating it), with the entries between `after` and the
    /// reader's position fetched first.
    async fn subscribe(
        self: &Arc<Self>,
        admin: &Arc<Endpoint>,
        key: String,
        after: (u64, u64),
        slot: Slot,
    ) -> Subscription {
        let (rx, reader_at, created) = {
            let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
            match watches.get_mut(&key) {
                Some(watch) => {
                    watch.clients += 1;
                    (watch.tx.subscribe(), watch.last, false)
                }
                None => {
                    let (tx, rx) = broadcast::channel(CHANNEL_CAPACITY);
                    watches.insert(
                        key.clone(),
                        Watch {
                            last: after,
                            tx,
                            clients: 1,
                        },
                    );
                    (rx, after, true)
                }
            }
        };
        self.start_reader(admin);
        if created {
            self.wake_reader(admin).await;
        }
        let mut catch_up = VecDeque::new();
        if reader_at > after {
            catch_up = read_range(admin, &key, after, reader_at).await;
        }
        Subscription {
            key,
            rx,
            catch_up,
            delivered: after,
            _slot: slot,
            hub: Arc::downgrade(self),
        }
    }

    fn start_reader(self: &Arc<Self>, admin: &Arc<Endpoint>) {
        self.reader_started.call_once(|| {
            tokio::spawn(read_loop(Arc::downgrade(self), admin.clone()));
        });
    }

    /// Makes a blocked `XREAD` return, so it includes a stream just added.
    async fn wake_reader(&self, admin: &Arc<Endpoint>) {
        self.wake.notify_one();
        let mut cmd = redis::cmd("XADD");
        cmd.arg(WAKE_KEY)
            .arg("MAXLEN")
            .arg(1)
            .arg("*")
            .arg("w")
            .arg(1);
        if let Err(error) = admin.run(&cmd, Blocking::No).await {
            tracing::debug!(error = %crate::redis::failure_text(&error), "sse: wake failed");
        }
    }

    fn leave(&self, key: &str) {
        let mut watches = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(watch) = watches.get_mut(key) {
            watch.clients = watch.clients.saturating_sub(1);
            if watch.clients == 0 {
                watches.remove(key);
            }
        }
    }
}

/// A place in the budgets, given back on drop.
struct Slot {
    hub: Weak<SseHub>,
    component: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.open.fetch_sub(1, Ordering::Relaxed);
            let mut per = hub.per_component.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(n) = per.get_mut(&self.component) {
                *n = n.saturating_sub(1);
            }
        }
    }
}

/// One client's place in a watch.
struct Subscription {
    key: String,
    rx: broadcast::Receiver<Arc<Event>>,
    catch_up: VecDeque<Arc<Event>>,
    /// The last id sent to the client.
    delivered: (u64, u64),
    _slot: Slot,
    hub: Weak<SseHub>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.leave(&self.key);
        }
    }
}

/// One open client stream.
struct Client {
    first: Option<Bytes>,
    subscription: Subscription,
    ends: Vec<Vec<u8>>,
    closing: tokio::sync::watch::Receiver<bool>,
    heartbeat: tokio::time::Interval,
}

impl Client {
    /// The next chunk and whether the stream goes on after it; `None`: end now.
    async fn next(&mut self) -> Option<(Bytes, bool)> {
        if let Some(first) = self.first.take() {
            return Some((first, true));
        }
        loop {
            let event = match self.subscription.catch_up.pop_front() {
                Some(event) => event,
                None => tokio::select! {
                    _ = self.closing.wait_for(|closing| *closing) => return None,
                    received = self.subscription.rx.recv() => match received {
                        Ok(event) => event,
                        // Too slow (or the watch is gone): close; the client resumes with
                        // Last-Event-ID and the component replays what it missed.
                        Err(_) => return None,
                    },
                    _ = self.heartbeat.tick() => return Some((Bytes::from_static(HEARTBEAT), true)),
                },
            };
            if event.id <= self.subscription.delivered {
                continue;
            }
            self.subscription.delivered = event.id;
            self.heartbeat.reset();
            let last = self.ends.contains(&event.ends);
            return Some((event.bytes.clone(), !last));
        }
    }
}

/// The reader: `XREAD BLOCK` over every watched stream (and the wake stream), each entry
/// broadcast to the stream's clients; until the hub is gone.
async fn read_loop(hub: Weak<SseHub>, admin: Arc<Endpoint>) {
    let mut conn = None;
    let mut wake_id = "$".to_string();
    loop {
        let Some(strong) = hub.upgrade() else {
            return;
        };
        let watched: Vec<(String, (u64, u64))> = strong
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(key, watch)| (key.clone(), watch.last))
            .collect();
        if watched.is_empty() {
            // A subscriber may have arrived between the snapshot and here: bounded wait (which
            // also bounds how long this task keeps a dropped hub alive).
            let _ = tokio::time::timeout(Duration::from_millis(500), strong.wake.notified()).await;
            continue;
        }
        drop(strong);
        if conn.is_none() {
            match admin.long_blocking_connection().await {
                Ok(c) => conn = Some(c),
                Err(error) => {
                    tracing::warn!(%error, "sse: reader cannot connect; retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            }
        }
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(READ_BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(WAKE_KEY);
        for (key, _) in &watched {
            cmd.arg(key);
        }
        cmd.arg(&wake_id);
        for (_, (ms, seq)) in &watched {
            cmd.arg(format!("{ms}-{seq}"));
        }
        let Some(connection) = conn.as_mut() else {
            continue;
        };
        let reply = tokio::time::timeout(
            READ_BLOCK + Duration::from_secs(5),
            cmd.query_async::<Value>(connection),
        )
        .await;
        let reply = match reply {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => {
                tracing::warn!(%error, "sse: XREAD failed; reconnecting");
                conn = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(_) => {
                conn = None;
                continue;
            }
        };
        let Some(hub) = hub.upgrade() else {
            return;
        };
        for (key, entries) in streams_of(reply) {
            if key == WAKE_KEY {
                if let Some((id, _)) = entries.last() {
                    wake_id = format!("{}-{}", id.0, id.1);
                }
                continue;
            }
            let mut watches = hub.watches.lock().unwrap_or_else(|e| e.into_inner());
            let Some(watch) = watches.get_mut(&key) else {
                continue;
            };
            for (id, fields) in entries {
                if id <= watch.last {
                    continue;
                }
                watch.last = id;
                // No receiver right now is fine: the watch goes when its last client does.
                let _ = watch.tx.send(Arc::new(encode(id, &fields)));
            }
        }
    }
}

/// The entries of `key` in `(after, upto]`, for a client joining a followed stream.
async fn read_range(
    admin: &Arc<Endpoint>,
    key: &str,
    after: (u64, u64),
    upto: (u64, u64),
) -> VecDeque<Arc<Event>> {
    let mut cmd = redis::cmd("XRANGE");
    cmd.arg(key)
        .arg(format!("({}-{}", after.0, after.1))
        .arg(format!("{}-{}", upto.0, upto.1));
    match admin.run(&cmd, Blocking::No).await {
        Ok(Value::Array(entries)) => entries
            .into_iter()
            .filter_map(entry)
            .map(|(id, fields)| Arc::new(encode(id, &fields)))
            .collect(),
        _ => VecDeque::new(),
    }
}

/// A stream id as numbers, `(ms, seq)`.
type StreamId = (u64, u64);
/// One stream entry: its id and its field/value pairs.
type Entry = (StreamId, Vec<(Vec<u8>, Vec<u8>)>);

/// `XREAD`'s reply → (stream key, entries).
fn streams_of(reply: Value) -> Vec<(String, Vec<Entry>)> {
    let streams = match reply {
        Value::Array(streams) => streams,
        Value::Map(pairs) => pairs
            .into_iter()
            .map(|(k, v)| Value::Array(vec![k, v]))
            .collect(),
        _ => return Vec::new(),
    };
    streams
        .into_iter()
        .filter_map(|stream| {
            let Value::Array(mut pair) = stream else {
                return None;
            };
            if pair.len() != 2 {
                return None;
            }
            let entries = pair.pop()?;
            let key = text(pair.pop()?)?;
            let Value::Array(entries) = entries else {
                return None;
            };
            Some((key, entries.into_iter().filter_map(entry).collect()))
        })
        .collect()
}

/// One stream entry `[id, [field, value, ...]]`.
fn entry(value: Value) -> Option<Entry> {
    let Value::Array(mut pair) = value else {
        return None;
    };
    if pair.len() != 2 {
        return None;
    }
    let fields = pair.pop()?;
    let id = parse_id(&text(pair.pop()?)?)?;
    let Value::Array(fields) = fields else {
        return None;
    };
    let mut out = Vec::new();
    let mut it = fields.into_iter();
    while let (Some(name), Some(value)) = (it.next(), it.next()) {
        out.push((bytes(name)?, bytes(value)?));
    }
    Some((id, out))
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    }
}

fn text(value: Value) -> Option<String> {
    bytes(value).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// An entry as SSE: `id:`, `event:` (its `event` field), `data:` (its `data` field).
fn encode(id: (u64, u64), fields: &[(Vec<u8>, Vec<u8>)]) -> Event {
    let field = |name: &[u8]| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .unwrap_or_default()
    };
    let event = field(b"event");
    // Without a `data` field, the other fields as a JSON object, numbers as numbers (as the
    // components' own encoder does, `redwasm_guest::sse::stream_event`).
    let owned;
    let data: &[u8] = if fields.iter().any(|(n, _)| n == b"data") {
        field(b"data")
    } else {
        let object: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .filter(|(name, _)| name != b"event")
            .map(|(name, value)| {
                let text = String::from_utf8_lossy(value).into_owned();
                let value = text
                    .parse::<u64>()
                    .map(serde_json::Value::from)
                    .unwrap_or(serde_json::Value::from(text));
                (String::from_utf8_lossy(name).into_owned(), value)
            })
            .collect();
        owned = serde_json::Value::Object(object).to_string();
        owned.as_bytes()
    };
    let mut out = format!("id: {}-{}\n", id.0, id.1).into_bytes();
    if !event.is_empty() {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(event);
        out.push(b'\n');
    }
    for line in data.split(|b| *b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line);
        out.push(b'\n');
    }
    out.push(b'\n');
    Event {
        id,
        bytes: Bytes::from(out),
        ends: event.to_vec(),
    }
}

/// `<ms>-<seq>` → the pair.
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.trim().split_once('-')?;
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

fn header<B>(response: &Response<B>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_encode_as_events_and_ids_order_numerically() {
        let event = encode(
            (10, 2),
            &[
                (b"event".to_vec(), b"progress".to_vec()),
                (b"data".to_vec(), b"{\"a\":1}".to_vec()),
            ],
        );
        assert_eq!(
            std::str::from_utf8(&event.bytes).unwrap(),
            "id: 10-2\nevent: progress\ndata: {\"a\":1}\n\n"
        );
        assert_eq!(event.ends, b"progress");
        assert!(
            parse_id("9-5") < parse_id("10-0"),
            "numeric, not text, order"
        );
        assert_eq!(parse_id("x"), None);
    }
}
