//! The push stand-in of the load scripts: `push-receiver ADDR READY-FILE`. Listens on ADDR
//! (`127.0.0.1:0`: any free port), writes its URL to READY-FILE, and answers every push 200;
//! `GET /count` says how many it accepted, and how many distinct device tokens. Runs until
//! killed.

fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let ready = args.next().expect("usage: push-receiver ADDR READY-FILE");
    let receiver = tessera_e2e::receiver::PushReceiver::start_on(&addr, Default::default());
    let partial = format!("{ready}.partial");
    std::fs::write(&partial, &receiver.url).expect("write the ready file");
    std::fs::rename(&partial, &ready).expect("write the ready file");
    loop {
        std::thread::park();
    }
}
