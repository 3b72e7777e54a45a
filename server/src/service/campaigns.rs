//! Push campaigns: who a campaign reaches. Only members whose latest decision for offers by push
//! is a grant, matching the audience (tiers, segments, interests), on the devices with a token.

use tessera_domain::api::CampaignAudience;
use tessera_domain::consent::{Channel, Purpose};

use super::privacy;
use crate::storage::repo::RepoResult;
use crate::storage::{CampaignTargets, PushTarget, Repo};

pub(crate) fn targets(
    repo: &mut dyn Repo,
    audience: &CampaignAudience,
) -> RepoResult<CampaignTargets> {
    let mut targets = CampaignTargets::default();
    for member_id in repo.audience(Purpose::MarketingOffers, Channel::Push)? {
        let Some(member) = repo.member(&member_id)? else {
            continue;
        };
        let interests = privacy::preferences(repo, &member_id)?.interests;
        let fits = (audience.tiers.is_empty() || audience.tiers.contains(&member.tier))
            && (audience.segments.is_empty()
                || audience
                    .segments
                    .iter()
                    .any(|s| member.segments.contains(s)))
            && (audience.categories.is_empty()
                || interests.is_empty()
                || audience.categories.iter().any(|k| interests.contains(k)));
        if !fits {
            continue;
        }
        targets.members += 1;
        let devices = repo.push_tokens(&member_id)?;
        if devices.is_empty() {
            targets.without_device += 1;
        }
        for (device_id, provider, token) in devices {
            targets.devices.push(PushTarget {
                member_id: member_id.clone(),
                device_id,
                provider,
                token,
            });
        }
    }
    Ok(targets)
}
