"""A scripted agent, as a team's own agent would drive Fluid over HTTP: it creates a sandbox on the
lab, works in it (commands, a file, a snapshot, a restore), asks a person, reads the diff of what it
changed, and submits the change for review. It cannot decide anything: its token is agent-scoped."""

from __future__ import annotations

import os
import unittest
from typing import Any, Optional

from fluid import Fluid, FluidError

from ._env import require


class ScriptedAgent(unittest.TestCase):
    client: Fluid
    sandbox: Any = None

    @classmethod
    def setUpClass(cls) -> None:
        cls.client = Fluid(require("FLUID_URL"), require("FLUID_TOKEN"))
        created = cls.client.sandbox.create_sandbox(
            source_vm_name=os.environ.get("FLUID_SOURCE_VM", "fluid-lab-web"),
            host=os.environ.get("FLUID_HOST"),
            name="sdk-agent",
            wait_for_ip=True,
        )
        cls.sandbox = created.sandbox
        assert created.ip_address == cls.sandbox.ip

    @classmethod
    def tearDownClass(cls) -> None:
        if cls.sandbox is not None:
            cls.client.sandbox.destroy_sandbox(cls.sandbox.id)

    def run_ok(self, command: str) -> str:
        r = self.client.sandbox.run_command(self.sandbox.id, command)
        self.assertEqual(r.exit_code, 0, f"{command}: {r.stderr}")
        return r.stdout

    def test_1_works_in_the_sandbox(self) -> None:
        sb = self.sandbox
        self.assertEqual(self.client.sandbox.get_sandbox(sb.id).state, "running")
        self.assertIn(sb.id, [s.id for s in self.client.sandbox.list_sandboxes()])
        self.run_ok("mkdir -p /opt/app && echo 'listen 8080' > /opt/app/app.conf")
        out = self.client.sandbox.run_command(sb.id, 'echo "$GREETING"', env={"GREETING": "it's me"})
        self.assertEqual(out.stdout.strip(), "it's me")
        chunks = list(self.client.sandbox.stream_command(sb.id, "for i in 1 2 3; do echo line $i; done"))
        self.assertEqual(chunks[-1]["kind"], "exit")
        self.assertEqual("".join(c["data"] for c in chunks if c["kind"] == "stdout").split("\n")[:3],
                         ["line 1", "line 2", "line 3"])
        self.client.sandbox.write_file(sb.id, "/opt/app/motd", "managed by an agent\n", mode="0644")
        self.assertEqual(self.client.sandbox.read_file(sb.id, "/opt/app/motd")["content"], "managed by an agent\n")

    def test_2_snapshots_and_restores(self) -> None:
        sb = self.sandbox
        snap = self.client.sandbox.create_snapshot(sb.id, "before-scratch")
        self.assertEqual(snap.name, "before-scratch")
        self.run_ok("echo scratch > /opt/app/scratch")
        self.assertIn("before-scratch", [s.name for s in self.client.sandbox.list_snapshots(sb.id)])
        back = self.client.sandbox.restore_snapshot(sb.id, "before-scratch")
        self.assertEqual(back.state, "running")
        self.assertEqual(self.run_ok("ls /opt/app").split(), ["app.conf", "motd"])

    def test_3_asks_and_never_decides(self) -> None:
        answer = self.client.ask("May I keep the app config in /opt/app?", detail="for the review",
                                 sandbox_id=self.sandbox.id, timeout_seconds=600)
        self.assertTrue(answer.approved, answer)
        self.assertEqual(answer.requested_by["id"], "token:" + os.environ.get("FLUID_TOKEN_NAME", "sdk-agent"))
        pending = self.client.approvals.request("Another question", risk="high")
        with self.assertRaises(FluidError) as e:
            self.client.approvals.decide(pending.id, "approve", unattended=True)
        self.assertEqual((e.exception.status, e.exception.code), (403, "DENIED"))

    def test_4_reads_the_diff_and_submits_the_change(self) -> None:
        diff = self.client.diff.run(self.sandbox.id)
        paths = diff.paths()
        self.assertIn("/opt/app/app.conf", paths)
        self.assertIn("/opt/app/motd", paths)
        self.assertNotIn("/opt/app/scratch", paths, "the restore took it away")
        self.assertEqual(self.client.diff.get(self.sandbox.id).id, diff.id)
        target: Optional[str] = os.environ.get("FLUID_TARGET")
        if not target:
            self.fail("FLUID_TARGET is not set: the test that starts the server registers the lab's target")
        generated = self.client.playbooks.generate(self.sandbox.id)
        self.assertTrue(generated)
        change = self.client.changes.submit(target, sandbox=self.sandbox.id, title="App config from the SDK agent")
        self.assertEqual(change.status, "awaiting-approval", change.status_detail)
        self.assertIsNotNone(change.sha256)
        self.assertEqual(change.approval["status"], "pending")
        with self.assertRaises(FluidError) as e:
            self.client._transport.call("POST", f"/v1/changes/{change.id}/apply", body={})
        self.assertEqual(e.exception.status, 403)

    def test_5_another_agent_cannot_touch_this_sandbox(self) -> None:
        other = Fluid(require("FLUID_URL"), require("FLUID_OTHER_TOKEN"))
        self.assertEqual(other.sandbox.get_sandbox(self.sandbox.id).id, self.sandbox.id, "it may look it up")
        for attempt in (
            lambda: other.sandbox.run_command(self.sandbox.id, "touch /opt/app/planted"),
            lambda: other.sandbox.read_file(self.sandbox.id, "/opt/app/app.conf"),
            lambda: other.sandbox.destroy_sandbox(self.sandbox.id),
            lambda: other.diff.get(self.sandbox.id),
        ):
            with self.assertRaises(FluidError) as e:
                attempt()
            self.assertEqual((e.exception.status, e.exception.code), (403, "DENIED"))
        self.assertEqual(self.run_ok("ls /opt/app").split(), ["app.conf", "motd"])


if __name__ == "__main__":
    unittest.main()
