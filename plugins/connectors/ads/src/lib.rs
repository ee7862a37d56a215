//! `ads`: a Tollgate plugin for the Meta Marketing API (Graph v21.0) campaigns.
//!
//! This module owns the manifest and the tool functions; request shapes and error mapping live
//! in [`api`], input and output types in [`model`].

mod api;
mod model;

use tollgate_sdk::prelude::*;

use model::{
    CampaignInsights, CampaignInsightsInput, ListCampaignsInput, ListCampaignsOutput, UpdateCampaignInput,
    UpdateCampaignOutput,
};

tollgate_sdk::plugin! {
    name: "ads",
    version: env!("CARGO_PKG_VERSION"),
    description: "Meta Marketing API (Graph v21.0): list campaigns, read their insights, pause, \
                  resume or re-budget them.",
    hosts: ["https://graph.facebook.com"],
    credentials: [Credential::bearer(
        "meta",
        "graph.facebook.com",
        "Meta system-user access token with ads_read and ads_management",
    )],
    tools: [
        Tool::new(
            "list_campaigns",
            "List the campaigns of a Meta ad account with status, objective and daily budget \
             (in cents). Returns a `next_after` cursor when there are more.",
            list_campaigns,
        )
        .request("GET graph.facebook.com/v21.0/*/campaigns")
        .effects(Effects::READ)
        .idempotent(),
        Tool::new(
            "campaign_insights",
            "Spend, impressions, clicks, CTR and CPC of one Meta campaign over a preset window \
             (today, yesterday, last_7d, last_30d). Spend is in the account currency's major \
             units; Meta's raw strings are included.",
            campaign_insights,
        )
        .request("GET graph.facebook.com/v21.0/*/insights")
        .effects(Effects::READ)
        .idempotent(),
        Tool::new(
            "update_campaign",
            "Pause or resume a Meta campaign and/or set its daily budget (in cents, at least \
             100). Give at least one of status and daily_budget. Setting the same values again \
             changes nothing.",
            update_campaign,
        )
        .request("POST graph.facebook.com/v21.0/*")
        .effects(Effects::WRITE | Effects::SPEND)
        .idempotent(),
    ],
}

fn list_campaigns(_ctx: &Context, input: ListCampaignsInput) -> Result<ListCampaignsOutput, ToolError> {
    let response = api::send(api::list_campaigns_request(&input)?)?;
    let (campaigns, next_after) = api::parse_campaigns(&response)?;
    Ok(ListCampaignsOutput { campaigns, next_after })
}

fn campaign_insights(_ctx: &Context, input: CampaignInsightsInput) -> Result<CampaignInsights, ToolError> {
    let response = api::send(api::insights_request(&input)?)?;
    api::parse_insights(&input, &response)
}

#[derive(Deserialize)]
struct UpdateAnswer {
    #[serde(default)]
    success: bool,
}

fn update_campaign(ctx: &Context, input: UpdateCampaignInput) -> Result<UpdateCampaignOutput, ToolError> {
    let response = api::send(api::update_request(&input, ctx.idempotency_key())?)?;
    let answer: UpdateAnswer = response.json()?;
    if !answer.success {
        return Err(ToolError::upstream(
            Some(response.status()),
            format!("Meta did not confirm the update: {}", response.text()),
        ));
    }
    Ok(UpdateCampaignOutput {
        campaign_id: input.campaign_id,
        status: input.status,
        daily_budget: input.daily_budget,
        success: answer.success,
    })
}
