//! The console's pages, written as HTML by `maud` (every value escaped). Accessible by
//! construction: one `main` landmark and a skip link, every field with its label, errors in a
//! `role="alert"` region, focus outlines kept, colours above WCAG AA contrast, no script.

use axum::http::StatusCode;
use maud::{DOCTYPE, Markup, html};
use tessera_domain::api::{
    AnalyticsReport, Campaign, CampaignAudience, CampaignReport, ConflictOutcome, KpiReport,
    MemberScore, MemberState, RedemptionConflict, RuleVersion, StaffAction, WebhookDelivery,
    WebhookEndpoint,
};

use crate::service::staff::Session;
use crate::service::wallet::MemberPass;
use crate::storage::repo::AuditRow;
use tessera_domain::api::{MAX_STAFF_PASSWORD, MIN_STAFF_PASSWORD, StaffAccount, StaffRole};

const STYLE: &str = "
body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fff}
a{color:#0b4f9c}
a:focus,button:focus,input:focus,select:focus{outline:3px solid #b35900;outline-offset:2px}
.skip{position:absolute;left:-999px}.skip:focus{left:8px;top:8px;background:#fff;padding:4px}
header{background:#123d2f;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header a{color:#fff}header form{margin-left:auto}
main{padding:16px;max-width:960px}
table{border-collapse:collapse}th,td{border:1px solid #6b6b6b;padding:4px 8px;text-align:left}
label{display:block;margin-top:8px;font-weight:600}
input,select{font:inherit;padding:4px}
button{font:inherit;padding:4px 12px;margin-top:8px;background:#123d2f;color:#fff;border:0}
.alert{border:2px solid #a00000;color:#a00000;padding:8px}
.ok{border:2px solid #125c2a;color:#125c2a;padding:8px}
";

fn layout(title: &str, session: Option<&Session>, body: Markup) -> Markup {
    page(title, session, Head::default(), body)
}

/// What a page's head holds besides its title and style.
#[derive(Default)]
struct Head {
    /// A script of the console's own (its path); the page's answer must allow it (`super::
    /// with_script`).
    script: Option<&'static str>,
}

fn page(title: &str, session: Option<&Session>, head: Head, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(src) = head.script { script src=(src) defer {} }
                title { (title) " · Tessera console" }
                style { (STYLE) }
            }
            body {
                a.skip href="#main" { "Skip to the content" }
                header {
                    strong { "Tessera console" }
                    @if let Some(s) = session {
                        nav aria-label="Console" {
                            a href="/console" { "Home" } " "
                            @if s.role.may(StaffAction::ViewKpis) {
                                a href="/console/kpis" { "KPIs" } " "
                            }
                            @if s.role.may(StaffAction::Analytics) {
                                a href="/console/analytics" { "Analytics" } " "
                            }
                            @if s.role.may(StaffAction::Campaigns) {
                                a href="/console/campaigns" { "Campaigns" } " "
                                a href="/console/journeys" { "Journeys" } " "
                            }
                            @if s.role.may(StaffAction::Rules) {
                                a href="/console/rules" { "Rules" } " "
                                a href="/console/loyalty" { "Points and tiers" } " "
                            }
                            @if s.role.may(StaffAction::LookupMember) {
                                a href="/console/members" { "Members" } " "
                            }
                            @if s.role.may(StaffAction::ResolveConflicts) {
                                a href="/console/conflicts" { "Conflicts" } " "
                            }
                            @if s.role.may(StaffAction::Webhooks) {
                                a href="/console/webhooks" { "Webhooks" } " "
                            }
                            @if s.role.may(StaffAction::ViewAudit) {
                                a href="/console/audit" { "Audit log" } " "
                            }
                            @if s.role.may(StaffAction::ManageStaff) {
                                a href="/console/staff" { "Staff" } " "
                            }
                            a href="/console/password" { "Password" } " "
                            a href="/console/two-factor" { "Two-factor" }
                        }
                        form method="post" action="/console/sign-out" {
                            input type="hidden" name="csrf" value=(s.csrf);
                            span { (s.name) " (" (s.role.as_str()) ") " }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main { h1 { (title) } (body) }
            }
        }
    }
}

/// A page saying what went wrong.
pub fn message(status: StatusCode, text: &str) -> Markup {
    layout(
        status.canonical_reason().unwrap_or("Error"),
        None,
        html! {
            p.alert role="alert" { (text) }
            p { a href="/console" { "Back to the console" } }
        },
    )
}

pub fn sign_in(error: Option<&str>) -> Markup {
    layout(
        "Sign in",
        None,
        html! {
            @if let Some(e) = error { p.alert role="alert" { (e) } }
            form method="post" action="/console/sign-in" {
                label for="email" { "E-mail address" }
                input #email type="email" name="email" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                label for="code" { "Code from your authenticator app (if you turned two-factor sign-in on)" }
                input #code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10";
                div { button type="submit" { "Sign in" } }
            }
        },
    )
}

pub fn home(s: &Session) -> Markup {
    layout(
        "Home",
        Some(s),
        html! {
            p { "Signed in as " (s.email) ", " (s.role.as_str())
                @if let Some(shop) = &s.store_id { " at " (shop) } "." }
            ul {
                @if s.role.may(StaffAction::ViewKpis) {
                    li { a href="/console/kpis" { "KPIs" } ": receipts, revenue, points, coupons, live" }
                }
                @if s.role.may(StaffAction::Analytics) {
                    li { a href="/console/analytics" { "Analytics" } ": RFM, segments, retention, CLV, cohorts, churn risk" }
                }
                @if s.role.may(StaffAction::Campaigns) {
                    li { a href="/console/campaigns" { "Campaigns" } ": an audience counted within consent, sent now or later" }
                }
                @if s.role.may(StaffAction::Campaigns) {
                    li { a href="/console/journeys" { "Journeys" } ": welcome, birthday, points expiring, tier dropping, lapsed" }
                }
                @if s.role.may(StaffAction::Rules) {
                    li { a href="/console/rules" { "Rules" } ": challenges and earning, tried on a member before they are published; versions" }
                    li { a href="/console/loyalty" { "Points and tiers" } ": points per euro, validity, tiers; versions" }
                }
                @if s.role.may(StaffAction::LookupMember) {
                    li { a href="/console/members" { "Find a member" } " by card number or id" }
                }
                @if s.role.may(StaffAction::Webhooks) {
                    li { a href="/console/webhooks" { "Webhooks" } ": endpoints and the dead-letter list" }
                }
                @if s.role.may(StaffAction::ViewAudit) {
                    li { a href="/console/audit" { "Audit log" } }
                }
                @if s.role.may(StaffAction::ManageStaff) {
                    li { a href="/console/staff" { "Staff" } ": accounts created, disabled, given a new password" }
                }
                li { a href="/console/password" { "Change your password" } }
                li { a href="/console/two-factor" { "Two-factor sign-in" } ": a code from an authenticator app at each sign-in" }
            }
        },
    )
}

/// What the member page shows of a member.
pub struct MemberView {
    pub state: MemberState,
    /// Their scores in the latest analysis, if it counted them.
    pub score: Option<MemberScore>,
    pub passes: Vec<MemberPass>,
}

/// The member lookup: the form, and the member found (`Some(None)`: no one).
/// What a lookup came to.
pub enum Found<'a> {
    /// Nothing asked yet.
    Nothing,
    /// No member has this card number or id (or the code's card).
    Nobody,
    /// A member code was scanned and refused (stale, revoked, forged…).
    Refused(&'a tessera_domain::member_code::MemberCodeError),
    Member(&'a MemberView),
}

pub fn lookup(s: &Session, query: &str, found: Found<'_>, done: Option<&str>) -> Markup {
    layout(
        "Members",
        Some(s),
        html! {
            form method="get" action="/console/members" role="search" {
                label for="q" { "Card number or member id" }
                input #q type="search" name="q" value=(query) required
                    aria-describedby="q-hint" autocomplete="off";
                button type="submit" { "Find" }
                p #q-hint { "Or scan the card, or the code the member's app shows." }
            }
            @match done {
                Some("points") => { p.ok role="status" { "Points corrected." } }
                Some("consent") => { p.ok role="status" { "Consent recorded." } }
                Some("erased") => { p.ok role="status" { "The member was erased." } }
                _ => {}
            }
            @match found {
                Found::Nothing => {}
                Found::Nobody => { p.alert role="alert" { "No member has this card number or id." } }
                Found::Refused(why) => {
                    p.alert role="alert" #code-refused data-reason=(why.reason()) {
                        "This member code was refused: " (why) ". Ask the member to show the code "
                        "their app shows now, or type the card number."
                    }
                }
                Found::Member(m) => { (member(s, m)) }
            }
        },
    )
}

fn member(s: &Session, view: &MemberView) -> Markup {
    let m = &view.state;
    let score = view.score.as_ref();
    html! {
        section aria-labelledby="member" {
            h2 #member { (m.holder_name) }
            dl {
                dt { "Card number" } dd #card { (m.card_number) }
                dt { "Member id" } dd { (m.member_id) }
                dt { "Tier" } dd #tier { (m.tier) }
                dt { "Points" } dd #balance { (m.points.balance) }
                @if let Some(sc) = score {
                    dt { "RFM (latest analysis)" }
                    dd #rfm { (sc.rfm_class.as_str().replace('_', " ")) " (R" (sc.r) " F" (sc.f) " M" (sc.m) ")" }
                    dt { "Segments" }
                    dd #segments { @if sc.segments.is_empty() { "none" } @else { (sc.segments.join(", ")) } }
                    dt { "Churn risk" } dd #churn-risk { (percent(sc.churn_risk)) }
                }
            }
            @if s.role.may(StaffAction::CorrectPoints) {
                h3 { "Correct points" }
                form method="post" action={ "/console/members/" (m.member_id) "/points" } {
                    input type="hidden" name="csrf" value=(s.csrf);
                    label for="points" { "Points (negative to take away)" }
                    input #points type="number" name="points" required;
                    label for="reason" { "Reason" }
                    input #reason type="text" name="reason" maxlength="200" required;
                    div { button type="submit" { "Correct points" } }
                }
            }
            @if s.role.may(StaffAction::RecordConsent) {
                h3 { "Consent given at the counter" }
                p #counter-text { "Read out: “" (super::COUNTER_TEXT) "”" }
                form method="post" action={ "/console/members/" (m.member_id) "/consent" } {
                    input type="hidden" name="csrf" value=(s.csrf);
                    label for="purpose" { "Purpose" }
                    select #purpose name="purpose" required {
                        @for p in tessera_domain::consent::Purpose::ALL {
                            option value=(p.as_str()) { (p.as_str().replace('_', " ")) }
                        }
                    }
                    label for="channel" { "Channel" }
                    select #channel name="channel" required {
                        @for c in ["push", "email", "sms", "in_app", "location"] {
                            option value=(c) { (c.replace('_', " ")) }
                        }
                    }
                    fieldset {
                        legend { "Decision" }
                        label { input type="radio" name="decision" value="granted" required; " Granted" }
                        label { input type="radio" name="decision" value="denied"; " Denied" }
                    }
                    div { button type="submit" { "Record consent" } }
                }
            }
            @if s.role.may(StaffAction::ExportMember) {
                p { a href={ "/console/members/" (m.member_id) "/export" } download { "Download everything held about this member (JSON)" } }
            }
            @if s.role.may(StaffAction::EraseMember) {
                h3 { "Erase this member" }
                form method="post" action={ "/console/members/" (m.member_id) "/erase" } {
                    input type="hidden" name="csrf" value=(s.csrf);
                    label for="confirm" { "Type the card number to confirm (cannot be undone)" }
                    input #confirm type="text" name="confirm" autocomplete="off" required;
                    div { button type="submit" { "Erase the member" } }
                }
            }
            h3 { "Points history" }
            table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Kind" } th scope="col" { "Points" } th scope="col" { "Reason" } } }
                tbody {
                    @for e in &m.points.ledger {
                        tr { td { (e.at) } td { (e.kind.as_str()) } td { (e.points) } td { (e.reason) } }
                    }
                }
            }
            h3 { "Coupons" }
            table #coupons {
                thead { tr { th scope="col" { "Offer" } th scope="col" { "State" } th scope="col" { "Expires" } } }
                tbody {
                    @for c in &m.wallet {
                        tr { td { (c.offer_id) } td { (format!("{:?}", c.state)) } td { (c.expires_at) } }
                    }
                }
            }
            h3 { "Wallet passes" }
            @if view.passes.is_empty() {
                p #no-passes { "None: the member has not added their card or a coupon to a wallet." }
            } @else {
                table #passes {
                    thead { tr {
                        th scope="col" { "Pass" } th scope="col" { "Apple Wallet devices" }
                        th scope="col" { "Google Wallet" } th scope="col" { "Content changed" }
                        th scope="col" { "Wallets told" }
                    } }
                    tbody {
                        @for p in &view.passes {
                            tr {
                                td { @match &p.coupon_id { None => { "Card" }, Some(c) => { "Coupon " (c) } } }
                                td { (p.devices) }
                                td { @if p.google { "offered" } @else { "no" } }
                                td { (tessera_domain::rfc3339_ms(p.updated_ms)) }
                                td { @if p.up_to_date { "yes" } @else { "update pending" } }
                            }
                        }
                    }
                }
            }
            h3 { "Challenges" }
            @if let Some(tp) = &m.tier_progress {
                p #tier-progress {
                    "Tier " (tp.tier) ": " (tp.qualifying_points) " qualifying points"
                    @if let Some(next) = &tp.next_tier { ", " (tp.points_to_next) " to " (next) }
                    @if tp.points_to_keep > 0 { "; " (tp.points_to_keep) " more to keep it at the review on " (tp.review_at) }
                    "."
                }
            }
            @if m.challenges.is_empty() {
                p #no-challenges { "No challenge in force." }
            } @else {
                table #challenges {
                    caption { "As the server counts them" @if let Some(at) = &m.challenges_as_of { ", " (at) } }
                    thead { tr {
                        th scope="col" { "Challenge" } th scope="col" { "Joined" }
                        th scope="col" { "Progress" } th scope="col" { "Completions" }
                        th scope="col" { "Window ends" }
                    } }
                    tbody {
                        @for c in &m.challenges {
                            tr {
                                td { (c.title) }
                                td { @if !c.joined { "not joined" } @else { @match m.joined_challenges.iter().find(|j| j.challenge_id == c.challenge_id) {
                                    Some(j) => { (tessera_domain::rfc3339_ms(j.joined_at_ms)) },
                                    None => { "open to all" },
                                } } }
                                td { (c.done) " of " (c.target) @if c.completed { " (completed)" } }
                                td { (c.completions) }
                                td { (c.deadline.as_deref().unwrap_or("rolling")) }
                            }
                        }
                    }
                }
            }
            @if !m.badges.is_empty() {
                h3 { "Badges" }
                ul #badges {
                    @for b in &m.badges { li { (b.title) " (" (b.badge) "), " (b.earned_at) } }
                }
            }
            h3 { "Consent record" }
            table {
                thead { tr { th scope="col" { "Purpose" } th scope="col" { "Channel" } th scope="col" { "Decision" } th scope="col" { "Source" } th scope="col" { "Effective" } } }
                tbody {
                    @for c in &m.consents {
                        tr {
                            td { (format!("{:?}", c.purpose)) } td { (format!("{:?}", c.channel)) }
                            td { (format!("{:?}", c.decision)) } td { (c.source.as_str()) }
                            td { (c.effective_at) }
                        }
                    }
                }
            }
        }
    }
}

pub fn webhooks(
    s: &Session,
    endpoints: &[WebhookEndpoint],
    dead: &[(String, Vec<WebhookDelivery>)],
) -> Markup {
    layout(
        "Webhooks",
        Some(s),
        html! {
            table {
                thead { tr { th scope="col" { "Endpoint" } th scope="col" { "URL" } th scope="col" { "Pending" } th scope="col" { "Dead" } th scope="col" { "Paused" } } }
                tbody {
                    @for e in endpoints {
                        tr { td { (e.id) } td { (e.url) } td { (e.pending) } td { (e.dead) } td { @if e.paused { "yes" } @else { "no" } } }
                    }
                }
            }
            @for (id, list) in dead {
                section aria-labelledby={ "dead-" (id) } {
                    h2 id={ "dead-" (id) } { "Dead deliveries to " (id) }
                    table {
                        thead { tr { th scope="col" { "Event" } th scope="col" { "Type" } th scope="col" { "Member" } th scope="col" { "Attempts" } th scope="col" { "Last error" } } }
                        tbody {
                            @for d in list {
                                tr {
                                    td { (d.event.id) } td { (d.event.data.event_type().as_str()) }
                                    td { (d.event.member_id) } td { (d.attempts) }
                                    td { (d.last_error.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                    form method="post" action={ "/console/webhooks/" (id) "/replay" } {
                        input type="hidden" name="csrf" value=(s.csrf);
                        button type="submit" { "Replay the dead deliveries to " (id) }
                    }
                }
            }
        },
    )
}

/// `n` and the word for it (`1 member`, `2 members`).
fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn cents(c: i64) -> String {
    let sign = if c < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", (c / 100).abs(), (c % 100).abs())
}

fn percent(r: Option<f64>) -> String {
    r.map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

fn ratio(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"))
}

/// How often the KPI page's script reads the figures again.
pub const KPI_EVERY_S: u32 = 15;

/// The KPIs: the period's form, the totals, each day, the coupon funnel, read at `as_of` (the
/// server's clock, RFC 3339). The figures move as tills and phones report: the page's script
/// (`kpis-live.js`) reads the page again every [`KPI_EVERY_S`] and swaps the `data-live`
/// tables in place, with a button that pauses it; without it, a link reads them again.
/// `frequency`: the latest analysis' day, and members' visits per active member over the 30
/// and 90 days before it.
pub fn kpis(
    s: &Session,
    r: &KpiReport,
    frequency: Option<(String, Option<f64>, Option<f64>)>,
    as_of: &str,
) -> Markup {
    let query = format!(
        "from={}&to={}&shop={}",
        r.from,
        r.to,
        r.shop.as_deref().unwrap_or("")
    );
    let t = &r.totals;
    let basket = |c: Option<i64>| c.map_or_else(|| "—".to_owned(), cents);
    page(
        "KPIs",
        Some(s),
        Head {
            script: Some(super::KPI_SCRIPT_PATH),
        },
        html! {
            form method="get" action="/console/kpis" {
                label for="from" { "From" }
                input #from type="date" name="from" value=(r.from);
                label for="to" { "To" }
                input #to type="date" name="to" value=(r.to);
                @if s.store_id.is_none() {
                    label for="shop" { "Shop (empty: every shop)" }
                    input #shop type="text" name="shop" value=(r.shop.as_deref().unwrap_or(""));
                }
                div { button type="submit" { "Show" } }
            }
            p { a href={ "/console/kpis.csv?" (query) } { "Download the days as CSV" } }
            p #live data-every=(KPI_EVERY_S) {
                "Figures as of " time #as-of datetime=(as_of) { (as_of.get(11..19).unwrap_or(as_of)) " UTC" } ". "
                a href={ "/console/kpis?" (query) } { "Read them again" }
                " "
                button #pause type="button" aria-pressed="false" hidden {
                    "Pause live updates (every " (KPI_EVERY_S) " s)"
                }
            }
            p #live-stopped .alert role="alert" hidden {}
            h2 { "Totals" @if let Some(shop) = &r.shop { " at " (shop) } }
            table #totals data-live {
                tbody {
                    tr { th scope="row" { "Enrolments" } td #enrolments { (t.enrolments) } }
                    tr { th scope="row" { "Receipts" } td #receipts { (t.receipts) } }
                    tr { th scope="row" { "Receipts with a card" } td #member-receipts { (t.member_receipts) } }
                    tr { th scope="row" { "Revenue" } td #revenue { (cents(t.revenue_cents)) } }
                    tr { th scope="row" { "Card holders' share of revenue" } td #share { (percent(r.member_revenue_share)) } }
                    tr { th scope="row" { "Average basket: all, members" } td {
                        (basket(r.average_basket_cents)) ", " (basket(r.member_average_basket_cents)) } }
                    tr { th scope="row" { "Points earned, bonus, spent, lapsed" } td #points {
                        (t.points_earned) ", " (t.points_bonus) ", " (t.points_spent) ", " (t.points_expired) } }
                    tr { th scope="row" { "Points liability (end of period)" } td #liability { (r.points_liability) } }
                    tr { th scope="row" { "Breakage" } td { (percent(r.breakage_rate)) } }
                    tr { th scope="row" { "Challenges joined, completed" } td { (t.challenge_joins) ", " (t.challenge_completions) } }
                    tr { th scope="row" { "Redemptions web-to-store, store-to-web" } td #crossings { (t.web_to_store) ", " (t.store_to_web) } }
                    tr { th scope="row" { "Pushes sent (campaigns and journeys), opened" } td #pushes {
                        (t.pushes_sent) ", " (t.pushes_opened) " (" (percent(r.push_open_rate)) ")" } }
                    tr { th scope="row" { "Members (end of period)" } td #members { (r.members) } }
                    @if let Some((as_of, f30, f90)) = &frequency {
                        tr { th scope="row" { "Members' visits per active member, 30 and 90 days before " (as_of) " (latest analysis)" }
                            td #visit-frequency { (ratio(*f30)) ", " (ratio(*f90)) } }
                    }
                }
            }
            h2 { "Consent (end of period)" }
            table #consent-opt-in data-live {
                thead { tr { th scope="col" { "Purpose" } th scope="col" { "Channel" } th scope="col" { "Members who consented" } th scope="col" { "Opt-in rate" } } }
                tbody {
                    @for c in &r.consent_opt_in {
                        tr { td { (c.purpose) } td { (c.channel) } td { (c.members) } td { (percent(c.rate)) } }
                    }
                }
            }
            h2 { "Coupons" }
            table #coupons data-live {
                thead { tr { th scope="col" { "Offer" } th scope="col" { "Issued" } th scope="col" { "Clipped" } th scope="col" { "Redeemed" } } }
                tbody {
                    @for c in &r.coupons {
                        tr { td { (c.offer_id) } td { (c.issued) } td { (c.clipped) } td { (c.redeemed) } }
                    }
                }
            }
            h2 { "By day" }
            table #days data-live {
                thead { tr {
                    th scope="col" { "Day" } th scope="col" { "Enrolments" } th scope="col" { "Receipts" }
                    th scope="col" { "Revenue" } th scope="col" { "Points earned" } th scope="col" { "Points spent" }
                } }
                tbody {
                    @for d in r.days.iter().rev() {
                        tr { td { (d.day) } td { (d.enrolments) } td { (d.receipts) } td { (cents(d.revenue_cents)) } td { (d.points_earned) } td { (d.points_spent) } }
                    }
                }
            }
        },
    )
}

/// The latest analysis (or that there is none yet), with the form that asks for a run.
pub fn analytics(s: &Session, r: Option<&AnalyticsReport>, done: Option<&str>) -> Markup {
    let money = |c: f64| cents(c.round() as i64);
    layout(
        "Analytics",
        Some(s),
        html! {
            @if done == Some("queued") { p.ok role="status" { "A run was asked for: reload in a moment." } }
            form method="post" action="/console/analytics/run" {
                input type="hidden" name="csrf" value=(s.csrf);
                button type="submit" { "Run the analysis now" }
            }
            @match r {
                None => { p #no-analysis { "No analysis has ended yet. One runs every day." } }
                Some(r) => {
                    p #as-of { "Purchases before " (r.as_of) ", computed " (r.computed_at) "." }
                    table #overview {
                        tbody {
                            tr { th scope="row" { "Members" } td #members { (r.members) } }
                            tr { th scope="row" { "Members who ever bought" } td #buyers { (r.buyers) } }
                            tr { th scope="row" { "Active in the last 30 days" } td #active-30 { (r.active_30) } }
                            tr { th scope="row" { "Active in the last 90 days" } td #active-90 { (r.active_90) } }
                            tr { th scope="row" { "Visits per active member, last 30 and 90 days" } td #visits {
                                (ratio((r.active_30 > 0).then(|| r.visits_30 as f64 / r.active_30 as f64))) ", "
                                (ratio((r.active_90 > 0).then(|| r.visits_90 as f64 / r.active_90 as f64))) } }
                        }
                    }
                    h2 { "Segments" }
                    table #segments {
                        thead { tr { th scope="col" { "Segment" } th scope="col" { "Members" } } }
                        tbody { @for seg in &r.segments { tr { td { (seg.name) } td { (seg.members) } } } }
                    }
                    h2 { "RFM classes" }
                    table #rfm {
                        thead { tr { th scope="col" { "Class" } th scope="col" { "Members" } th scope="col" { "Spend in the window" } } }
                        tbody { @for c in &r.rfm {
                            tr { td { (c.class.as_str().replace('_', " ")) } td { (c.members) } td { (cents(c.spend_cents)) } }
                        } }
                    }
                    h2 { "Customer lifetime value" }
                    table #clv {
                        tbody {
                            tr { th scope="row" { "Average basket" } td { (money(r.clv.average_basket_cents)) } }
                            tr { th scope="row" { "Purchases a year per buying member" } td { (format!("{:.2}", r.clv.purchases_per_year)) } }
                            tr { th scope="row" { "Annual retention" } td { (percent(r.clv.annual_retention)) } }
                            tr { th scope="row" { "Relationship length (years)" } td { (format!("{:.2}", r.clv.lifespan_years)) } }
                            tr { th scope="row" { "CLV" } td #clv-value { (money(r.clv.clv_cents)) } }
                            tr { th scope="row" { "CLV at " (r.clv.margin_percent) " % margin, net of points" } td #margin-clv { (money(r.clv.margin_clv_cents)) } }
                        }
                    }
                    h2 { "Retention by month" }
                    table #retention {
                        thead { tr { th scope="col" { "Month" } th scope="col" { "Active at the start" } th scope="col" { "Active at the end" } th scope="col" { "New" } th scope="col" { "Retention" } } }
                        tbody { @for m in &r.retention {
                            tr { td { (m.month) } td { (m.at_start) } td { (m.at_end) } td { (m.new) } td { (percent(m.rate)) } }
                        } }
                    }
                    h2 { "Cohorts by month of enrolment" }
                    p { "Share of each month's new members who bought in the months that followed (0: the month they enrolled)." }
                    table #cohorts {
                        thead { tr { th scope="col" { "Enrolled" } th scope="col" { "Members" }
                            @for k in 0..12 { th scope="col" { "+" (k) } } } }
                        tbody { @for c in &r.cohorts {
                            tr { td { (c.month) } td { (c.members) }
                                @for a in &c.active { td { (percent(Some(*a))) } } }
                        } }
                    }
                    h2 { "Churn model" }
                    @match &r.churn {
                        None => { p #churn-note { (r.churn_note.as_deref().unwrap_or("No model.")) } }
                        Some(c) => {
                            p { "Churn: no purchase in " (c.horizon_days) " days. Trained as of " (c.trained_on)
                                " on " (c.training_members) " members in " (c.training_ms) " ms; tested as of "
                                (c.tested_on) " on " (c.test_members) " members (" (percent(Some(c.test_churn_rate))) " churned)." }
                            table #churn {
                                tbody {
                                    tr { th scope="row" { "AUC of the model" } td #auc { (format!("{:.3}", c.auc)) } }
                                    tr { th scope="row" { "AUC of recency alone" } td #recency-auc { (format!("{:.3}", c.recency_auc)) } }
                                }
                            }
                            h3 { "Weights (standardised features; positive: more risk)" }
                            table {
                                tbody { @for w in &c.weights { tr { td { (w.feature) } td { (format!("{:+.3}", w.weight)) } } } }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// The audience builder (its count within consent), the form that sends a campaign to it, and
/// the latest campaigns.
pub fn campaigns(
    s: &Session,
    choices: &[String],
    audience: &CampaignAudience,
    reach: Option<Result<super::campaigns::Reach, String>>,
    list: &[(Campaign, CampaignReport)],
    done: &str,
) -> Markup {
    // The audience as counted; the page's script keeps these in step with the builder.
    let hidden = html! {
        div #audience-fields {
            @for seg in &audience.analytics_segments { input type="hidden" name="segment" value=(seg); }
            input type="hidden" name="tiers" value=(audience.tiers.join(", "));
            input type="hidden" name="interests" value=(audience.categories.join(", "));
            input type="hidden" name="shops" value=(audience.shops.join(", "));
        }
    };
    let describe = |a: &CampaignAudience| {
        let mut parts = vec![];
        if !a.analytics_segments.is_empty() {
            parts.push(format!("segments {}", a.analytics_segments.join(", ")));
        }
        if !a.tiers.is_empty() {
            parts.push(format!("tiers {}", a.tiers.join(", ")));
        }
        if !a.categories.is_empty() {
            parts.push(format!("interests {}", a.categories.join(", ")));
        }
        if !a.shops.is_empty() {
            parts.push(format!("shops {}", a.shops.join(", ")));
        }
        if parts.is_empty() {
            "everyone".to_owned()
        } else {
            parts.join("; ")
        }
    };
    page(
        "Campaigns",
        Some(s),
        Head {
            script: Some(super::campaigns::SCRIPT_PATH),
        },
        html! {
            @if done == "queued" { p.ok role="status" { "The campaign is queued: it is sent by the job queue." } }
            h2 { "Audience" }
            form #audience method="get" action="/console/campaigns" {
                fieldset {
                    legend { "Segments of the latest analysis (any of them; none ticked: everyone)" }
                    @for (i, c) in choices.iter().enumerate() {
                        label for={ "seg-" (i) } {
                            input id={ "seg-" (i) } type="checkbox" name="segment" value=(c)
                                checked[audience.analytics_segments.contains(c)];
                            " " (c.replace("rfm:", "RFM: ").replace('_', " "))
                        }
                    }
                }
                label for="tiers" { "Tiers (comma-separated; empty: every tier)" }
                input #tiers type="text" name="tiers" value=(audience.tiers.join(", "));
                label for="interests" { "Interests (comma-separated; empty: any)" }
                input #interests type="text" name="interests" value=(audience.categories.join(", "));
                label for="shops" { "Shops: members who chose one as a favourite or bought in one (ids, comma-separated; empty: any)" }
                input #shops type="text" name="shops" value=(audience.shops.join(", "));
                div { button type="submit" name="count" value="1" { "Count the audience" } }
            }
            // Counted again as the audience changes (audience-count.js), or by the button.
            p #reach aria-live="polite" class=[match &reach { Some(Err(_)) => Some("alert"), _ => None }] {
                @match &reach {
                    Some(Ok(c)) => {
                        strong { (plural(c.members, "member", "members")) } " can be reached ("
                        (plural(c.devices, "device", "devices")) "; " (c.without_device)
                        " without a device). Only members who consented to offers by push are counted."
                    }
                    Some(Err(why)) => { (why) }
                    None => {}
                }
            }
            // Shown once the audience is counted (by the button, or by the script).
            section #send aria-labelledby="send-title" hidden[!matches!(reach, Some(Ok(_)))] {
                h2 #send-title { "Send a push campaign to this audience" }
                form method="post" action="/console/campaigns" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    (hidden)
                    label for="campaign-id" { "Campaign id (letters, digits, - and _)" }
                    input #campaign-id type="text" name="id" required pattern="[A-Za-z0-9_-]{1,64}";
                    label for="offer" { "Offer id (from the catalog)" }
                    input #offer type="text" name="offer" required;
                    label for="title" { "Title" }
                    input #title type="text" name="title" maxlength="200";
                    label for="body" { "Message" }
                    input #body type="text" name="body" maxlength="1000";
                    label for="expires" { "Not shown after (UTC)" }
                    input #expires type="date" name="expires" required;
                    label for="send-at" { "Send at (UTC; empty: now)" }
                    input #send-at type="datetime-local" name="send_at";
                    div { button type="submit" { "Send the campaign" } }
                }
            }
            h2 { "Latest campaigns" }
            table #campaigns {
                thead { tr {
                    th scope="col" { "Campaign" } th scope="col" { "Audience" } th scope="col" { "Send at" }
                    th scope="col" { "State" } th scope="col" { "Members" } th scope="col" { "Sent" } th scope="col" { "Failed" }
                } }
                tbody {
                    @for (c, r) in list {
                        tr {
                            td { (c.id) @if let Some(t) = &c.title { ": " (t) } }
                            td { (describe(&c.audience)) }
                            td { (c.send_at.as_deref().unwrap_or("at once")) }
                            td { (r.state.as_str()) } td { (r.members) } td { (r.sent) } td { (r.failed) }
                        }
                    }
                }
            }
        },
    )
}

/// The rule set's editor: checks, a dry run on a member, publishing, and the versions.
pub fn rules(
    s: &Session,
    text: &str,
    member: &str,
    versions: &[RuleVersion],
    o: &super::rules::Outcome,
) -> Markup {
    page(
        "Rules",
        Some(s),
        Head {
            script: Some(super::rules::SCRIPT_PATH),
        },
        html! {
            @match o.done.as_deref() {
                Some("published") => { p.ok role="status" { "Published: in force now, and sent to phones with the catalog." } }
                Some("restored") => { p.ok role="status" { "The version was published again." } }
                _ => {}
            }
            @if let Some(e) = &o.error { p.alert role="alert" #rules-error { (e) } }
            @if o.valid && o.error.is_none() && o.dry_run.is_none() { p.ok role="status" { "The rule set passes every check." } }
            p { "The challenges and earning rules, as JSON (docs/rules.md). Check them, try them on a member's history, then publish." }
            form #rules-form method="post" action="/console/rules" {
                input type="hidden" name="csrf" value=(s.csrf);
                label for="rules-text" { "Rule set" }
                textarea #rules-text name="rules" rows="24" cols="90" spellcheck="false" aria-describedby="rules-live" { (text) }
                // Filled as the text is typed (rules-check.js, the server's checks).
                p #rules-live aria-live="polite" {}
                label for="dry-member" { "Member to try them on (card number or id)" }
                input #dry-member type="text" name="member" value=(member);
                label for="note" { "Note for the version (what changed)" }
                input #note type="text" name="note" maxlength="200";
                div {
                    button type="submit" name="action" value="check" { "Check" } " "
                    button type="submit" name="action" value="dry-run" { "Try on the member" } " "
                    button type="submit" name="action" value="publish" { "Publish" }
                }
            }
            @if let Some(run) = &o.dry_run {
                h2 { "Dry run for " (run.member_id) }
                p #dry-summary role="status" { "Points from purchases: " (run.points_in_force) " in force, "
                    strong { (run.points_with_rules) " with these rules" } "; from challenges: "
                    (run.reward_points_in_force) " in force, " strong { (run.reward_points_with_rules) " with these rules" } "." }
                table #dry-purchases {
                    thead { tr { th scope="col" { "Purchase" } th scope="col" { "When" } th scope="col" { "Amount" }
                        th scope="col" { "Points in force" } th scope="col" { "With these rules" } } }
                    tbody { @for p in &run.purchases {
                        tr { td { (p.event_id) } td { (p.at) } td { (cents(p.amount_cents as i64)) }
                            td { (p.points_in_force) } td { (p.points_with_rules) } }
                    } }
                }
                table #dry-challenges {
                    thead { tr { th scope="col" { "Challenge" } th scope="col" { "Completions in force" }
                        th scope="col" { "With these rules" } th scope="col" { "Reward points with these rules" } } }
                    tbody { @for c in &run.challenges {
                        tr { td { (c.title) " (" (c.challenge_id) ")" } td { (c.completions_in_force) }
                            td { (c.completions_with_rules) } td { (c.reward_points_with_rules) } }
                    } }
                }
            }
            (versions_table(s, versions, "/console/rules"))
        },
    )
}

/// The versions of a set of rules, newest (in force) first, each earlier one with the button
/// that restores it (`{base}/versions/{version}/restore`).
fn versions_table(s: &Session, versions: &[RuleVersion], base: &str) -> Markup {
    html! {
        h2 { "Versions" }
        table #versions {
            thead { tr { th scope="col" { "Version" } th scope="col" { "Published" } th scope="col" { "By" }
                th scope="col" { "Note" } th scope="col" { "Restore" } } }
            tbody { @for (i, v) in versions.iter().enumerate() {
                tr {
                    td { (v.version) } td { (v.published_at) } td { (v.published_by) } td { (v.note) }
                    td { @if i == 0 { "in force" } @else {
                        form method="post" action={ (base) "/versions/" (v.version) "/restore" } {
                            input type="hidden" name="csrf" value=(s.csrf);
                            button type="submit" { "Restore version " (v.version) }
                        }
                    } }
                }
            } }
        }
    }
}

/// The loyalty rules as JSON, checked and published as a version; the versions.
pub fn loyalty(
    s: &Session,
    text: &str,
    versions: &[RuleVersion],
    error: Option<&str>,
    done: Option<&str>,
) -> Markup {
    layout(
        "Points and tiers",
        Some(s),
        html! {
            @match done {
                Some("published") => { p.ok role="status" { "Published: in force now (tiers are reviewed at each member's next change)." } }
                Some("restored") => { p.ok role="status" { "The version was published again." } }
                Some("checked") => { p.ok role="status" { "These rules pass every check." } }
                _ => {}
            }
            @if let Some(e) = error { p.alert role="alert" #loyalty-error { (e) } }
            p { "Points per euro, how long points last, the tiers and their multipliers, the void window and the web coupon, as JSON (docs/console.md)." }
            form method="post" action="/console/loyalty" {
                input type="hidden" name="csrf" value=(s.csrf);
                label for="loyalty-text" { "Points and tier rules" }
                textarea #loyalty-text name="rules" rows="24" cols="90" spellcheck="false" { (text) }
                label for="loyalty-note" { "Note for the version (what changed)" }
                input #loyalty-note type="text" name="note" maxlength="200";
                div {
                    button type="submit" name="action" value="check" { "Check" } " "
                    button type="submit" name="action" value="publish" { "Publish" }
                }
            }
            (versions_table(s, versions, "/console/loyalty"))
        },
    )
}

/// Journeys: what became of each one's entries, the settings as JSON, a run now.
pub fn journeys(
    s: &Session,
    text: &str,
    report: &tessera_domain::journeys::JourneyReport,
    error: Option<&str>,
    done: Option<&str>,
) -> Markup {
    layout(
        "Journeys",
        Some(s),
        html! {
            @match done {
                Some("saved") => { p.ok role="status" { "Saved: the next run (every hour, or now) uses them." } }
                Some("run") => { p.ok role="status" { "A run is queued: the figures below move as it sends." } }
                _ => {}
            }
            @if let Some(e) = error { p.alert role="alert" #journeys-error { (e) } }
            p { "A push to a member when something happens to them, once per occurrence, within their consent, quiet hours and caps, a cooldown per journey and the programme's cap per week (docs/journeys.md)." }
            h2 { "The last 30 days" }
            table #journey-report {
                thead { tr { th scope="col" { "Journey" } th scope="col" { "On" } th scope="col" { "Entered" }
                    th scope="col" { "Sent" } th scope="col" { "Waiting" } th scope="col" { "Given up" }
                    th scope="col" { "Why (waiting or given up)" } th scope="col" { "Pushes refused" } } }
                tbody { @for j in &report.journeys {
                    tr {
                        td { (j.kind) } td { @if j.enabled { "yes" } @else { "no" } } td { (j.entered) }
                        td { (j.sent) } td { (j.waiting) } td { (j.skipped) }
                        td { @for (i, (reason, n)) in j.reasons.iter().enumerate() {
                            @if i > 0 { ", " } (reason) ": " (n)
                        } }
                        td { (j.failed_pushes) }
                    }
                } }
            }
            form method="post" action="/console/journeys/run" {
                input type="hidden" name="csrf" value=(s.csrf);
                button type="submit" { "Run the journeys now" }
            }
            h2 { "Settings" }
            form method="post" action="/console/journeys" {
                input type="hidden" name="csrf" value=(s.csrf);
                label for="journeys-text" { "Journeys, as JSON" }
                textarea #journeys-text name="settings" rows="24" cols="90" spellcheck="false" { (text) }
                div { button type="submit" { "Save" } }
            }
        },
    )
}

/// Coupons redeemed twice offline: the redemption that counted, the one that lost, and the
/// decision (a form for those not decided).
pub fn conflicts(s: &Session, list: &[RedemptionConflict]) -> Markup {
    layout(
        "Redemption conflicts",
        Some(s),
        html! {
            @if list.is_empty() { p { "No coupon was redeemed twice." } }
            @for c in list {
                section aria-labelledby={ "conflict-" (c.id) } {
                    h2 id={ "conflict-" (c.id) } { "Coupon " (c.coupon_id) " (offer " (c.offer_id) ")" }
                    dl {
                        dt { "Counted" } dd { (c.winner_store_id) ", till " (c.winner_till_id) ", " (c.winner_at) }
                        dt { "Refused" } dd { (c.store_id) ", till " (c.till_id) ", receipt " (c.receipt) ", offline at " (c.redeemed_offline_at) ", reported " (c.reported_at) }
                    }
                    @match &c.resolution {
                        Some(r) => {
                            p.ok { "Decided: " (r.outcome.as_str()) " by " (r.resolved_by) " on " (r.resolved_at) ". " (r.note) }
                        }
                        None => {
                            form method="post" action={ "/console/conflicts/" (c.id) "/resolve" } {
                                input type="hidden" name="csrf" value=(s.csrf);
                                label for={ "outcome-" (c.id) } { "Outcome" }
                                select id={ "outcome-" (c.id) } name="outcome" required {
                                    @for o in ConflictOutcome::ALL { option value=(o.as_str()) { (o.as_str()) } }
                                }
                                label for={ "note-" (c.id) } { "Note" }
                                input id={ "note-" (c.id) } type="text" name="note" maxlength="500" required;
                                div { button type="submit" { "Decide" } }
                            }
                        }
                    }
                }
            }
        },
    )
}

pub fn audit(s: &Session, rows: &[AuditRow]) -> Markup {
    layout(
        "Audit log",
        Some(s),
        html! {
            table {
                thead { tr { th scope="col" { "When" } th scope="col" { "Who" } th scope="col" { "What" } th scope="col" { "Subject" } th scope="col" { "Detail" } } }
                tbody {
                    @for r in rows {
                        tr { td { (tessera_domain::rfc3339_ms(r.at_ms)) } td { (r.staff) } td { (r.action) } td { (r.subject) } td { (r.detail) } }
                    }
                }
            }
            @if let Some(last) = rows.last() {
                @if rows.len() == 100 {
                    p { a href={ "/console/audit?before=" (last.seq) } { "Older entries" } }
                }
            }
        },
    )
}

/// The staff accounts (admins): each with its state and the buttons that change it (not one's
/// own), and the form that creates one.
pub fn staff(s: &Session, accounts: &[StaffAccount], done: Option<&str>) -> Markup {
    let min = MIN_STAFF_PASSWORD.to_string();
    let max = MAX_STAFF_PASSWORD.to_string();
    layout(
        "Staff",
        Some(s),
        html! {
            @match done {
                Some("created") => { p.ok role="status" { "The account was created: it may sign in now." } }
                Some("disabled") => { p.ok role="status" { "The account was disabled and its sessions ended." } }
                Some("enabled") => { p.ok role="status" { "The account was enabled." } }
                Some("password") => { p.ok role="status" { "The password was set and the account's sessions ended." } }
                Some("two-factor-off") => { p.ok role="status" { "Two-factor sign-in was turned off for the account and its sessions ended." } }
                _ => {}
            }
            table #accounts {
                caption { "Accounts, by e-mail address" }
                thead { tr {
                    th scope="col" { "E-mail address" } th scope="col" { "Name" } th scope="col" { "Role" }
                    th scope="col" { "Shop" } th scope="col" { "State" } th scope="col" { "Two-factor" } th scope="col" { "Change" }
                } }
                tbody {
                    @for a in accounts {
                        tr {
                            th scope="row" { (a.email) }
                            td { (a.name) }
                            td { (a.role.as_str()) }
                            td { (a.store_id.as_deref().unwrap_or("")) }
                            td { @if a.disabled { "disabled" } @else { "active" } }
                            td { @if a.two_factor { "on" } @else { "off" } }
                            td {
                                @if a.id == s.staff_id {
                                    "You (" a href="/console/password" { "change your password" } ")"
                                } @else {
                                    form method="post" action={ "/console/staff/" (a.id) (if a.disabled { "/enable" } else { "/disable" }) } {
                                        input type="hidden" name="csrf" value=(s.csrf);
                                        button type="submit" aria-label={ (if a.disabled { "Enable " } else { "Disable " }) (a.email) } {
                                            @if a.disabled { "Enable" } @else { "Disable" }
                                        }
                                    }
                                    @if a.two_factor {
                                        form method="post" action={ "/console/staff/" (a.id) "/two-factor-off" } {
                                            input type="hidden" name="csrf" value=(s.csrf);
                                            button type="submit" aria-label={ "Turn two-factor off for " (a.email) } { "Turn two-factor off" }
                                        }
                                    }
                                    form method="post" action={ "/console/staff/" (a.id) "/password" } {
                                        input type="hidden" name="csrf" value=(s.csrf);
                                        label for={ "password-" (a.id) } { "New password for " (a.email) }
                                        input id={ "password-" (a.id) } type="password" name="password"
                                            minlength=(min) maxlength=(max) autocomplete="new-password" required;
                                        button type="submit" aria-label={ "Set the password of " (a.email) } { "Set" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h2 { "A new account" }
            form method="post" action="/console/staff" {
                input type="hidden" name="csrf" value=(s.csrf);
                label for="new-email" { "E-mail address" }
                input #new-email type="email" name="email" maxlength="254" autocomplete="off" required;
                label for="new-name" { "Name" }
                input #new-name type="text" name="name" maxlength="100" required;
                label for="new-role" { "Role" }
                select #new-role name="role" required {
                    option value="" { "Choose a role" }
                    @for r in StaffRole::ALL { option value=(r.as_str()) { (r.as_str().replace('_', " ")) } }
                }
                label for="new-shop" { "Shop (store staff only: its id)" }
                input #new-shop type="text" name="store_id" maxlength="64";
                label for="new-password" { "First password (" (min) " to " (max) " characters; give it to them in person)" }
                input #new-password type="password" name="password" minlength=(min) maxlength=(max)
                    autocomplete="new-password" required;
                div { button type="submit" { "Create the account" } }
            }
        },
    )
}

/// Change one's own password.
pub fn own_password(s: &Session, done: Option<&str>) -> Markup {
    let min = MIN_STAFF_PASSWORD.to_string();
    let max = MAX_STAFF_PASSWORD.to_string();
    layout(
        "Password",
        Some(s),
        html! {
            @if done == Some("changed") {
                p.ok role="status" { "Your password was changed; your other sessions have ended." }
            }
            form method="post" action="/console/password" {
                input type="hidden" name="csrf" value=(s.csrf);
                label for="current" { "Current password" }
                input #current type="password" name="current" autocomplete="current-password" required;
                label for="new" { "New password (" (min) " to " (max) " characters)" }
                input #new type="password" name="new" minlength=(min) maxlength=(max)
                    autocomplete="new-password" required;
                label for="repeat" { "New password again" }
                input #repeat type="password" name="repeat" minlength=(min) maxlength=(max)
                    autocomplete="new-password" required;
                div { button type="submit" { "Change the password" } }
            }
        },
    )
}

/// Two-factor sign-in: on (and the form that turns it off), or off with a new secret to scan
/// (its QR code drawn inline, and the secret as text to type) and the form that turns it on.
pub fn two_factor(
    s: &Session,
    on: bool,
    new_secret: Option<(&str, &str)>,
    error: Option<&str>,
    done: Option<&str>,
) -> Markup {
    layout(
        "Two-factor sign-in",
        Some(s),
        html! {
            @match done {
                Some("on") => { p.ok role="status" { "Two-factor sign-in is on: your other sessions have ended." } }
                Some("off") => { p.ok role="status" { "Two-factor sign-in is off." } }
                _ => {}
            }
            @if let Some(e) = error { p.alert role="alert" #two-factor-error { (e) } }
            @if on {
                p #two-factor-state { "Two-factor sign-in is on: each sign-in asks for the code your authenticator app shows." }
                h2 { "Turn it off" }
                form method="post" action="/console/two-factor" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    input type="hidden" name="action" value="off";
                    label for="tf-password" { "Your password" }
                    input #tf-password type="password" name="password" autocomplete="current-password" required;
                    label for="tf-code" { "Code from your authenticator app" }
                    input #tf-code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" required;
                    div { button type="submit" { "Turn two-factor sign-in off" } }
                }
            } @else if let Some((secret, url)) = new_secret {
                p #two-factor-state { "Two-factor sign-in is off." }
                h2 { "Turn it on" }
                ol {
                    li { "Scan this code with an authenticator app (or type the key below into it)." }
                    li { "Type the code it shows, and your password." }
                }
                figure {
                    (qr_svg(url))
                    figcaption { "Key: " code #totp-secret { (secret) } }
                }
                form method="post" action="/console/two-factor" {
                    input type="hidden" name="csrf" value=(s.csrf);
                    input type="hidden" name="action" value="on";
                    input type="hidden" name="secret" value=(secret);
                    label for="tf-code" { "Code from your authenticator app" }
                    input #tf-code type="text" name="code" inputmode="numeric" autocomplete="one-time-code" maxlength="10" required;
                    label for="tf-password" { "Your password" }
                    input #tf-password type="password" name="password" autocomplete="current-password" required;
                    div { button type="submit" { "Turn two-factor sign-in on" } }
                }
            }
        },
    )
}

/// A QR code of `text` as inline SVG (the page allows no image from elsewhere, and needs none),
/// with its quiet zone.
fn qr_svg(text: &str) -> Markup {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else {
        return html! { p.alert { "The QR code could not be drawn: type the key instead." } };
    };
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(232, 232)
        .build();
    // Inline in HTML: the SVG element alone, without the XML declaration the renderer starts with.
    let svg = svg.find("<svg").map_or("", |at| &svg[at..]);
    html! {
        div role="img" aria-label="QR code of the key, for an authenticator app" { (maud::PreEscaped(svg)) }
    }
}
