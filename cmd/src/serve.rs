//! `kinesis serve` (and `kinesis` alone): the runtime with the demo
//! application and the add-ons built in by Cargo features. Configured only
//! by environment variables; `kinesis --help` lists them. Each crate reads
//! and lists its own variables: the core (`kinesis::config`), the logging
//! (`kinesis_cmd::logging`), the client (`kinesis_client`) and each add-on
//! built in.

use std::process::ExitCode;

use kinesis::persist::StoreRegistry;
use kinesis::{Config, Error, Runtime};
use kinesis_cmd::logging::LogConfig;

/// The target of the runtime's own log lines (`INFO kinesis: …`), as
/// before the command line had modules.
const LOG_TARGET: &str = "kinesis";

/// The add-ons built into this binary, by Cargo feature.
const ADDONS: &[(&str, bool)] = &[
    ("http", cfg!(feature = "http")),
    ("grpc", cfg!(feature = "grpc")),
    ("filedb", cfg!(feature = "filedb")),
    ("sqlite", cfg!(feature = "sqlite")),
    ("postgres", cfg!(feature = "postgres")),
    ("mysql", cfg!(feature = "mysql")),
    ("mongodb", cfg!(feature = "mongodb")),
    ("nats", cfg!(feature = "nats")),
    ("lock", cfg!(feature = "lock")),
];

fn built_in() -> Vec<&'static str> {
    ADDONS.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect()
}

/// Every variable this binary reads, from the tables of the crates that own
/// them (the add-ons' only when built in). A variable that two add-ons read
/// is listed once, with both descriptions.
fn variables() -> Vec<(&'static str, String)> {
    #[allow(unused_mut)]
    let mut tables: Vec<&[(&'static str, &'static str)]> = vec![
        kinesis_cmd::logging::VARIABLES,
        kinesis::config::VARIABLES,
        kinesis_client::VARIABLES,
        kinesis_discovery::VARIABLES,
    ];
    #[cfg(feature = "http")]
    tables.push(kinesis_http::VARIABLES);
    #[cfg(feature = "http")]
    tables.push(kinesis_http::security::VARIABLES);
    #[cfg(feature = "grpc")]
    tables.push(kinesis_grpc::VARIABLES);
    #[cfg(feature = "grpc")]
    tables.push(kinesis_grpc::security::VARIABLES);
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    tables.push(kinesis_sql::VARIABLES);
    #[cfg(feature = "mongodb")]
    tables.push(kinesis_mongodb::VARIABLES);
    #[cfg(feature = "lock")]
    tables.push(kinesis_lock::VARIABLES);
    #[cfg(feature = "nats")]
    tables.push(kinesis_events::VARIABLES);
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for &(name, what) in tables.into_iter().flatten() {
        match out.iter_mut().find(|(n, _)| *n == name) {
            Some((_, text)) if text != what => {
                text.push_str("; ");
                text.push_str(what);
            }
            Some(_) => {}
            None => out.push((name, what.to_owned())),
        }
    }
    out
}

/// The validated settings: every variable of the binary is checked before
/// anything starts.
struct Settings {
    core: Config,
    log: LogConfig,
    #[cfg(feature = "http")]
    http: kinesis_http::HttpConfig,
    #[cfg(feature = "nats")]
    events: kinesis_events::EventsConfig,
    instance: kinesis_discovery::InstanceConfig,
    #[cfg(feature = "grpc")]
    grpc: kinesis_grpc::GrpcConfig,
    #[cfg(feature = "lock")]
    lock: kinesis_lock::LockConfig,
}

impl Settings {
    fn from_env() -> kinesis::Result<Settings> {
        let log = LogConfig::from_env()?;
        let core = Config::from_env()?;
        #[cfg(feature = "http")]
        let http = kinesis_http::HttpConfig::from_env()?;
        #[cfg(feature = "grpc")]
        let grpc = kinesis_grpc::GrpcConfig::from_env()?;
        // Checked now so that a bad value stops the program at start; the
        // SQL store reads it again when it opens a pool.
        #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
        kinesis_sql::SqlConfig::from_env()?;
        #[cfg(feature = "nats")]
        let events = kinesis_events::EventsConfig::from_env()?;
        let instance = kinesis_discovery::InstanceConfig::from_env()?;
        #[cfg(feature = "lock")]
        let lock = kinesis_lock::LockConfig::from_env()?;
        Ok(Settings {
            core,
            log,
            #[cfg(feature = "http")]
            http,
            #[cfg(feature = "nats")]
            events,
            instance,
            #[cfg(feature = "grpc")]
            grpc,
            #[cfg(feature = "lock")]
            lock,
        })
    }
}

/// The text after `kinesis --help`: every environment variable the binary
/// reads, and the add-ons built in.
pub(crate) fn help_footer() -> String {
    let mut out = String::from(
        "The runtime (`kinesis` or `kinesis serve`) is configured only by the environment;\n\
         the commands that talk to a running runtime read KINESIS_URL and KINESIS_TOKEN.\n\n\
         Environment:\n",
    );
    for (name, what) in variables() {
        out.push_str(&format!("  {name:<34} {what}\n"));
    }
    let built = built_in();
    out.push_str(&format!(
        "\nAdd-ons built in: {}\n(enable others with cargo features: {})\n\n\
         Exit codes: 0 ok, 1 the server answered with a failure, 2 usage or configuration,\n\
         3 cannot connect.",
        if built.is_empty() { "none".to_owned() } else { built.join(", ") },
        ADDONS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    ));
    out
}

/// `kinesis serve`: validates the environment, starts the runtime with the
/// demo application and the add-ons built in, and runs until a signal.
/// `only`, when given, is the subset of components to run (`--only`); it
/// takes the place of `KINESIS_ONLY`.
pub(crate) fn serve(only: Option<&[String]>) -> ExitCode {
    let mut settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("kinesis: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(only) = only {
        settings.core.only = Some(only.to_vec());
    }
    settings.log.init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("kinesis: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(run(settings));
    // Components' tasks were stopped; do not wait for stray blocking work.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    kinesis_cmd::logging::shutdown();
    code
}

async fn run(settings: Settings) -> ExitCode {
    match start_and_serve(settings).await {
        Ok(code) => code,
        Err(e @ Error::Config(_)) => {
            tracing::error!(target: LOG_TARGET, "{e}");
            eprintln!("kinesis: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            tracing::error!(target: LOG_TARGET, "{e}");
            eprintln!("kinesis: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Announces this runtime over NATS as `KINESIS_INSTANCE`, reached at
/// `urls` (preferred first; an error is a URL that could not be told), when
/// both the name and a NATS server (`KINESIS_EVENTS_URL`) are set and the
/// binary has the `nats` feature.
async fn announce(
    runtime: &Runtime,
    instance: &kinesis_discovery::InstanceConfig,
    urls: Vec<kinesis::Result<String>>,
) -> kinesis::Result<()> {
    let Some(name) = &instance.name else { return Ok(()) };
    if urls.is_empty() {
        tracing::warn!(target: LOG_TARGET, instance = %name, "KINESIS_INSTANCE is set but no server of this binary listens (HTTP or gRPC): not announced");
        return Ok(());
    }
    let Some(nats_url) = &instance.nats_url else {
        tracing::info!(target: LOG_TARGET, instance = %name, "no KINESIS_EVENTS_URL: the instance is not announced (others can list it in KINESIS_PEERS)");
        return Ok(());
    };
    #[cfg(feature = "nats")]
    {
        let urls = urls.into_iter().collect::<kinesis::Result<Vec<_>>>()?;
        kinesis_discovery::announce(runtime, name, urls, nats_url).await?;
        Ok(())
    }
    #[cfg(not(feature = "nats"))]
    {
        let _ = (runtime, urls, nats_url);
        tracing::warn!(target: LOG_TARGET, instance = %name, "KINESIS_EVENTS_URL is set but this binary was built without the `nats` feature: the instance is not announced");
        Ok(())
    }
}

fn stores() -> StoreRegistry {
    #[allow(unused_mut)]
    let mut stores = StoreRegistry::with_builtin();
    #[cfg(feature = "filedb")]
    kinesis_filedb::register(&mut stores);
    #[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
    kinesis_sql::register(&mut stores);
    #[cfg(feature = "mongodb")]
    kinesis_mongodb::register(&mut stores);
    stores
}

/// The demo app, with the singletons of `KINESIS_SINGLETONS` and the lease
/// backend of `KINESIS_LOCK_URL` when the `lock` add-on is built in.
async fn app(settings: &Settings) -> kinesis::Result<kinesis::App> {
    #[allow(unused_mut)]
    let mut app = kinesis_cmd::demo::app();
    #[cfg(feature = "lock")]
    {
        for name in &settings.lock.singletons {
            app = app.make_singleton(name)?;
        }
        if let Some(leases) = settings.lock.open().await? {
            tracing::info!(
                target: LOG_TARGET,
                backend = leases.backend.backend(),
                ttl = %humantime::format_duration(leases.ttl),
                singletons = %settings.lock.singletons.join(","),
                "leases ready"
            );
            app = app.leases(leases);
        }
    }
    #[cfg(not(feature = "lock"))]
    let _ = settings;
    Ok(app)
}

async fn start_and_serve(settings: Settings) -> kinesis::Result<ExitCode> {
    let app = app(&settings).await?;
    let config = settings.core;
    #[allow(unused_mut)]
    let mut builder = Runtime::builder(config.clone()).stores(stores());
    #[cfg(feature = "filedb")]
    {
        let url = kinesis_filedb::default_connection();
        let dir = kinesis_filedb::dir_from_url(url)?;
        builder = builder.default_store(url, Some(dir.join("kinesis.key")));
    }
    #[cfg(not(feature = "filedb"))]
    {
        if config.db_connection.is_none() {
            tracing::warn!(target: LOG_TARGET, "no store built in and KINESIS_DB_CONNECTION is not set: persisted fields live in memory only (build with --features filedb)");
            builder = builder.default_store("memory://", None);
        }
    }
    #[cfg(feature = "nats")]
    if settings.events.url.is_some() {
        let events = settings.events.clone();
        builder = builder.store_layer(move |store| {
            Box::pin(async move { kinesis_events::layer(&events, store).await })
        });
    }
    #[cfg(not(feature = "nats"))]
    if settings.instance.nats_url.is_some() {
        tracing::warn!(target: LOG_TARGET, "KINESIS_EVENTS_URL is set but this binary was built without the `nats` feature: the changes of other processes are not applied");
    }
    // The metrics recorder before anything runs, so the store's start-up
    // loads are counted too.
    #[cfg(feature = "http")]
    let _ = kinesis_http::ops::metrics::recorder();
    let runtime = builder.start().await?;
    if let Err(e) =
        kinesis_cmd::demo::install_app(&app, runtime.root(), config.only.as_deref()).await
    {
        let _ = runtime.shutdown().await;
        return Err(e);
    }
    // Where this runtime is reached, for the announcement (HTTP, then gRPC).
    #[allow(unused_mut)]
    let mut urls: Vec<kinesis::Result<String>> = Vec::new();
    #[cfg(feature = "http")]
    {
        let http = match kinesis_http::serve(&runtime, &settings.http).await {
            Ok(http) => http,
            Err(e) => {
                let _ = runtime.shutdown().await;
                return Err(e);
            }
        };
        let state = http.snapshot().state.clone();
        if let Some(path) = state.unix_socket() {
            let path = path.display();
            tracing::info!(target: LOG_TARGET, addr = %format!("unix:{path}"), "HTTP add-on listening; try: curl --unix-socket {path} http://localhost/root/kinesis");
        } else {
            let addr = state.local_addr().unwrap_or(settings.http.addr);
            tracing::info!(target: LOG_TARGET, %addr, "HTTP add-on listening; try: curl http://{addr}/root/kinesis");
        }
        urls.push(settings.instance.announced_url(
            state.local_addr(),
            state.unix_socket().as_deref(),
            settings.http.tls.is_some(),
        ));
    }
    #[cfg(feature = "grpc")]
    match crate::grpc::start(&runtime, &settings.grpc).await {
        Ok(Some(url)) => urls.push(Ok(url)),
        Ok(None) => {}
        Err(e) => {
            let _ = runtime.shutdown().await;
            return Err(e);
        }
    }
    // Last, so that it is withdrawn first on shutdown.
    if let Err(e) = announce(&runtime, &settings.instance, urls).await {
        let _ = runtime.shutdown().await;
        return Err(e);
    }
    let built = built_in();
    tracing::info!(
        target: LOG_TARGET,
        addons = %if built.is_empty() { "none".to_owned() } else { built.join(",") },
        "kinesis running; press ctrl-c to stop"
    );
    let report = runtime.run_until_signal().await?;
    if report.clean {
        tracing::info!(target: LOG_TARGET, "stopped cleanly");
        Ok(ExitCode::SUCCESS)
    } else {
        let pending = report.pending.join(", ");
        tracing::error!(target: LOG_TARGET, %pending, "shutdown deadline passed");
        eprintln!(
            "kinesis: shutdown took longer than KINESIS_SHUTDOWN_TIMEOUT; still running: {pending}"
        );
        Ok(ExitCode::from(1))
    }
}
