//! The ads connector's tool inputs and outputs: what the model sees (as JSON Schema) and gets
//! back. Graph API wire shapes live in `api`.

use tollgate_sdk::prelude::*;

/// Input of `list_campaigns`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListCampaignsInput {
    /// The ad account's numeric id, without the `act_` prefix.
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub ad_account_id: String,
    /// How many campaigns to return, 1 to 100 (Meta's default is 25).
    #[serde(default)]
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// Paging cursor: `next_after` of the previous page.
    #[serde(default)]
    pub after: Option<String>,
}

/// A campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Campaign {
    pub id: String,
    pub name: Option<String>,
    /// Configured status: ACTIVE, PAUSED, DELETED or ARCHIVED.
    pub status: Option<String>,
    /// Delivery status as Meta computes it (for example CAMPAIGN_PAUSED, WITH_ISSUES).
    pub effective_status: Option<String>,
    /// For example OUTCOME_SALES.
    pub objective: Option<String>,
    /// Daily budget in minor units of the account currency (cents); absent when the budget is
    /// set on the ad sets instead.
    pub daily_budget: Option<u64>,
}

/// Output of `list_campaigns`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ListCampaignsOutput {
    pub campaigns: Vec<Campaign>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next_after: Option<String>,
}

/// The reporting window of `campaign_insights`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum DatePreset {
    #[serde(rename = "today")]
    Today,
    #[serde(rename = "yesterday")]
    Yesterday,
    #[default]
    #[serde(rename = "last_7d")]
    Last7d,
    #[serde(rename = "last_30d")]
    Last30d,
}

impl DatePreset {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Today => "today",
            Self::Yesterday => "yesterday",
            Self::Last7d => "last_7d",
            Self::Last30d => "last_30d",
        }
    }
}

/// Input of `campaign_insights`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignInsightsInput {
    /// The campaign's numeric id.
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub campaign_id: String,
    /// The reporting window; `last_7d` when omitted.
    #[serde(default)]
    pub date_preset: DatePreset,
}

/// Output of `campaign_insights`: numbers parsed for reasoning, plus Meta's raw strings.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CampaignInsights {
    pub campaign_id: String,
    pub campaign_name: Option<String>,
    pub date_preset: DatePreset,
    /// First day of the window (YYYY-MM-DD), when Meta reported one.
    pub date_start: Option<String>,
    /// Last day of the window (YYYY-MM-DD), when Meta reported one.
    pub date_stop: Option<String>,
    /// False when the campaign delivered nothing in the window (all figures are then zero).
    pub has_delivery: bool,
    /// Amount spent, in the account currency's major units (for example 12.34 US dollars).
    pub spend: f64,
    pub impressions: u64,
    pub clicks: u64,
    /// Click-through rate in percent.
    pub ctr: Option<f64>,
    /// Cost per click in the account currency's major units.
    pub cpc: Option<f64>,
    /// The figures exactly as Meta returned them (decimal strings).
    pub raw: Option<RawInsights>,
}

/// Meta's insight figures as returned (decimal strings, no rounding applied).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RawInsights {
    pub spend: Option<String>,
    pub impressions: Option<String>,
    pub clicks: Option<String>,
    pub ctr: Option<String>,
    pub cpc: Option<String>,
}

/// A campaign status the connector may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum CampaignStatus {
    Active,
    Paused,
}

impl CampaignStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Paused => "PAUSED",
        }
    }
}

/// Input of `update_campaign`. Give at least one of `status` and `daily_budget`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCampaignInput {
    /// The campaign's numeric id.
    #[schemars(regex(pattern = r"^[0-9]+$"))]
    pub campaign_id: String,
    /// ACTIVE to run the campaign, PAUSED to stop its delivery.
    #[serde(default)]
    pub status: Option<CampaignStatus>,
    /// New daily budget in minor units of the account currency (cents), at least 100.
    #[serde(default)]
    #[schemars(range(min = 100))]
    pub daily_budget: Option<u64>,
}

/// Output of `update_campaign`: what was set. Fields left unchanged are null.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct UpdateCampaignOutput {
    pub campaign_id: String,
    /// The status set, or null if unchanged.
    pub status: Option<CampaignStatus>,
    /// The daily budget set in minor units (cents), or null if unchanged.
    pub daily_budget: Option<u64>,
    /// Meta's `success` flag.
    pub success: bool,
}
