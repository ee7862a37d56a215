"""Unit tests: run natively with `python3 -m unittest` (no component, no host)."""

import json
import sys
import unittest
from pathlib import Path

# The SDK copy `tollgate plugin build` keeps up to date.
sys.path.insert(0, str(Path(__file__).resolve().parent / ".tollgate" / "sdk"))

import tollgate  # noqa: E402

import app  # noqa: E402


class GreetTest(unittest.TestCase):
    def test_the_manifest_is_valid(self):
        self.assertEqual(app.plugin.validate(), [])

    def test_greets_by_name(self):
        out = json.loads(app.plugin.call("greet", '{"name": " Ada ", "excited": true}'))
        self.assertEqual(out, {"message": "Hello, Ada!", "length": 11})

    def test_a_blank_name_is_invalid_input(self):
        with self.assertRaises(tollgate.InvalidInput):
            app.plugin.call("greet", '{"name": "   "}')

    def test_input_must_match_the_parameters(self):
        with self.assertRaises(tollgate.InvalidInput) as raised:
            app.plugin.call("greet", '{"name": "Ada", "loud": true}')
        self.assertIn("unknown field `loud`", str(raised.exception))


if __name__ == "__main__":
    unittest.main()
