//! kinesis inside an axum app of your own: the REST surface nested under
//! `/api`, next to a route of the app's, and the app's own layer around
//! both.
//!
//! `cargo run -p kinesis-http --example embed`, then:
//!
//! ```text
//! $ curl -si localhost:8080/hello                      # the app's own route
//! $ curl -s  localhost:8080/api/root/counter           # kinesis, under /api
//! $ curl -s -X POST localhost:8080/api/root/counter/increment \
//!     -H 'content-type: application/json' -d '{"by": 2}'
//! ```
//!
//! Every answer carries the app's `x-served-by: embed-example` header.
//! Listens on `KINESIS_HTTP_ADDR` (default `127.0.0.1:8080`); stops on
//! ctrl-c.

use axum::http::HeaderValue;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use kinesis::{Component, Config, Container, Runtime};
use kinesis_http::{HttpConfig, HttpOptions};
use serde::{Deserialize, Serialize};

/// Counts.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counter {
    count: u64,
}

impl Component for Counter {}

#[kinesis::handlers]
impl Counter {
    /// Adds `by` and returns the new count.
    pub fn increment(&mut self, by: u64) -> u64 {
        self.count += by;
        self.count
    }
}

/// The app: its own `/hello`, kinesis under `/api` (with the add-on's
/// standard layers), and the app's layer around everything.
pub fn app(root: Container, options: &HttpOptions) -> Router {
    let kinesis = kinesis_http::layers(kinesis_http::router(root, options));
    Router::new()
        .route("/hello", get(|| async { "hello from the app" }))
        .nest("/api", kinesis)
        .layer(axum::middleware::map_response(|mut response: Response| async move {
            response.headers_mut().insert("x-served-by", HeaderValue::from_static("embed-example"));
            response
        }))
}

#[allow(dead_code)] // the tests include this file for `app` only
#[tokio::main]
async fn main() {
    let (config, http) = match Config::from_env().and_then(|c| Ok((c, HttpConfig::from_env()?))) {
        Ok(both) => both,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let runtime = Runtime::builder(config).start().await.expect("the runtime starts");
    runtime.root().add("counter", Counter::default()).await.expect("the counter starts");
    let options = HttpOptions::from_config(&http);
    let listener = tokio::net::TcpListener::bind(options.addr).await.unwrap_or_else(|e| {
        eprintln!("KINESIS_HTTP_ADDR={}: cannot listen: {e}", options.addr);
        std::process::exit(2);
    });
    println!("listening on http://{}", options.addr);
    let app = app(runtime.root().clone(), &options);
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    axum::serve(listener, app).with_graceful_shutdown(stop).await.expect("the server runs");
    let report = runtime.shutdown().await;
    std::process::exit(report.exit_code());
}
