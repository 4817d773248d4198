//! The event channels components publish, and the Redis streams behind them: the one place
//! that knows both the channel names of `/v1/events/{channel}` and the stream keys the queue,
//! progress and cache components append to, so the writer and the events component can
//! never disagree.
//!
//! | channel          | stream (in the writer's namespace) | written by |
//! |------------------|------------------------------------|------------|
//! | `jobs.<queue>`   | `q{<queue>}:ev`                    | queue: every job state change |
//! | `progress.<id>`  | `p{<id>}:s`                        | progress: every change of the entry |
//! | `cache.<ns>`     | `c{<escaped ns>}:ev`               | cache: deletes and invalidations |
//! | anything else    | `e{<escaped channel>}:s`           | events: `POST /v1/events/{channel}` |
//!
//! Under Spin every component shares one keyspace, so the events component reads these keys
//! as they are. Under the redwasm host each component has its own namespace, and the events
//! component reads the writers' streams through read-only grants (`read_grants` in its
//! `[component.events.tool.redwasm]` table; Redis itself enforces them with `%R~` key
//! patterns on the component's ACL user).

/// Whose stream a channel is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Channel {
    /// `jobs.<queue>`: the queue's job state changes.
    Jobs(String),
    /// `progress.<id>`: a progress entry's changes.
    Progress(String),
    /// `cache.<ns>`: a cache namespace's deletes and invalidations.
    Cache(String),
    /// Any other name: events posted to `/v1/events/{channel}`.
    Own(String),
}

impl Channel {
    /// Classifies a channel name (already validated as a path segment).
    pub fn parse(name: &str) -> Channel {
        if let Some(queue) = name.strip_prefix("jobs.") {
            Channel::Jobs(queue.to_string())
        } else if let Some(id) = name.strip_prefix("progress.") {
            Channel::Progress(id.to_string())
        } else if let Some(ns) = name.strip_prefix("cache.") {
            Channel::Cache(ns.to_string())
        } else {
            Channel::Own(name.to_string())
        }
    }

    /// The Redis stream behind the channel (before any host prefix).
    pub fn stream(&self) -> String {
        match self {
            Channel::Jobs(queue) => jobs_stream(queue),
            Channel::Progress(id) => progress_stream(id),
            Channel::Cache(ns) => cache_stream(ns),
            Channel::Own(name) => own_stream(name),
        }
    }

    /// Which component writes the channel (`None`: the events component itself).
    pub fn writer(&self) -> Option<&'static str> {
        match self {
            Channel::Jobs(_) => Some("queue"),
            Channel::Progress(_) => Some("progress"),
            Channel::Cache(_) => Some("cache"),
            Channel::Own(_) => None,
        }
    }

    /// Events after which a stream of this channel ends (a progress entry's terminal
    /// events); other channels never end by themselves.
    pub fn terminal_events(&self) -> &'static [&'static str] {
        match self {
            Channel::Progress(_) => &["completed", "failed"],
            _ => &[],
        }
    }
}

/// Escapes text for use inside a `{...}` hash tag: `%` → `%25`, `{` → `%7B`, `}` → `%7D`,
/// so it can neither end the tag early nor open another one.
pub fn escape_tag(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '{' => out.push_str("%7B"),
            '}' => out.push_str("%7D"),
            other => out.push(other),
        }
    }
    out
}

/// `q{<queue>}:ev`: the queue's events stream (queue names never hold `{` or `}`).
pub fn jobs_stream(queue: &str) -> String {
    format!("q{{{queue}}}:ev")
}

/// `p{<id>}:s`: a progress entry's events stream (ids are `[A-Za-z0-9._:-]`).
pub fn progress_stream(id: &str) -> String {
    format!("p{{{id}}}:s")
}

/// `c{<escaped ns>}:ev`: a cache namespace's invalidation stream.
pub fn cache_stream(ns: &str) -> String {
    format!("c{{{}}}:ev", escape_tag(ns))
}

/// `e{<escaped channel>}:s`: a channel of the events component's own.
pub fn own_stream(channel: &str) -> String {
    format!("e{{{}}}:s", escape_tag(channel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_name_their_writers_streams() {
        assert_eq!(Channel::parse("jobs.mail").stream(), "q{mail}:ev");
        assert_eq!(
            Channel::parse("progress.import-7").stream(),
            "p{import-7}:s"
        );
        assert_eq!(Channel::parse("cache.a{b}").stream(), "c{a%7Bb%7D}:ev");
        assert_eq!(Channel::parse("chat").stream(), "e{chat}:s");
        assert_eq!(Channel::parse("chat.{x}%").stream(), "e{chat.%7Bx%7D%25}:s");
        assert_eq!(Channel::parse("jobs.mail").writer(), Some("queue"));
        assert_eq!(Channel::parse("chat").writer(), None);
        assert_eq!(
            Channel::parse("progress.p").terminal_events(),
            ["completed", "failed"]
        );
        assert!(Channel::parse("jobs.q").terminal_events().is_empty());
    }
}
