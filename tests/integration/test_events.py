"""Events end to end: changes made through nginx reach a real HTTP sink run
by the test as CloudEvents (HTTP binding, structured mode), one per change,
in commit order, each valid against asyncapi.json's schemas."""
import json
import os
import subprocess
import tempfile
import unittest

from harness import ROOT, Stack
from sink_http import HttpSink

SPEC_DIR = os.path.join(ROOT, "tests", "spec")


def validate_with_asyncapi(events):
    """Runs tests/spec/validate-events.mjs (Ajv against asyncapi.json) over
    the events; returns (exit status, output)."""
    if not os.path.isdir(os.path.join(SPEC_DIR, "node_modules")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
                       cwd=SPEC_DIR, check=True, capture_output=True, timeout=300)
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for e in events:
            f.write(json.dumps(e) + "\n")
    try:
        r = subprocess.run(["node", os.path.join(SPEC_DIR, "validate-events.mjs"), f.name],
                           capture_output=True, text=True, timeout=120)
        return r.returncode, r.stdout + r.stderr
    finally:
        os.unlink(f.name)


class EventsThroughTheStack(unittest.TestCase):
    def test_each_change_yields_one_valid_event_in_commit_order(self):
        sink = HttpSink().start()
        try:
            with Stack(workers=2, env={"EVENT_SINK": sink.url}) as s:
                tok = s.token()
                orders, expected = [], []
                for i in range(4):
                    r = s.request("POST", "/orders", token=tok,
                                  body={"customerId": "customer-%d" % i, "items": ["item-%d" % i]})
                    self.assertEqual(r.status, 201)
                    orders.append(r.json())
                    expected.append(("order.created", r.json(), None))
                flow = ["paid", "shipped", "delivered"]
                for o in orders[:2]:
                    previous = "pending"
                    for st in flow:
                        r = s.request("PATCH", "/orders/" + o["id"], token=tok, body={"status": st})
                        self.assertEqual(r.status, 200)
                        expected.append(("order.updated", r.json(), previous))
                        previous = st
                # A refused change (409) and a bad one (400) make no event.
                self.assertEqual(s.request("PATCH", "/orders/" + orders[2]["id"], token=tok,
                                           body={"status": "delivered"}).status, 409)
                self.assertEqual(s.request("POST", "/orders", token=tok, body={"items": []}).status, 400)
                s.wait_for(lambda: len(sink.delivered()) >= len(expected), timeout=20,
                           what="every event at the sink")
                delivered = sink.delivered()
        finally:
            sink.stop()
        events = [r.event for r in delivered]
        self.assertEqual(len(events), len(expected), "exactly one event per change")
        self.assertEqual(len({e["id"] for e in events}), len(events))
        # structured mode of the HTTP binding
        for r in delivered:
            ctype = {k.lower(): v for k, v in r.headers.items()}.get("content-type", "")
            self.assertTrue(ctype.startswith("application/cloudevents+json"), ctype)
        # commit order: the sink saw them in the order the API acknowledged them
        for e, (type_, order, previous) in zip(events, expected):
            self.assertEqual(e["specversion"], "1.0")
            self.assertEqual(e["type"], type_)
            self.assertEqual(e["source"], "/orders")
            self.assertEqual(e["subject"], order["id"])
            self.assertEqual(e["datacontenttype"], "application/json")
            self.assertRegex(e["traceparent"], r"^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$")
            self.assertRegex(e["time"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
            data = dict(e["data"])
            self.assertEqual(data.pop("previousStatus", None), previous)
            self.assertEqual(data, order, "data is the order as the API returned it")
        status, output = validate_with_asyncapi(events)
        self.assertEqual(status, 0, output)


if __name__ == "__main__":
    unittest.main(verbosity=2)
