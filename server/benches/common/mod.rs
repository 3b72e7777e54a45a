//! What the server benchmarks share: members enrolled over HTTP.

use tessera_domain::api::{API_VERSION, API_VERSION_HEADER, EnrolRequest, EnrolResponse};

/// Enrol `n` members at the server at `url`, one after another.
pub async fn enrol(http: &reqwest::Client, url: &str, n: usize) -> Vec<EnrolResponse> {
    let mut enrolled = Vec::with_capacity(n);
    for i in 0..n {
        enrolled.push(
            http.post(format!("{url}/v1/enrol"))
                .header(API_VERSION_HEADER, API_VERSION)
                .json(&EnrolRequest {
                    holder_name: format!("Bench {i}"),
                    device: tessera_domain::DeviceInfo {
                        platform: tessera_domain::api::Platform::Other,
                        app_version: "bench".into(),
                    },
                })
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap(),
        );
    }
    enrolled
}

/// Load the seed catalog into `storage` and serve it with 2 workers on a free loopback port:
/// the server, its URL and a client with room for many connections.
pub fn serve<S: tessera_server::storage::Storage + Clone>(
    storage: &S,
    rt: &tokio::runtime::Runtime,
) -> (tessera_server::RunningServer, String, reqwest::Client) {
    rt.block_on(storage.load_catalog(tessera_server::seed::catalog().unwrap()))
        .unwrap();
    let state = tessera_server::AppState::new(
        std::sync::Arc::new(storage.clone()),
        // A load generator is one client at full speed: no rate limits.
        tessera_server::ServerConfig {
            rate_limits: tessera_server::guard::RateLimits::off(),
            ..tessera_server::ServerConfig::default()
        },
    );
    let server =
        tessera_server::RunningServer::start("127.0.0.1:0".parse().unwrap(), state, 2).unwrap();
    let url = server.url();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    (server, url, http)
}
