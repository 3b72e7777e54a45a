//! Measures the phone side of a full sync in a process of its own: enrols at the server given,
//! syncs the whole catalog, and prints the peak resident memory (Linux `VmHWM`) before and after.
//!
//! `sync-rss SERVER_URL DB_PATH` prints `rss_before_kib=… peak_kib=… changes=… pages=…`.

use std::process::ExitCode;

use tessera_e2e::own_status_kib as status_kib;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, url, db] = args.as_slice() else {
        eprintln!("usage: sync-rss SERVER_URL DB_PATH");
        return ExitCode::from(2);
    };
    let run = || -> Result<String, Box<dyn std::error::Error>> {
        let t = tessera_core::Tessera::open(db)?;
        t.set_http_client(tessera_core::sync::ReqwestClient::shared());
        t.enrol(url, "Peak Memory", tessera_e2e::device())?;
        let before = status_kib("VmHWM:").unwrap_or(0);
        let report = t.sync()?;
        let peak = status_kib("VmHWM:").unwrap_or(0);
        Ok(format!(
            "rss_before_kib={before} peak_kib={peak} changes={} pages={}",
            report.catalog_changes, report.catalog_pages
        ))
    };
    match run() {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("sync-rss: {e}");
            ExitCode::FAILURE
        }
    }
}
