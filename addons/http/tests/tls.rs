//! HTTPS with `KINESIS_HTTP_TLS_CERT` and `KINESIS_HTTP_TLS_KEY`: a
//! self-signed certificate made here, a client that trusts it, and clients
//! that do not speak TLS or do not trust it.

mod common;

use std::time::Duration;

use common::*;
use kinesis::config::from_pairs;
use kinesis::{Config, Error, Runtime};
use kinesis_http::{HttpConfig, HttpOptions};
use serde_json::Value;

/// A self-signed certificate for `localhost` and its key, as PEM files in a
/// fresh directory.
struct Files {
    dir: std::path::PathBuf,
    cert: String,
    key: String,
    cert_pem: String,
}

impl Files {
    fn new(name: &str) -> Files {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let dir = std::env::temp_dir().join(format!("kinesis-tls-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert_pem = made.cert.pem();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &cert_pem).unwrap();
        std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
        Files {
            dir,
            cert: cert.to_str().unwrap().to_owned(),
            key: key.to_str().unwrap().to_owned(),
            cert_pem,
        }
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn https_with_the_configured_certificate_and_no_plain_http() {
    let files = Files::new("serve");
    let config = HttpConfig::from_lookup(from_pairs(&[
        ("KINESIS_HTTP_ADDR", "127.0.0.1:0"),
        ("KINESIS_HTTP_TLS_CERT", &files.cert),
        ("KINESIS_HTTP_TLS_KEY", &files.key),
    ]))
    .unwrap();
    let options = HttpOptions::from_config(&config);
    assert!(options.tls.is_some());
    let runtime = Runtime::builder(Config::default()).start().await.unwrap();
    let s = serve_runtime(runtime, options).await;
    s.counter("counter").await;

    let trusting = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(files.cert_pem.as_bytes()).unwrap())
        .resolve("localhost", s.addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let https = format!("https://localhost:{}/root/counter", s.addr.port());
    let r = trusting.get(&https).send().await.expect("an HTTPS request is served");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["data"]["count"], 0);
    let r = trusting
        .post(format!("{https}/increment"))
        .json(&serde_json::json!({"by": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), 2);

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
    let err = plain.get(s.url("/root/counter")).send().await;
    assert!(err.is_err(), "plain HTTP was answered: {:?}", err.map(|r| r.status()));

    // A client that does not trust the certificate refuses the server.
    let wary = reqwest::Client::builder()
        .resolve("localhost", s.addr)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    assert!(wary.get(&https).send().await.is_err());

    // The server goes on serving HTTPS after those.
    assert_eq!(trusting.get(&https).send().await.unwrap().status(), 200);
}

#[test]
fn a_certificate_and_a_key_that_do_not_match_are_a_config_error() {
    let a = Files::new("a");
    let b = Files::new("b");
    let err = HttpConfig::from_lookup(from_pairs(&[
        ("KINESIS_HTTP_TLS_CERT", &a.cert),
        ("KINESIS_HTTP_TLS_KEY", &b.key),
    ]))
    .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("KINESIS_HTTP_TLS_CERT") && msg.contains(&a.cert), "{msg}");
    assert!(msg.contains("KINESIS_HTTP_TLS_KEY") && msg.contains(&b.key), "{msg}");

    // The certificate where the key should be.
    let err = HttpConfig::from_lookup(from_pairs(&[
        ("KINESIS_HTTP_TLS_CERT", &a.cert),
        ("KINESIS_HTTP_TLS_KEY", &a.cert),
    ]))
    .unwrap_err();
    assert!(err.to_string().contains("KINESIS_HTTP_TLS_KEY"), "{err}");
}
