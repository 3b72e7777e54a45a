//! A TCP proxy between the core and the server that misbehaves on purpose: it drops
//! connections, delays them, cuts answers short, and loses answers after the server has applied
//! the request. Which fault hits a connection is drawn from a seeded generator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What happens to one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Closed at once, nothing forwarded.
    Drop,
    /// Forwarded after this many milliseconds.
    Delay(u64),
    /// The request is forwarded; only the first bytes of the answer come back, then the
    /// connection closes.
    CutAnswer,
    /// The request is forwarded and applied; the answer is thrown away and the connection
    /// closed.
    LoseAnswer,
}

/// Counts of what the proxy did.
#[derive(Debug, Default)]
pub struct Stats {
    pub connections: AtomicU64,
    pub dropped: AtomicU64,
    pub delayed: AtomicU64,
    pub cut: AtomicU64,
    pub lost: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
}

#[derive(Debug)]
pub struct Proxy {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    faults_on: Arc<AtomicBool>,
    _rt: tokio::runtime::Runtime,
}

impl Proxy {
    /// Proxy to `upstream`; while faults are on, each new connection gets a fault with
    /// probability `fault_rate`, drawn with `seed`.
    pub fn start(upstream: SocketAddr, seed: u64, fault_rate: f64) -> Proxy {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let faults_on = Arc::new(AtomicBool::new(false));
        let (s, on) = (stats.clone(), faults_on.clone());
        rt.spawn(async move {
            let mut rng = seed.max(1);
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                s.connections.fetch_add(1, Ordering::Relaxed);
                // xorshift: reproducible from the seed.
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let roll = (rng % 10_000) as f64 / 10_000.0;
                let fault = if !on.load(Ordering::Relaxed) || roll >= fault_rate {
                    Fault::Pass
                } else {
                    match rng % 4 {
                        0 => Fault::Drop,
                        1 => Fault::Delay(50 + (rng >> 8) % 900),
                        2 => Fault::CutAnswer,
                        _ => Fault::LoseAnswer,
                    }
                };
                tokio::spawn(handle(client, upstream, fault, s.clone()));
            }
        });
        Proxy {
            addr,
            stats,
            faults_on,
            _rt: rt,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_faults(&self, on: bool) {
        self.faults_on.store(on, Ordering::Relaxed);
    }
}

async fn handle(mut client: TcpStream, upstream: SocketAddr, fault: Fault, stats: Arc<Stats>) {
    match fault {
        Fault::Drop => {
            stats.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Fault::Delay(ms) => {
            stats.delayed.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        _ => {}
    }
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = {
        let (r, w) = server.into_split();
        (r, w)
    };
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    stats.bytes_up.fetch_add(n as u64, Ordering::Relaxed);
                    if sw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = sw.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        let mut first = true;
        loop {
            match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if first {
                        first = false;
                        match fault {
                            Fault::LoseAnswer => {
                                // The server has answered, so it has applied the request.
                                stats.lost.fetch_add(1, Ordering::Relaxed);
                                return;
                            }
                            Fault::CutAnswer => {
                                stats.cut.fetch_add(1, Ordering::Relaxed);
                                let keep = (n / 2).max(1);
                                let _ = cw.write_all(&buf[..keep]).await;
                                stats.bytes_down.fetch_add(keep as u64, Ordering::Relaxed);
                                return;
                            }
                            _ => {}
                        }
                    }
                    stats.bytes_down.fetch_add(n as u64, Ordering::Relaxed);
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
    };
    // A lost or cut answer ends the connection; a client that stops sending still gets the rest
    // of its answer.
    tokio::pin!(up);
    tokio::pin!(down);
    tokio::select! {
        _ = &mut down => {}
        _ = &mut up => down.await,
    }
}
