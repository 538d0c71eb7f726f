//! A TCP proxy in front of the test SMTP server, for what a well-behaved server cannot show:
//! it counts the connections clients open (pooling), can hold connections without a word (a
//! server that accepts and never greets), and can stop passing a client's bytes on once it has
//! sent a given command (a server that stalls in the middle of a transaction).
//!
//! The behaviour applies to connections accepted after it is set; the counter counts every
//! accepted connection. Dropping the proxy closes its listener and every connection it holds.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// What the proxy does with the next connections.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// Accept and hold the connection, reading nothing and sending nothing.
    Silent,
    /// Pass bytes both ways to the server on `port`.
    Forward { port: u16 },
    /// Like `Forward`, but once the client has sent `after` (e.g. `MAIL FROM`), pass nothing more
    /// from it: the server never sees the command, and the client waits for an answer forever.
    StallAfter { port: u16, after: &'static [u8] },
}

pub struct Proxy {
    port: u16,
    accepted: Arc<AtomicUsize>,
    behaviour: Arc<Mutex<Behaviour>>,
    _tasks: JoinSet<()>,
}

impl Proxy {
    pub async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let behaviour = Arc::new(Mutex::new(behaviour));
        let mut tasks = JoinSet::new();
        let (count, current) = (accepted.clone(), behaviour.clone());
        tasks.spawn(async move {
            // Connection tasks live in this set: aborting the accept loop (dropping the proxy)
            // drops them, which closes every connection.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let behaviour = current.lock().unwrap().clone();
                connections.spawn(serve(client, behaviour));
            }
        });
        Self {
            port,
            accepted,
            behaviour,
            _tasks: tasks,
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Changes what later connections get.
    pub fn set(&self, behaviour: Behaviour) {
        *self.behaviour.lock().unwrap() = behaviour;
    }
}

async fn serve(mut client: TcpStream, behaviour: Behaviour) {
    let (port, after) = match behaviour {
        Behaviour::Silent => {
            // Hold the connection open until the client gives up (or the proxy is dropped).
            let mut sink = [0u8; 1024];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        Behaviour::Forward { port } => (port, None),
        Behaviour::StallAfter { port, after } => (port, Some(after)),
    };
    let Ok(mut server) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.split();
    let (mut server_read, mut server_write) = server.split();
    let upstream = async {
        let mut seen: Vec<u8> = Vec::new();
        let mut buf = [0u8; 8192];
        let mut stalled = false;
        loop {
            let n = match client_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if stalled {
                continue;
            }
            if let Some(needle) = after {
                seen.extend_from_slice(&buf[..n]);
                if let Some(at) = find(&seen, needle) {
                    // Pass on what came before the command, then nothing more.
                    let before = seen.len() - n;
                    let keep = at.saturating_sub(before);
                    let _ = server_write.write_all(&buf[..keep]).await;
                    stalled = true;
                    continue;
                }
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
    tokio::select! {
        () = upstream => {}
        _ = downstream => {}
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
