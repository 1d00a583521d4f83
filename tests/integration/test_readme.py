"""The README's "Using it" examples, taken from README.md itself and run as
they are written (bash, curl, the token tool) against a running stack, so
that what a newcomer pastes works.

Each ```sh block of that section is split into steps: a command (its lines
joined by trailing backslashes) and the comment lines after it that show its
output (`# {...`, continued by `#  ...`).  The blocks run in one bash, in
order, so TOKEN and ID carry over as they do in a terminal.  Each shown
output must match what the command printed: the same keys and values,
where an id, a timestamp or `[...]` in the README stands for any value of
its kind."""
import json
import os
import re
import subprocess
import tempfile
import unittest

from harness import BUILD, ROOT, Stack

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
ANY = object()


def using_it_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        text = f.read()
    start = text.index("\n## Using it\n")
    section = text[start:text.index("\n## ", start + 1)]
    return re.findall(r"```sh\n(.*?)```", section, re.S)


def steps(block):
    """[(command, shown output or None)] of one block."""
    out, cmd, shown = [], [], []
    lines = block.splitlines()

    def flush():
        if cmd:
            out.append(("\n".join(cmd), "\n".join(shown) if shown else None))
        cmd.clear()
        shown.clear()

    for line in lines:
        if not line.strip():
            flush()
        elif line.startswith("#"):
            if cmd and (line.startswith("# {") and not shown or shown and line.startswith("#  ")):
                shown.append(line[2:])
            elif cmd and not (cmd[-1].endswith("\\")):
                flush()
        else:
            if shown:
                flush()
            cmd.append(line)
    flush()
    return out


def pattern(shown):
    """The shown output as a JSON value where [...] matches anything."""
    return json.loads(shown.replace("[...]", '"<any>"'))


def matches(test, want, got, where="$"):
    if want == "<any>":
        return
    if isinstance(want, dict):
        test.assertIsInstance(got, dict, where)
        test.assertEqual(sorted(got), sorted(want), where)
        for k in want:
            matches(test, want[k], got[k], where + "." + k)
    elif isinstance(want, list):
        test.assertIsInstance(got, list, where)
        test.assertEqual(len(got), len(want), where)
        for i, (w, g) in enumerate(zip(want, got)):
            matches(test, w, g, "%s[%d]" % (where, i))
    elif isinstance(want, str) and UUID.match(want):
        test.assertRegex(got, UUID, where)
    elif isinstance(want, str) and TIME.match(want):
        test.assertRegex(got, TIME, where)
    else:
        test.assertEqual(got, want, where)


class ReadmeExamples(unittest.TestCase):
    def test_the_examples_of_using_it_run_as_written(self):
        blocks = using_it_blocks()
        self.assertGreaterEqual(len(blocks), 2, "README's Using it has no sh blocks")
        all_steps = [s for b in blocks for s in steps(b)]
        commands = " ".join(c for c, _ in all_steps)
        # What the examples are meant to show, so that a rewrite cannot
        # silently drop one: the token tool, create, get, patch, list, an error.
        for needle in ("build/tools/orders-token", "-X POST", "-X PATCH", "orders/$ID",
                       "orders?limit=", '"customerId":""'):
            self.assertIn(needle, commands)
        self.assertGreaterEqual(sum(1 for _, shown in all_steps if shown), 5)

        with Stack(workers=2) as s:
            work = tempfile.mkdtemp(prefix="orders-readme-", dir=s.dir)
            # "from the clone's directory": build/ is the build the stack runs.
            os.symlink(BUILD, os.path.join(work, "build"))
            script = ["set -euo pipefail"]
            for i, (cmd, _) in enumerate(all_steps):
                script.append("echo '@@step %d'" % i)
                script.append(cmd.replace("http://127.0.0.1:8000", s.base))
                script.append("echo")
            script.append("echo '@@token' \"$TOKEN\"")
            r = subprocess.run(["bash", "-c", "\n".join(script) + "\n"], cwd=work, env=s.env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            output = r.stdout.decode("utf-8", "replace")
            self.assertEqual(r.returncode, 0, output)
            parts = re.split(r"^@@step (\d+)\n", output, flags=re.M)
            printed = {int(parts[i]): parts[i + 1] for i in range(1, len(parts), 2)}
            self.assertEqual(sorted(printed), list(range(len(all_steps))), output)
            for i, (cmd, shown) in enumerate(all_steps):
                if shown is None:
                    continue
                text = printed[i].split("@@token")[0].strip()
                with self.subTest(command=cmd.splitlines()[0]):
                    self.assertTrue(text, "printed nothing")
                    matches(self, pattern(shown), json.loads(text))
            token = re.search(r"^@@token (\S*)$", output, re.M).group(1)
            self.assertRegex(token, r"^[\w-]+\.[\w-]+\.[\w-]+$", "the tool prints only the token")
            # The flow changed the service as shown: one order, now paid.
            page = s.request("GET", "/orders", token=s.token()).json()
            self.assertEqual(page["total"], 1)
            self.assertEqual(page["items"][0]["status"], "paid")


if __name__ == "__main__":
    unittest.main(verbosity=2)
