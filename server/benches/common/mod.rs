//! What the server benchmarks share: members enrolled over HTTP.

use tessera_core::api::{API_VERSION, API_VERSION_HEADER, EnrolRequest, EnrolResponse};

/// Enrol `n` members at the server at `url`, one after another.
pub async fn enrol(http: &reqwest::Client, url: &str, n: usize) -> Vec<EnrolResponse> {
    let mut enrolled = Vec::with_capacity(n);
    for i in 0..n {
        enrolled.push(
            http.post(format!("{url}/v1/enrol"))
                .header(API_VERSION_HEADER, API_VERSION)
                .json(&EnrolRequest {
                    holder_name: format!("Bench {i}"),
                    device: tessera_core::DeviceInfo {
                        platform: tessera_core::api::Platform::Other,
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
