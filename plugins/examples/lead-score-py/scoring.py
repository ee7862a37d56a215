"""Lead scoring over CRM contact fields: pure functions, no SDK calls, unit-tested natively.

A score is the sum of four factors, clamped to 0..100, each with the reason it gave its
points, so a person (or the model) can see why a lead ranks where it does:

| factor     | points | from |
|------------|--------|------|
| seniority  | 0..30  | job title: C-level/founder 30, VP/head/director 22, manager/lead 12, other 5, student/intern 0 |
| company    | 0..20  | employees: 1000+ 20, 200+ 15, 50+ 10, 10+ 5, fewer 2, unknown 0 |
| email      | -25..15| corporate domain 15, free-mail -10, disposable -25 |
| engagement | 0..35  | 1 per email opened (max 10), 3 per click (max 15), 0.5 per page view (max 10) |

Grades: A ≥ 70, B ≥ 50, C ≥ 30, else D.
"""

import re
from dataclasses import dataclass
from typing import Literal, Optional

FREE_MAIL = frozenset(
    """gmail.com googlemail.com yahoo.com yahoo.co.uk ymail.com hotmail.com hotmail.co.uk outlook.com live.com
    msn.com icloud.com me.com mac.com aol.com proton.me protonmail.com gmx.com gmx.de gmx.net web.de mail.com
    zoho.com yandex.com yandex.ru mail.ru qq.com 163.com 126.com fastmail.com hey.com tutanota.com""".split()
)
DISPOSABLE = frozenset(
    "mailinator.com guerrillamail.com 10minutemail.com tempmail.com temp-mail.org trashmail.com yopmail.com "
    "sharklasers.com getnada.com dispostable.com".split()
)

# Checked in order: the first tier with a matching word wins ("VP, Head of Sales" is a VP).
# Compiled at import: in the component that happens once, at build time, instead of per call
# (every call starts from the build's snapshot, so a lazily compiled regex is compiled again
# on every call).
SENIORITY = tuple(
    (points, label, re.compile(pattern))
    for points, label, pattern in (
        (30, "C-level or founder", r"\b(ceo|cto|cfo|coo|cmo|cio|cro|chief|founder|co-founder|cofounder|owner|president)\b"),
        (22, "VP, head or director", r"\b(vp|svp|evp|vice president|head|director)\b"),
        (12, "manager or lead", r"\b(manager|lead|principal|supervisor)\b"),
        (0, "student or intern", r"\b(student|intern|trainee)\b"),
    )
)
INDIVIDUAL_POINTS = 5

COMPANY_TIERS = ((1000, 20), (200, 15), (50, 10), (10, 5), (0, 2))

_EMAIL = re.compile(r"^[^@\s]+@([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)$")
_LEADING_NUMBER = re.compile(r"\s*(\d[\d,]*)")


@dataclass
class Factor:
    """One part of a score and why it got its points."""

    name: Literal["seniority", "company", "email", "engagement"]
    points: float
    reason: str


@dataclass
class LeadScore:
    score: int
    grade: Literal["A", "B", "C", "D"]
    factors: "list[Factor]"


def email_domain(email: str) -> Optional[str]:
    """The lowercase domain of a syntactically valid address, else None."""
    match = _EMAIL.match(email.strip())
    return match.group(1).lower() if match else None


def seniority(title: Optional[str]) -> Factor:
    if not title or not title.strip():
        return Factor("seniority", 0, "no job title")
    words = title.lower().replace("/", " ").replace(",", " ")
    for points, label, pattern in SENIORITY:
        if pattern.search(words):
            return Factor("seniority", points, f"{label}: {title.strip()!r}")
    return Factor("seniority", INDIVIDUAL_POINTS, f"individual contributor: {title.strip()!r}")


def company(employees: Optional[int]) -> Factor:
    if employees is None:
        return Factor("company", 0, "company size unknown")
    for floor, points in COMPANY_TIERS:
        if employees >= floor:
            return Factor("company", points, f"{employees} employees (tier {floor}+)")
    return Factor("company", 0, f"{employees} employees")


def email(domain: str) -> Factor:
    if domain in DISPOSABLE:
        return Factor("email", -25, f"disposable address ({domain})")
    if domain in FREE_MAIL:
        return Factor("email", -10, f"free-mail address ({domain})")
    return Factor("email", 15, f"corporate domain ({domain})")


def engagement(opens: int, clicks: int, page_views: int) -> Factor:
    points = min(opens, 10) * 1 + min(clicks * 3, 15) + min(page_views * 0.5, 10)
    return Factor("engagement", points, f"{opens} emails opened, {clicks} clicked, {page_views} page views")


def grade(score: int) -> Literal["A", "B", "C", "D"]:
    if score >= 70:
        return "A"
    if score >= 50:
        return "B"
    if score >= 30:
        return "C"
    return "D"


def score(
    domain: str,
    title: Optional[str],
    employees: Optional[int],
    opens: int = 0,
    clicks: int = 0,
    page_views: int = 0,
) -> LeadScore:
    factors = [seniority(title), company(employees), email(domain), engagement(opens, clicks, page_views)]
    total = round(sum(f.points for f in factors))
    total = max(0, min(100, total))
    return LeadScore(total, grade(total), factors)


def employees_from_hubspot(value: Optional[str]) -> Optional[int]:
    """HubSpot's `numemployees` is a range such as `25-50` or `1000+` (or a number): its lower
    bound, or None when unset or unreadable."""
    if not value:
        return None
    match = _LEADING_NUMBER.match(value)
    return int(match.group(1).replace(",", "")) if match else None


def count_from_hubspot(value: Optional[str]) -> int:
    """HubSpot sends numeric properties as strings (`"12"`, `"3.0"`); unset counts are 0."""
    try:
        return max(0, int(float(value))) if value else 0
    except ValueError:
        return 0
