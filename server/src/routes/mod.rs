//! HTTP handlers. Each is annotated with its OpenAPI description and registered with
//! `utoipa_axum::routes!`, so the served document lists exactly the served routes.

pub mod admin;
pub mod analytics;
pub mod journeys;
pub mod kpis;
pub mod loyalty;
pub mod member;
pub mod ops;
pub mod staff;
pub mod till;
pub mod wallet;
pub mod webhooks;
