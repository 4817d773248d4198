//! The sandbox tried as an attacker would: the test-only probe component (a Redis
//! passthrough that runs whatever command, Lua script and address it is told) is served as
//! `evil`, beside a second instance, `victim`, that stands for every other component. Each
//! test is one escape from issue 13; after each, `victim`'s keys are intact, the server is
//! unharmed, and `victim` is still served.
//!
//! Redis runs as `redwasm serve` runs the server it owns (`hardened_redis`), and the host
//! creates one ACL user per component (the default, `redis_acl = "auto"`).

use std::time::{Duration, Instant};

use redwasm_tests::{TestHost, client, hardened_redis, metric};
use reqwest::StatusCode;
use serde_json::{Value, json};

const PROBE_WASM: &str = concat!(env!("REDWASM_TEST_COMPONENTS_DIR"), "/redwasm_probe.wasm");

/// `evil` and `victim`: the probe twice, `evil` with `evil_tool` as its
/// `[component.evil.tool.redwasm]` and `evil_hosts` as its `allowed_outbound_hosts`;
/// `app_tool` is `[application.tool.redwasm]`.
fn manifest(evil_tool: &str, evil_hosts: &str, app_tool: &str) -> String {
    let source = serde_json::to_string(PROBE_WASM).unwrap();
    let mut text = format!(
        "spin_manifest_version = 2\n\n[application]\nname = \"escapes\"\n\n\
         [application.tool.redwasm]\n{app_tool}\n\n\
         [variables]\nredis_address = {{ default = \"redis://127.0.0.1:6379\" }}\n",
    );
    for (id, tool, hosts) in [
        ("evil", evil_tool, evil_hosts),
        ("victim", "", "[\"{{ redis_address }}\"]"),
    ] {
        text.push_str(&format!(
            "\n[[trigger.http]]\nroute = \"/{id}/...\"\ncomponent = \"{id}\"\n\n\
             [component.{id}]\nsource = {source}\nallowed_outbound_hosts = {hosts}\n\
             [component.{id}.variables]\nredis_address = \"{{{{ redis_address }}}}\"\n\
             [component.{id}.tool.redwasm]\nrequest_timeout_ms = 8000\n\
             max_request_body_bytes = 1048576\n{tool}\n"
        ));
    }
    text
}

struct Attack {
    host: TestHost,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// What the attacker asks its Redis connection to do.
#[derive(Default)]
struct Ask<'a> {
    address: Option<&'a str>,
    repeat: Option<u64>,
}

impl Attack {
    async fn start() -> Attack {
        Self::start_with("", "[\"{{ redis_address }}\"]").await
    }

    async fn start_with(evil_tool: &str, evil_hosts: &str) -> Attack {
        Self::start_app(evil_tool, evil_hosts, "").await
    }

    async fn start_app(evil_tool: &str, evil_hosts: &str, app_tool: &str) -> Attack {
        assert!(
            std::path::Path::new(PROBE_WASM).exists(),
            "{PROBE_WASM} is missing: tests/build.rs builds it"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spin.toml");
        std::fs::write(&path, manifest(evil_tool, evil_hosts, app_tool)).unwrap();
        let host = TestHost::start_on(hardened_redis(), |opts| opts.manifest = path.clone()).await;
        let attack = Attack {
            host,
            http: client(),
            _dir: dir,
        };
        // The victim's data, which no attack below may read, change or list.
        attack.ok("victim", "SET", &["secret", "s3cret"]).await;
        attack
    }

    /// `POST /<component>/redis`: `Ok(reply)` on 200, else `Err(error text)`.
    async fn run(
        &self,
        component: &str,
        command: &str,
        args: &[&str],
        ask: Ask<'_>,
    ) -> Result<Vec<Value>, String> {
        let mut body = json!({ "command": command, "args": args });
        if let Some(address) = ask.address {
            body["address"] = json!(address);
        }
        if let Some(repeat) = ask.repeat {
            body["repeat"] = json!(repeat);
        }
        let response = self
            .http
            .post(self.host.url(&format!("/{component}/redis")))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        match status {
            StatusCode::OK => match serde_json::from_str(&text).unwrap() {
                Value::Array(values) => Ok(values),
                other => panic!("{command}: reply is not an array: {other}"),
            },
            StatusCode::BAD_GATEWAY => Err(text),
            other => panic!("{component}: {command} {args:?}: unexpected {other}: {text}"),
        }
    }

    async fn exec(
        &self,
        component: &str,
        command: &str,
        args: &[&str],
    ) -> Result<Vec<Value>, String> {
        self.run(component, command, args, Ask::default()).await
    }

    async fn ok(&self, component: &str, command: &str, args: &[&str]) -> Vec<Value> {
        self.exec(component, command, args)
            .await
            .unwrap_or_else(|e| panic!("{component}: {command} {args:?} failed: {e}"))
    }

    /// A connection to the same server with full rights, to look behind the sandbox.
    async fn raw(&self) -> redis::aio::MultiplexedConnection {
        self.host.raw_redis().await
    }

    /// The victim's key is intact, the server answers, and the victim is still served.
    async fn assert_unharmed(&self) {
        let mut raw = self.raw().await;
        let secret: Option<String> = redis::cmd("GET")
            .arg("victim:secret")
            .query_async(&mut raw)
            .await
            .unwrap();
        assert_eq!(
            secret.as_deref(),
            Some("s3cret"),
            "the victim's key changed"
        );
        assert_eq!(
            self.ok("victim", "GET", &["secret"]).await,
            [json!("s3cret")],
            "the victim is still served"
        );
    }
}

/// Whether `text` is Redis refusing a command for the caller's ACL user (or the host's own
/// refusal).
fn refused(text: &str) -> bool {
    [
        "NOPERM",
        "no permissions",
        "can't run this command",
        "can't publish",
        "can't access",
        "not allowed",
        "denied",
    ]
    .iter()
    .any(|reason| text.contains(reason))
}

async fn info_field(
    raw: &mut redis::aio::MultiplexedConnection,
    section: &str,
    field: &str,
) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query_async(raw)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} in INFO {section}"))
        .trim()
        .parse()
        .unwrap()
}

/// A Lua script builds key names inside Redis, where the host cannot rewrite them: each
/// escape a script could try is refused by Redis itself (the component's ACL user).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scripts_cannot_leave_the_namespace() {
    let attack = Attack::start().await;
    // /health says scripts are confined.
    let health = attack.host.health().await;
    assert_eq!(
        health["sandbox"]["scripts_confined"],
        json!(true),
        "{health}"
    );
    assert_eq!(
        health["sandbox"]["users"]["evil:"],
        json!("redwasm.evil"),
        "{health}"
    );
    let mut raw = attack.raw().await;
    // A listener where MIGRATE would send the data: nothing may connect to it.
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sink_port = sink.local_addr().unwrap().port().to_string();
    let mut subscriber = redis::Client::open(attack.host.redis.url())
        .unwrap()
        .get_async_pubsub()
        .await
        .unwrap();
    subscriber.subscribe("news").await.unwrap();
    subscriber.subscribe("victim:news").await.unwrap();
    let keys_before: i64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();

    let migrate =
        format!("return redis.call('MIGRATE', '127.0.0.1', {sink_port}, 'victim:secret', 0, 1000)");
    let scripts: Vec<(&str, String)> = vec![
        (
            "read a built key",
            "return redis.call('GET', 'victim:secret')".into(),
        ),
        (
            "write a built key",
            "return redis.call('SET', 'victim:secret', 'pwned')".into(),
        ),
        (
            "delete a built key",
            "return redis.call('DEL', 'victim:secret')".into(),
        ),
        ("KEYS", "return redis.call('KEYS', '*')".into()),
        ("SCAN", "return redis.call('SCAN', '0')".into()),
        ("RANDOMKEY", "return redis.call('RANDOMKEY')".into()),
        ("DBSIZE", "return redis.call('DBSIZE')".into()),
        ("INFO", "return redis.call('INFO')".into()),
        ("FLUSHALL", "return redis.call('FLUSHALL')".into()),
        ("FLUSHDB", "return redis.call('FLUSHDB')".into()),
        ("SWAPDB", "return redis.call('SWAPDB', 0, 1)".into()),
        ("SELECT", "return redis.call('SELECT', 1)".into()),
        ("MOVE", "return redis.call('MOVE', KEYS[1], 1)".into()),
        (
            "PUBLISH",
            "return redis.call('PUBLISH', 'news', 'pwned')".into(),
        ),
        (
            "PUBLISH built",
            "return redis.call('PUBLISH', 'victim:news', 'pwned')".into(),
        ),
        ("MIGRATE", migrate),
        (
            "CONFIG",
            "return redis.call('CONFIG', 'SET', 'maxmemory', '1')".into(),
        ),
        (
            "RESTORE",
            "return redis.call('RESTORE', KEYS[1], 0, 'x')".into(),
        ),
        (
            "SCRIPT FLUSH",
            "return redis.call('SCRIPT', 'FLUSH')".into(),
        ),
        ("FUNCTION", "return redis.call('FUNCTION', 'FLUSH')".into()),
        (
            "OBJECT of a built key",
            "return redis.call('OBJECT', 'ENCODING', 'victim:secret')".into(),
        ),
    ];
    for (what, script) in &scripts {
        match attack.exec("evil", "EVAL", &[script, "1", "k"]).await {
            Ok(reply) => panic!("{what}: the script ran and returned {reply:?}"),
            Err(text) => assert!(
                refused(&text),
                "{what}: refused for the wrong reason: {text}"
            ),
        }
    }
    // The same through EVALSHA of a script the operator (or anyone) loaded, and through a
    // function loaded with full rights: they run with the caller's rights.
    let sha: String = redis::cmd("SCRIPT")
        .arg("LOAD")
        .arg("return redis.call('GET', 'victim:secret')")
        .query_async(&mut raw)
        .await
        .unwrap();
    let error = attack
        .exec("evil", "EVALSHA", &[&sha, "0"])
        .await
        .unwrap_err();
    assert!(refused(&error), "{error}");
    let _: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg("#!lua name=leak\nredis.register_function('leak', function() return redis.call('GET', 'victim:secret') end)")
        .query_async(&mut raw)
        .await
        .unwrap();
    let error = attack
        .exec("evil", "FCALL", &["leak", "0"])
        .await
        .unwrap_err();
    assert!(refused(&error), "{error}");

    // Scripts inside the namespace still work (the components' own Lua depends on it).
    assert_eq!(
        attack
            .ok(
                "evil",
                "EVAL",
                &[
                    "redis.call('SET', KEYS[1], 'mine') return redis.call('GET', KEYS[1])",
                    "1",
                    "k"
                ]
            )
            .await,
        [json!("mine")]
    );

    // Nothing left: no message published, no connection to the sink, no key lost or added
    // besides evil's own.
    let got = tokio::time::timeout(Duration::from_millis(300), async {
        use futures::StreamExt;
        subscriber.on_message().next().await
    })
    .await;
    assert!(got.is_err(), "a message was published: {got:?}");
    let accepted = tokio::time::timeout(Duration::from_millis(100), sink.accept()).await;
    assert!(accepted.is_err(), "MIGRATE reached the sink");
    let keys_after: i64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
    assert_eq!(keys_after, keys_before + 1, "only evil:k was added");
    let maxmemory: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("maxmemory")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(maxmemory[1], "0");
    attack.assert_unharmed().await;
}

/// Without ACL users (`redis_acl = "off"`, or a Redis that refuses ACL SETUSER) the host
/// says so: `/health` reports that scripts are not confined, and why.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_acl_users_health_says_scripts_are_unconfined() {
    let attack = Attack::start_app("", "[\"{{ redis_address }}\"]", "redis_acl = \"off\"").await;
    let health = attack.host.health().await;
    assert_eq!(
        health["sandbox"]["scripts_confined"],
        json!(false),
        "{health}"
    );
    assert!(
        health["sandbox"]["degraded"]
            .as_str()
            .is_some_and(|d| d.contains("off")),
        "{health}"
    );
}

/// `while true do end` would make Redis answer BUSY to everybody: the watchdog kills it and
/// the component's call fails with a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_script_past_its_time_limit_is_killed() {
    let attack = Attack::start().await;
    let started = Instant::now();
    let error = attack
        .exec("evil", "EVAL", &["while true do end", "0"])
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(error.contains("script killed"), "{error}");
    assert!(
        error.contains("500 ms"),
        "the error names the limit: {error}"
    );
    assert!(elapsed < Duration::from_secs(4), "killed after {elapsed:?}");
    let mut raw = attack.raw().await;
    let pong: String = redis::cmd("PING").query_async(&mut raw).await.unwrap();
    assert_eq!(pong, "PONG");
    attack.assert_unharmed().await;
    assert_eq!(
        metric(
            &attack.host.metrics().await,
            "redwasm_redis_scripts_killed_total"
        ),
        1
    );
}

/// A script that wrote before looping cannot be killed (Redis would lose atomicity): the host
/// reports it loudly (error log, metric, a distinct error to the component).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unkillable_script_is_reported() {
    let attack = Attack::start().await;
    let error = attack
        .exec(
            "evil",
            "EVAL",
            &["redis.call('SET', KEYS[1], 1) while true do end", "1", "k"],
        )
        .await
        .unwrap_err();
    assert!(error.contains("cannot be killed"), "{error}");
    assert_eq!(
        metric(
            &attack.host.metrics().await,
            "redwasm_redis_scripts_unkillable_total"
        ),
        1
    );
    // Only SHUTDOWN NOSAVE ends it; the test's server is thrown away.
    let mut raw = attack.raw().await;
    let _ = redis::cmd("SHUTDOWN")
        .arg("NOSAVE")
        .query_async::<Value2>(&mut raw)
        .await;
}

type Value2 = redis::Value;

/// RESTORE is refused (a crafted payload can crash a server without payload sanitising),
/// and no single write can make Redis allocate past the component's write cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn restore_and_huge_writes_are_refused() {
    let attack =
        Attack::start_with("max_redis_write_bytes = 65536", "[\"{{ redis_address }}\"]").await;
    let mut raw = attack.raw().await;
    let memory_before = info_field(&mut raw, "memory", "used_memory").await;

    let dump: Vec<u8> = redis::cmd("DUMP")
        .arg("victim:secret")
        .query_async(&mut raw)
        .await
        .unwrap();
    let payload = String::from_utf8_lossy(&dump).into_owned();
    let refused: &[(&str, Vec<String>)] = &[
        ("RESTORE", vec!["k".into(), "0".into(), payload]),
        ("SETRANGE", vec!["k".into(), "536870911".into(), "x".into()]),
        ("SETBIT", vec!["k".into(), "4294967295".into(), "1".into()]),
        (
            "BITFIELD",
            vec![
                "k".into(),
                "SET".into(),
                "u8".into(),
                "#100000000".into(),
                "1".into(),
            ],
        ),
        ("SET", vec!["k".into(), "x".repeat(70_000)]),
        ("APPEND", vec!["k".into(), "x".repeat(70_000)]),
    ];
    for (command, args) in refused {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let error = attack.exec("evil", command, &args).await.unwrap_err();
        assert!(error.contains("denied"), "{command}: {error}");
    }
    // Inside a script the host cannot see the offset: the server's own string cap holds.
    let error = attack
        .exec(
            "evil",
            "EVAL",
            &[
                "return redis.call('SETRANGE', KEYS[1], 536870911, 'x')",
                "1",
                "k",
            ],
        )
        .await
        .unwrap_err();
    assert!(error.contains("maximum allowed size"), "{error}");
    let memory_after = info_field(&mut raw, "memory", "used_memory").await;
    assert!(
        memory_after < memory_before + 16 * 1024 * 1024,
        "used_memory grew from {memory_before} to {memory_after}"
    );
    // Writes under the cap still work.
    attack.ok("evil", "SETRANGE", &["k", "60000", "x"]).await;
    attack.assert_unharmed().await;
}

/// The guest's address selects a server, never a database or a user: on the host's Redis
/// the host's database and the component's own ACL user are used, whatever the URL says.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_host_chooses_database_and_credentials() {
    let attack = Attack::start().await;
    let port = attack.host.redis.port();
    let mut raw = attack.raw().await;
    for address in [
        format!("redis://127.0.0.1:{port}/5"),
        format!("redis://default:guess@127.0.0.1:{port}/0"),
        format!("redis://admin:admin@127.0.0.1:{port}/3"),
    ] {
        let ask = Ask {
            address: Some(&address),
            ..Ask::default()
        };
        attack
            .run("evil", "SET", &["picked", &address], ask)
            .await
            .unwrap_or_else(|e| panic!("{address}: {e}"));
        let ask = Ask {
            address: Some(&address),
            ..Ask::default()
        };
        let leak = attack
            .run(
                "evil",
                "EVAL",
                &["return redis.call('GET', 'victim:secret')", "0"],
                ask,
            )
            .await;
        assert!(
            leak.is_err(),
            "{address}: the script read the victim's key: {leak:?}"
        );
    }
    // Everything landed in database 0, under evil's prefix.
    let picked: Option<String> = redis::cmd("GET")
        .arg("evil:picked")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(picked.is_some());
    for db in [3, 5] {
        let _: () = redis::cmd("SELECT")
            .arg(db)
            .query_async(&mut raw)
            .await
            .unwrap();
        let size: i64 = redis::cmd("DBSIZE").query_async(&mut raw).await.unwrap();
        assert_eq!(size, 0, "database {db} was written");
    }
    let _: () = redis::cmd("SELECT")
        .arg(0)
        .query_async(&mut raw)
        .await
        .unwrap();
    attack.assert_unharmed().await;
}

/// Spelling variants of one address share one endpoint; distinct other addresses are
/// capped per component, so one component cannot use up the process's endpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn address_variants_cannot_exhaust_endpoints() {
    let attack = Attack::start_with("", "[\"redis://127.0.0.1:*\"]").await;
    let port = attack.host.redis.port();
    for i in 0..80 {
        let address = match i % 4 {
            0 => format!("redis://127.0.0.1:{port}/?v={i}"),
            1 => format!("REDIS://127.0.0.1:{port}/{i}"),
            2 => format!("redis://u{i}:p@127.0.0.1:{port}"),
            _ => format!("redis://127.0.0.1:{port}#{i}"),
        };
        let ask = Ask {
            address: Some(&address),
            ..Ask::default()
        };
        attack
            .run("evil", "PING", &[], ask)
            .await
            .unwrap_or_else(|e| panic!("{address}: {e}"));
    }
    // Other servers (closed ports here): four per component, then refused at open.
    let mut refused = 0;
    for other_port in 1..=8 {
        let address = format!("redis://127.0.0.1:{other_port}");
        let ask = Ask {
            address: Some(&address),
            ..Ask::default()
        };
        if let Err(text) = attack.run("evil", "PING", &[], ask).await
            && text.contains("TooManyConnections")
        {
            refused += 1;
        }
    }
    assert_eq!(refused, 4, "the fifth to eighth other address are refused");
    let endpoints = metric(&attack.host.metrics().await, "redwasm_redis_endpoints");
    assert!(endpoints <= 8, "{endpoints} endpoints");
    attack.assert_unharmed().await;
}

/// A reply larger than the cap never reaches the host whole: Redis drops the client past
/// its output-buffer limit, and only the attacker's own connection is affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_huge_reply_is_cut_by_the_server() {
    let attack = Attack::start().await;
    let mut raw = attack.raw().await;
    // 16 MiB in one list (twice the 8 MiB cap), written in bounded steps.
    attack
        .run(
            "evil",
            "EVAL",
            &[
                "for i = 1, 64 do redis.call('RPUSH', KEYS[1], string.rep('x', 4096)) end",
                "1",
                "big",
            ],
            Ask {
                repeat: Some(64),
                ..Ask::default()
            },
        )
        .await
        .unwrap();
    let len: i64 = redis::cmd("LLEN")
        .arg("evil:big")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(len, 64 * 64);
    let log = attack.host.redis.dir().join("redis.log");
    let cuts = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .matches("overcoming of output buffer limits")
            .count()
    };
    let before = cuts();
    let error = attack
        .exec("evil", "LRANGE", &["big", "0", "-1"])
        .await
        .unwrap_err();
    assert!(!error.is_empty());
    // Redis logs each client it drops for its output buffer (INFO counts them only from 7.2).
    let deadline = Instant::now() + Duration::from_secs(5);
    while cuts() == before {
        assert!(
            Instant::now() < deadline,
            "Redis never cut the reply:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    attack.assert_unharmed().await;
}

/// Blocking commands: each component has its own share of dedicated connections, so one
/// component's BLPOPs cannot starve the others; `WAIT 1 0` without a replica returns at the
/// cap instead of holding a connection until the request times out.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn blocking_commands_are_budgeted_per_component() {
    let attack = std::sync::Arc::new(Attack::start().await);
    let mut pops = Vec::new();
    for _ in 0..6 {
        let attack = attack.clone();
        pops.push(tokio::spawn(async move {
            attack.exec("evil", "BLPOP", &["never", "3"]).await
        }));
    }
    // While evil holds all it may, the victim still gets a blocking connection at once.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = attack.host.metrics().await;
        if metric(&text, "redwasm_redis_blocking_connections_in_use") >= 4 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "evil never held 4 blocking connections"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    attack.ok("victim", "RPUSH", &["jobs", "j1"]).await;
    let started = Instant::now();
    assert_eq!(
        attack.ok("victim", "BLPOP", &["jobs", "2"]).await,
        [json!("jobs"), json!("j1")]
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    let mut refused = 0;
    for pop in pops {
        match pop.await.unwrap() {
            Ok(reply) => assert_eq!(reply, [Value::Null]),
            Err(text) => {
                assert!(text.contains("TooManyConnections"), "{text}");
                refused += 1;
            }
        }
    }
    assert_eq!(refused, 2, "evil got exactly its 4 blocking connections");

    let started = Instant::now();
    assert_eq!(attack.ok("evil", "WAIT", &["1", "0"]).await, [json!(0)]);
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(3),
        "WAIT 1 0 took {elapsed:?}"
    );
    attack.assert_unharmed().await;
}

/// Commands per request are budgeted; the next request gets a full budget again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commands_per_request_are_budgeted() {
    let attack = Attack::start_with(
        "max_redis_commands_per_request = 50",
        "[\"{{ redis_address }}\"]",
    )
    .await;
    let many = Ask {
        repeat: Some(51),
        ..Ask::default()
    };
    let error = attack.run("evil", "INCR", &["n"], many).await.unwrap_err();
    assert!(error.contains("more than 50 Redis commands"), "{error}");
    let fifty = Ask {
        repeat: Some(50),
        ..Ask::default()
    };
    assert_eq!(
        attack.run("evil", "INCR", &["m"], fifty).await.unwrap(),
        [json!(50)]
    );
    attack.assert_unharmed().await;
}

/// An embedded call into a guest that never returns fails at the call timeout (as an HTTP
/// request would at its deadline), and the next call gets a fresh instance. The guest is the
/// probe, whose `redwasm:ratelimit` export loops on the key `loop`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_embedded_call_into_a_looping_guest_returns() {
    use redwasm::embed::Redwasm;
    use redwasm::embed::ratelimit::{Algorithm, Policy, PolicyRef, RateLimitError};

    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(PROBE_WASM, dir.path().join("redwasm_ratelimit.wasm")).unwrap();
    let redis = hardened_redis();
    let redwasm = Redwasm::connect(&redis.url())
        .await
        .unwrap()
        .with_components_dir(dir.path())
        .with_call_timeout(Duration::from_millis(500));
    let limiter = redwasm
        .ratelimit_with("hostile", Default::default())
        .await
        .unwrap();
    let policy: Vec<PolicyRef> = vec![Policy::new("p", 1, 1000, Algorithm::FixedWindow).into()];
    for _ in 0..2 {
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(Duration::from_secs(10), limiter.check("loop", &policy, 1))
                .await
                .expect("the embedded call must return");
        match outcome {
            Err(RateLimitError::Component(detail)) => {
                assert!(detail.contains("500 ms"), "{detail}")
            }
            other => panic!("expected a component error, got {other:?}"),
        }
        let elapsed = started.elapsed();
        assert!(
            elapsed >= Duration::from_millis(500) && elapsed < Duration::from_secs(5),
            "stopped after {elapsed:?}"
        );
    }
    // The looping instance was dropped: the next call runs on a fresh one and answers.
    match limiter.check("other", &policy, 1).await {
        Err(RateLimitError::Invalid(detail)) => assert!(detail.contains("probe"), "{detail}"),
        other => panic!("expected the probe's answer, got {other:?}"),
    }
}
