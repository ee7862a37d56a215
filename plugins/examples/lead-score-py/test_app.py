"""Unit tests, run natively: `python3 -m unittest` (no component, no host, no network)."""

import json
import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The SDK: the copy `tollgate plugin build` writes, else the one in the Tollgate repository.
sys.path[:0] = [str(HERE / ".tollgate" / "sdk"), str(HERE.parent.parent / "sdk-python")]

import tollgate  # noqa: E402
from tollgate import http  # noqa: E402

import app  # noqa: E402
import scoring  # noqa: E402


def call(tool, **input):
    return json.loads(app.plugin.call(tool, json.dumps(input), tollgate.Context("run-1", "call-1", "key-1")))


class ScoringTest(unittest.TestCase):
    def test_seniority_tiers_take_the_first_match(self):
        self.assertEqual(scoring.seniority("Co-Founder & CEO").points, 30)
        self.assertEqual(scoring.seniority("VP, Head of Sales").points, 22)
        self.assertEqual(scoring.seniority("Marketing Manager").points, 12)
        self.assertEqual(scoring.seniority("Software Engineer").points, 5)
        self.assertEqual(scoring.seniority("Sales Intern").points, 0)
        self.assertEqual(scoring.seniority("  ").reason, "no job title")
        # Word boundaries: "Directory Services" is not a director.
        self.assertEqual(scoring.seniority("Directory Services Admin").points, 5)

    def test_email_domains(self):
        self.assertEqual(scoring.email_domain("Ana@Northwind.Example"), "northwind.example")
        self.assertIsNone(scoring.email_domain("not-an-email"))
        self.assertEqual(scoring.email("gmail.com").points, -10)
        self.assertEqual(scoring.email("mailinator.com").points, -25)
        self.assertEqual(scoring.email("initech.example").points, 15)

    def test_engagement_is_capped_per_signal(self):
        self.assertEqual(scoring.engagement(100, 100, 100).points, 35)
        self.assertEqual(scoring.engagement(2, 1, 3).points, 2 + 3 + 1.5)

    def test_hubspot_values(self):
        self.assertEqual(scoring.employees_from_hubspot("1,000+"), 1000)
        self.assertEqual(scoring.employees_from_hubspot("25-50"), 25)
        self.assertIsNone(scoring.employees_from_hubspot(None))
        self.assertEqual(scoring.count_from_hubspot("3.0"), 3)
        self.assertEqual(scoring.count_from_hubspot("n/a"), 0)


class ToolsTest(unittest.TestCase):
    def test_the_manifest_is_valid(self):
        self.assertEqual(app.plugin.validate(), [])
        self.assertEqual([t.name for t in app.plugin.tools], ["score_lead", "rank_leads", "fetch_and_score"])

    def test_score_lead_explains_every_point(self):
        out = call("score_lead", contact={"email": "dmitri@initech.example", "jobtitle": "VP Sales",
                                          "employees": 450, "email_opens": 4, "email_clicks": 2, "page_views": 12})
        self.assertEqual((out["score"], out["grade"]), (68, "B"))
        self.assertEqual([f["points"] for f in out["factors"]], [22, 15, 15, 16])

    def test_free_mail_students_score_low(self):
        out = call("score_lead", contact={"email": "kid@gmail.com", "jobtitle": "Student"})
        self.assertEqual((out["score"], out["grade"]), (0, "D"))

    def test_bad_email_is_invalid_input(self):
        with self.assertRaises(tollgate.InvalidInput):
            call("score_lead", contact={"email": "nobody"})

    def test_rank_leads_orders_by_score_and_keeps_ties_in_order(self):
        out = call("rank_leads", top=2, contacts=[
            {"email": "a@gmail.com", "id": "1"},
            {"email": "b@acme.example", "jobtitle": "CTO", "id": "2"},
            {"email": "c@acme.example", "jobtitle": "CFO", "id": "3"},
        ])
        self.assertEqual([(r["rank"], r["id"]) for r in out], [(1, "2"), (2, "3")])

    def test_fetch_and_score_reads_hubspot(self):
        body = {"id": "1002", "properties": {"email": "ben@brightlabs.example", "firstname": "Ben",
                                             "lastname": "Okafor", "jobtitle": "CTO", "numemployees": "50-100"}}
        with http.mock(lambda req: http.Response(200, [], json.dumps(body).encode())) as sent:
            out = call("fetch_and_score", contact_id="1002")
        self.assertEqual(sent[0].method, "GET")
        self.assertTrue(sent[0].url.startswith("https://api.hubapi.com/crm/v3/objects/contacts/1002?properties="))
        self.assertIsNone(sent[0].header("authorization"), "the host adds the credential, not the plugin")
        self.assertEqual((out["name"], out["score"]), ("Ben Okafor", 30 + 10 + 15))

    def test_fetch_and_score_maps_hubspot_errors(self):
        with http.mock(lambda req: http.Response(404, [], b'{"message": "not found"}')):
            with self.assertRaises(tollgate.NotFound):
                call("fetch_and_score", contact_id="9")
        with http.mock(lambda req: http.Response(401, [], b'{"message": "bad token"}')):
            with self.assertRaises(tollgate.Denied) as raised:
                call("fetch_and_score", contact_id="9")
        self.assertEqual(raised.exception.message, "bad token")


if __name__ == "__main__":
    unittest.main()
