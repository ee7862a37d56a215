//! Who may do what: the roles, the API's endpoints, and [`ACCESS`], the one table that says
//! which role may call which endpoint. Only this module decides authorization by role; handlers
//! name their [`Endpoint`] and the `Caller` extractor checks it before the handler runs. A test
//! drives every (role × endpoint) pair through a real server from this same table.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a token may do. Separation of duties: deciding approvals is the approver's alone, and
/// the admin who manages tokens does not decide or read the audit export by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Manages tokens, deploys workflows and moves their kill switches.
    Admin,
    /// Starts, cancels and pauses runs; reads them.
    Operator,
    /// Decides approvals; reads runs and approvals.
    Approver,
    /// Reads runs, approvals and the audit log, verifies and exports it.
    Auditor,
    /// Reads runs and approvals.
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Operator, Role::Approver, Role::Auditor, Role::Viewer];

    pub fn name(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Auditor => "auditor",
            Role::Viewer => "viewer",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Every authenticated endpoint of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /v1/whoami`
    Whoami,
    /// `GET /v1/runs`
    ListRuns,
    /// `GET /v1/runs/{id}`
    ShowRun,
    /// `GET /v1/approvals`
    ListApprovals,
    /// `GET /v1/approvals/{id}`
    ShowApproval,
    /// `POST /v1/approvals/{id}/approve` and `/deny`
    DecideApproval,
    /// `GET /v1/audit/verify`
    VerifyAudit,
    /// `GET /v1/tokens`
    ListTokens,
    /// `POST /v1/tokens`
    CreateToken,
    /// `DELETE /v1/tokens/{id}`
    RevokeToken,
    /// `GET /v1/workflows`
    ListWorkflows,
    /// `GET /v1/workflows/{name}`
    ShowWorkflow,
    /// `POST /v1/workflows`
    DeployWorkflow,
    /// `POST /v1/workflows/{name}/disable` and `/enable`
    SwitchWorkflow,
    /// `POST /v1/runs`
    StartRun,
    /// `POST /v1/runs/{id}/cancel`, `/pause` and `/resume`
    ControlRun,
}

use Endpoint as E;
use Role::{Admin, Approver, Auditor, Operator, Viewer};

/// The one declaration of who may call what.
pub const ACCESS: &[(Endpoint, &[Role])] = &[
    (E::Whoami, &[Admin, Operator, Approver, Auditor, Viewer]),
    (E::ListRuns, &[Admin, Operator, Approver, Auditor, Viewer]),
    (E::ShowRun, &[Admin, Operator, Approver, Auditor, Viewer]),
    (E::ListApprovals, &[Operator, Approver, Auditor, Viewer]),
    (E::ShowApproval, &[Operator, Approver, Auditor, Viewer]),
    (E::DecideApproval, &[Approver]),
    (E::VerifyAudit, &[Auditor]),
    (E::ListTokens, &[Admin]),
    (E::CreateToken, &[Admin]),
    (E::RevokeToken, &[Admin]),
    (E::ListWorkflows, &[Admin, Operator, Approver, Auditor, Viewer]),
    (E::ShowWorkflow, &[Admin, Operator, Approver, Auditor, Viewer]),
    (E::DeployWorkflow, &[Admin]),
    (E::SwitchWorkflow, &[Admin]),
    (E::StartRun, &[Operator]),
    (E::ControlRun, &[Operator]),
];

/// Whether `role` may call `endpoint`. An endpoint missing from [`ACCESS`] is allowed to no one.
pub fn allowed(role: Role, endpoint: Endpoint) -> bool {
    ACCESS.iter().find(|(e, _)| *e == endpoint).is_some_and(|(_, roles)| roles.contains(&role))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_table_has_each_endpoint_once() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("root"), None);
        let mut seen = std::collections::HashSet::new();
        assert!(ACCESS.iter().all(|(e, _)| seen.insert(*e)), "an endpoint is listed twice");
        assert!(allowed(Approver, E::DecideApproval) && !allowed(Admin, E::DecideApproval));
    }
}
