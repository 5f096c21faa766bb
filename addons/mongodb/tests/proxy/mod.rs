//! A TCP proxy between a store and its server that the test can cut: the
//! store sees a real network outage (connections reset, new ones refused)
//! while the server keeps its data.
#![allow(dead_code, unreachable_pub)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:port` to the upstream server while up.
pub struct Proxy {
    pub port: u16,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    listener: Option<JoinHandle<()>>,
    connections: Vec<JoinHandle<()>>,
}

impl Proxy {
    /// Starts forwarding from a free local port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Proxy { port, upstream, state: Arc::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: TcpListener) {
        let (state, upstream) = (self.state.clone(), self.upstream);
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                let task = tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
                state.lock().unwrap().connections.push(task);
            }
        });
        self.state.lock().unwrap().listener = Some(accept);
    }

    /// Drops every open connection (the peers see them closed) but keeps
    /// accepting new ones.
    pub fn reset_connections(&self) -> usize {
        let connections = std::mem::take(&mut self.state.lock().unwrap().connections);
        let n = connections.iter().filter(|c| !c.is_finished()).count();
        for c in connections {
            c.abort();
        }
        n
    }

    /// Stops listening (new connections are refused) and drops every open one.
    pub fn cut(&self) {
        if let Some(listener) = self.state.lock().unwrap().listener.take() {
            listener.abort();
        }
        self.reset_connections();
    }

    /// Listens again on the same port.
    pub async fn restore(&self) {
        // The aborted accept loop releases the port once it has stopped.
        for _ in 0..100 {
            if let Ok(listener) = TcpListener::bind(("127.0.0.1", self.port)).await {
                self.serve(listener);
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("port {} could not be bound again", self.port);
    }
}
