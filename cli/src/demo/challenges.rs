//! Challenges and badges: the phone's estimate, the server's evaluation.

use anyhow::Result;
use tessera_core::Tessera;

use super::*;

/// Step 20: a challenge moves with her purchases, offline on her phone and on the server, and
/// pays its reward when the third product is bought.
pub(super) fn challenge_step(phone: &Tessera, paris: &tessera_till::Till) -> Result<()> {
    use tessera_core::api::{PointsKind, PurchaseLine, PurchaseRequest};
    use tessera_till::Done;

    step(
        20,
        "A challenge: three different products from the autumn collection this month",
    );
    let show = |when: &str| -> Result<()> {
        let view = phone.challenges()?;
        for c in &view.challenges {
            println!(
                "  {when}: {} — {}/{}{}{}",
                c.title,
                c.done,
                c.target,
                if c.completed { ", completed" } else { "" },
                if view.estimated { " (estimate)" } else { "" }
            );
        }
        Ok(())
    };
    show("Léa's app")?;
    let Done::Online(receipt) = paris.record_purchase(&PurchaseRequest {
        receipt: "R-000131".into(),
        card_number: Some(phone.card()?.card_number),
        member_code: None,
        lines: vec![PurchaseLine {
            sku: "sku-autumn-blend".into(),
            category: Some("tea".into()),
            collection: Some("autumn".into()),
            quantity: 1,
            amount_cents: 1450,
        }],
        total_cents: 1450,
        occurred_offline_at: None,
    })?
    else {
        anyhow::bail!("the purchase did not reach the server");
    };
    println!(
        "  Paris till: the autumn blend, 14.50 € — balance {} (14 earned + the challenge's reward)",
        receipt.points_balance
    );
    phone.sync()?;
    show("after sync")?;
    let view = phone.challenges()?;
    let bonus: i64 = phone
        .points()?
        .ledger
        .iter()
        .filter(|e| e.kind == PointsKind::Bonus)
        .map(|e| e.points)
        .sum();
    for b in &view.badges {
        println!("  badge earned: {} ({}), {}", b.badge, b.title, b.earned_at);
    }
    println!("  challenge reward paid once: {bonus} points");
    anyhow::ensure!(
        bonus == 150 && view.badges.len() == 1,
        "the challenge did not pay its reward once"
    );
    Ok(())
}
