"""`lead-score`: scores CRM contacts as sales leads, with a reason for every point.

Tools:
- `score_lead` scores one contact from the fields given (pure computation);
- `rank_leads` scores many and returns them best first (pure computation);
- `fetch_and_score` reads a contact from HubSpot CRM v3 and scores it (HTTP, read-only).

The HubSpot token is a manifest credential: the host adds it at egress to `api.hubapi.com`
only, and this code never sees it. Operators point `api.hubapi.com` at a stand-in or proxy
with an upstream remap; the plugin always addresses the real host.
"""

from dataclasses import dataclass
from typing import Annotated, Optional

import scoring
from scoring import Factor, LeadScore
from tollgate import Context, Credential, Effects, Field, InvalidInput, NotFound, Plugin, Upstream, http, log

HUBSPOT = "https://api.hubapi.com"
CONTACT_PROPERTIES = (
    "email",
    "firstname",
    "lastname",
    "jobtitle",
    "company",
    "numemployees",
    "hs_email_open",
    "hs_email_click",
    "hs_analytics_num_page_views",
)

plugin = Plugin(
    "lead-score",
    "0.1.0",
    "Scores CRM contacts as sales leads (0-100, grade A-D) from job title seniority, company size, "
    "email domain and engagement, explaining each factor.",
    hosts=[HUBSPOT],
    credentials=[
        Credential.bearer("hubspot", "api.hubapi.com", "HubSpot private app token with crm.objects.contacts.read")
    ],
)


@dataclass
class Contact:
    """A contact's scoring fields."""

    email: Annotated[str, Field("Email address; its domain tells corporate from free-mail.", max_length=254)]
    jobtitle: Annotated[Optional[str], "Job title, for example 'VP Sales'."] = None
    employees: Annotated[Optional[int], Field("Number of employees at the contact's company.", minimum=0)] = None
    email_opens: Annotated[int, Field("Marketing emails opened.", minimum=0)] = 0
    email_clicks: Annotated[int, Field("Marketing email links clicked.", minimum=0)] = 0
    page_views: Annotated[int, Field("Website page views.", minimum=0)] = 0
    id: Annotated[Optional[str], "CRM id, echoed back by rank_leads."] = None


@dataclass
class RankedLead:
    rank: int
    id: Optional[str]
    email: str
    score: int
    grade: str
    top_factor: str


@dataclass
class ScoredContact:
    id: str
    email: str
    name: str
    company: Optional[str]
    score: int
    grade: str
    factors: "list[Factor]"


def _score(contact: Contact, where: str = "email") -> LeadScore:
    domain = scoring.email_domain(contact.email)
    if domain is None:
        raise InvalidInput(f"`{where}` is not an email address: {contact.email!r}")
    return scoring.score(
        domain, contact.jobtitle, contact.employees, contact.email_opens, contact.email_clicks, contact.page_views
    )


@plugin.tool(idempotent=True, requests=[])
def score_lead(contact: Contact) -> LeadScore:
    """Score one contact as a sales lead: 0-100 and a grade (A best), with each factor's points
    and reason (seniority from the job title, company size, corporate vs free-mail domain,
    email and web engagement)."""
    return _score(contact, "contact.email")


@plugin.tool(idempotent=True, requests=[])
def rank_leads(
    contacts: Annotated["list[Contact]", Field("Contacts to rank.", min_items=1, max_items=5000)],
    top: Annotated[int, Field("How many to return.", minimum=1, maximum=5000)] = 10,
) -> "list[RankedLead]":
    """Score many contacts and return the best `top`, highest score first (ties keep input order)."""
    scored = [(_score(c, f"contacts[{i}].email"), i, c) for i, c in enumerate(contacts)]
    scored.sort(key=lambda item: (-item[0].score, item[1]))
    out = []
    for rank, (result, _, contact) in enumerate(scored[:top], start=1):
        best = max(result.factors, key=lambda f: f.points)
        out.append(RankedLead(rank, contact.id, contact.email, result.score, result.grade, best.reason))
    return out


@plugin.tool(effects=Effects.READ, idempotent=True, requests=["GET api.hubapi.com/crm/v3/objects/contacts/*"])
def fetch_and_score(
    ctx: Context,
    contact_id: Annotated[str, Field("HubSpot contact id.", pattern=r"^[0-9]{1,20}$")],
) -> ScoredContact:
    """Fetch a contact from HubSpot CRM by id and score it as a sales lead (see score_lead)."""
    response = http.get(
        f"{HUBSPOT}/crm/v3/objects/contacts/{http.quote(contact_id)}",
        query={"properties": ",".join(CONTACT_PROPERTIES)},
        timeout=10,
    )
    if response.status == 404:
        raise NotFound(f"no HubSpot contact with id {contact_id}")
    response.raise_for_status()
    record = response.json()
    props = record.get("properties") if isinstance(record, dict) else None
    if not isinstance(props, dict):
        raise Upstream("HubSpot answered without `properties`", response.status)
    email = props.get("email")
    if not email:
        raise InvalidInput(f"HubSpot contact {contact_id} has no email address to score")
    contact = Contact(
        email=email,
        jobtitle=props.get("jobtitle"),
        employees=scoring.employees_from_hubspot(props.get("numemployees")),
        email_opens=scoring.count_from_hubspot(props.get("hs_email_open")),
        email_clicks=scoring.count_from_hubspot(props.get("hs_email_click")),
        page_views=scoring.count_from_hubspot(props.get("hs_analytics_num_page_views")),
        id=str(record.get("id", contact_id)),
    )
    result = _score(contact)
    log.info("scored contact", contact_id=contact.id, score=result.score, grade=result.grade, run=ctx.run_id)
    name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
    return ScoredContact(
        contact.id or contact_id, email, name, props.get("company"), result.score, result.grade, result.factors
    )
