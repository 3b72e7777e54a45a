//! A TCP proxy between the core and the server that misbehaves on purpose: it drops
//! connections, delays them, cuts answers short, and loses answers after the server has applied
//! the request. Which fault hits a connection is drawn from a seeded generator.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    /// Proxy to `upstream`; while faults are on, each request (each chunk the client sends) gets
    /// a fault with probability `fault_rate`, drawn with `seed`. Faults are drawn per request,
    /// not per connection, because the client keeps connections alive.
    pub fn start(upstream: SocketAddr, seed: u64, fault_rate: f64) -> Proxy {
        let (rt, listener) = crate::stand_in_runtime("127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let faults_on = Arc::new(AtomicBool::new(false));
        let (s, on) = (stats.clone(), faults_on.clone());
        rt.spawn(async move {
            let mut n = 0u64;
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                n += 1;
                s.connections.fetch_add(1, Ordering::Relaxed);
                let rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(n) | 1);
                tokio::spawn(handle(
                    client,
                    upstream,
                    rng,
                    fault_rate,
                    on.clone(),
                    s.clone(),
                ));
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

/// xorshift64: reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn fault(&mut self, rate: f64) -> Fault {
        let r = self.next();
        if (r % 10_000) as f64 / 10_000.0 >= rate {
            return Fault::Pass;
        }
        match (r >> 20) % 4 {
            0 => Fault::Drop,
            1 => Fault::Delay(50 + (r >> 24) % 900),
            2 => Fault::CutAnswer,
            _ => Fault::LoseAnswer,
        }
    }
}

const NO_FAULT: u8 = 0;
const CUT: u8 = 1;
const LOSE: u8 = 2;

async fn handle(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut rng: Rng,
    rate: f64,
    on: Arc<AtomicBool>,
    stats: Arc<Stats>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut cr, mut cw) = client.split();
    let (mut sr, mut sw) = server.into_split();
    // The fault waiting for the next answer from the server.
    let next_answer = std::sync::atomic::AtomicU8::new(NO_FAULT);
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match cr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let fault = if on.load(Ordering::Relaxed) {
                rng.fault(rate)
            } else {
                Fault::Pass
            };
            match fault {
                Fault::Pass => {}
                Fault::Drop => {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Fault::Delay(ms) => {
                    stats.delayed.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                Fault::CutAnswer => next_answer.store(CUT, Ordering::Relaxed),
                Fault::LoseAnswer => next_answer.store(LOSE, Ordering::Relaxed),
            }
            stats.bytes_up.fetch_add(n as u64, Ordering::Relaxed);
            if sw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = sw.shutdown().await;
        false
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = match sr.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            match next_answer.swap(NO_FAULT, Ordering::Relaxed) {
                LOSE => {
                    // The server has answered, so it has applied the request.
                    stats.lost.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                CUT => {
                    stats.cut.fetch_add(1, Ordering::Relaxed);
                    let keep = (n / 2).max(1);
                    let _ = cw.write_all(&buf[..keep]).await;
                    stats.bytes_down.fetch_add(keep as u64, Ordering::Relaxed);
                    return;
                }
                _ => {}
            }
            stats.bytes_down.fetch_add(n as u64, Ordering::Relaxed);
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    };
    // A dropped request, a lost or cut answer end the connection; a client that stops sending
    // still gets the rest of its answer.
    tokio::pin!(up);
    tokio::pin!(down);
    tokio::select! {
        _ = &mut down => {}
        dropped = &mut up => if !dropped { down.await },
    }
}
