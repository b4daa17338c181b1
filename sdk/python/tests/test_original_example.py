"""The original product's documented Python example (its README, "SDK Example"), run against a Fluid
server on the lab. It is kept as written; what differs: the token, and — because the lab has no VM
called "ubuntu-base" and the server is not on localhost:8080 — the URL and the source VM come from
the environment (and FLUID_HOST names the lab host, since this machine is registered twice). The
example leaves ``run_agent`` to the reader: here it runs a command in the sandbox, which is what an
agent would do first."""

from __future__ import annotations

import os
import unittest
from typing import Any, List, Tuple

from ._env import require

FLUID_URL = require("FLUID_URL")
FLUID_TOKEN = require("FLUID_TOKEN")
SOURCE_VM = os.environ.get("FLUID_SOURCE_VM", "ubuntu-base")

client: Any = None
ran: List[Tuple[str, str, Any]] = []


def run_agent(task: str, sandbox_id: str) -> None:
    result = client.sandbox.run_command(sandbox_id, "cat /etc/hostname; id -un; uname -s")
    ran.append((task, sandbox_id, result))


def example() -> Any:
    global client
    # ---- the example, as documented (the token added) --------------------------------------------
    from fluid import Fluid

    client = Fluid(FLUID_URL, FLUID_TOKEN)
    sandbox = None

    try:
        # Agent gets its own VM with full root access
        sandbox = client.sandbox.create_sandbox(
            source_vm_name=SOURCE_VM,
            agent_id="nginx-setup-agent",
            auto_start=True,
            wait_for_ip=True
        ).sandbox

        run_agent("Install nginx and configure TLS, create an Ansible playbook to recreate the task.", sandbox.id)

        # NOW the human reviews:
        # - Diff between snapshots shows exactly what changed
        # - Auto-generated Ansible playbook ready to apply
        # - Human approves -> playbook runs on production
        # - Human rejects -> nothing happens, agent tries again

    finally:
        if(sandbox):
            # Clean up sandbox
            client.sandbox.destroy_sandbox(sandbox.id)
    # ---- end of the example ------------------------------------------------------------------------
    return sandbox


class OriginalExample(unittest.TestCase):
    def test_creates_a_sandbox_runs_a_command_and_destroys_it(self) -> None:
        sandbox = example()
        self.assertIsNotNone(sandbox)
        self.assertEqual(sandbox.source_name, SOURCE_VM)
        self.assertEqual(len(ran), 1)
        result = ran[0][2]
        self.assertEqual(result.exit_code, 0, result.stderr)
        lines = result.stdout.split()
        self.assertEqual(lines[1:], ["root", "Linux"])
        self.assertNotEqual(lines[0], "", "the clone has a hostname of its own")
        gone = client.sandbox.get_sandbox(sandbox.id)
        self.assertEqual(gone.state, "destroyed")


if __name__ == "__main__":
    unittest.main()
