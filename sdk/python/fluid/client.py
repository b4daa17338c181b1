"""The client. Its shape follows the original Fluid SDK (``Fluid(url)``, ``client.sandbox.…``) with a
token, and adds diffs, playbooks, changes and asking a person."""

from __future__ import annotations

import os
import uuid
from typing import Any, Dict, Iterator, List, Mapping, Optional
from urllib.parse import quote

from ._http import Transport
from .errors import FluidError
from .models import (
    Approval,
    Change,
    CreateSandboxResponse,
    Diff,
    DiffSummary,
    ExecResult,
    Host,
    Sandbox,
    Snapshot,
    Task,
)


def _p(value: str) -> str:
    return quote(str(value), safe="")


def _env_prefix(env: Optional[Mapping[str, str]]) -> str:
    out = ""
    for k, v in (env or {}).items():
        if not k or not (k[0].isalpha() or k[0] == "_") or not all(c.isalnum() or c == "_" for c in k):
            raise FluidError("VALIDATION", f"{k!r} is not a shell variable name")
        out += "export %s='%s'\n" % (k, str(v).replace("'", "'\\''"))
    return out


class _Part:
    def __init__(self, client: "Fluid") -> None:
        self._c = client
        self._t = client._transport


class Tasks(_Part):
    """Long work: watch it, wait for it, cancel it."""

    def get(self, task_id: str) -> Task:
        return Task.from_dict(self._t.call("GET", f"/v1/tasks/{_p(task_id)}")[0])

    def watch(self, task_id: str) -> Iterator[Task]:
        """The task now, then every change until it finishes (Server-Sent Events)."""
        for event, data in self._t.events("GET", f"/v1/tasks/{_p(task_id)}/watch"):
            if event == "item":
                yield Task.from_dict(data)
            elif event == "error":
                raise FluidError(data.get("code", "INTERNAL"), data.get("message", ""), 0, data.get("data"))

    def wait(self, task: Any) -> Task:
        """Wait for the task to finish; raise FluidError with its error unless it succeeded."""
        task_id = task.id if isinstance(task, Task) else str(task)
        last = None
        for last in self.watch(task_id):
            pass
        if last is None:
            last = self.get(task_id)
        if last.status != "succeeded":
            err = last.error or {"code": "INTERNAL", "message": f"The task ended {last.status}."}
            raise FluidError(str(err.get("code")), str(err.get("message")), 0, err.get("data"))
        return last

    def cancel(self, task_id: str) -> Task:
        return Task.from_dict(self._t.call("POST", f"/v1/tasks/{_p(task_id)}/cancel")[0])


class Sandboxes(_Part):
    """Sandboxes: disposable clones of source VMs."""

    def create_sandbox(
        self,
        source_vm_name: str,
        agent_id: Optional[str] = None,
        host: Optional[str] = None,
        name: Optional[str] = None,
        cpu: Optional[int] = None,
        memory_mb: Optional[int] = None,
        ttl_seconds: Optional[int] = None,
        auto_start: bool = True,
        wait_for_ip: bool = False,
        allow: Optional[List[str]] = None,
        idempotency_key: Optional[str] = None,
    ) -> CreateSandboxResponse:
        """Clone ``source_vm_name`` into a sandbox and return once it runs (``.sandbox``, ``.ip_address``).

        ``agent_id`` and ``wait_for_ip`` are accepted as the original SDK took them: the token names
        the agent, and the answer always comes once the sandbox is ready. ``auto_start=False`` shuts
        it down after creation. ``host`` defaults to the FLUID_HOST environment variable (needed when
        several hosts are registered and the server cannot tell which one to use).
        """
        body = {
            "source": source_vm_name,
            "host": host or os.environ.get("FLUID_HOST"),
            "name": name,
            "vcpus": cpu,
            "memoryMiB": memory_mb,
            "ttlMinutes": None if ttl_seconds is None else max(1, -(-ttl_seconds // 60)),
            "allow": allow,
        }
        key = idempotency_key or str(uuid.uuid4())
        task = Task.from_dict(self._t.call("POST", "/v1/sandboxes", body=body, headers={"Idempotency-Key": key})[0])
        done = self._c.tasks.wait(task)
        sandbox = Sandbox.from_dict(done.result)
        if not auto_start:
            sandbox = self.stop_sandbox(sandbox.id)
        return CreateSandboxResponse(sandbox=sandbox, ip_address=sandbox.ip)

    def get_sandbox(self, sandbox_id: str) -> Sandbox:
        return Sandbox.from_dict(self._t.call("GET", f"/v1/sandboxes/{_p(sandbox_id)}")[0])

    def list_sandboxes(self, host: Optional[str] = None) -> List[Sandbox]:
        return [Sandbox.from_dict(s) for s in self._c._pages("/v1/sandboxes", {"host": host})]

    def start_sandbox(self, sandbox_id: str) -> Sandbox:
        task = Task.from_dict(self._t.call("POST", f"/v1/sandboxes/{_p(sandbox_id)}/start")[0])
        return Sandbox.from_dict(self._c.tasks.wait(task).result)

    def stop_sandbox(self, sandbox_id: str, force: bool = False) -> Sandbox:
        return Sandbox.from_dict(
            self._t.call("POST", f"/v1/sandboxes/{_p(sandbox_id)}/stop", body={"force": force})[0]
        )

    def destroy_sandbox(self, sandbox_id: str) -> Sandbox:
        return Sandbox.from_dict(self._t.call("DELETE", f"/v1/sandboxes/{_p(sandbox_id)}")[0])

    def run_command(
        self,
        sandbox_id: str,
        command: str,
        timeout_sec: Optional[int] = None,
        env: Optional[Mapping[str, str]] = None,
    ) -> ExecResult:
        """Run a command (or a multi-line bash script) as root in the sandbox."""
        body = {"command": _env_prefix(env) + command, "timeoutSeconds": timeout_sec}
        return ExecResult.from_dict(self._t.call("POST", f"/v1/sandboxes/{_p(sandbox_id)}/exec", body=body)[0])

    def stream_command(self, sandbox_id: str, command: str, timeout_sec: Optional[int] = None) -> Iterator[Dict[str, Any]]:
        """Run a command and yield its output as it comes: {kind: stdout|stderr, data}, then {kind: exit, result}."""
        body = {"command": command, "timeoutSeconds": timeout_sec}
        for event, data in self._t.events("POST", f"/v1/sandboxes/{_p(sandbox_id)}/exec-stream", body=body):
            if event == "item":
                yield data
            elif event == "error":
                raise FluidError(data.get("code", "INTERNAL"), data.get("message", ""), 0, data.get("data"))

    def read_file(self, sandbox_id: str, path: str) -> Dict[str, Any]:
        return self._t.call("GET", f"/v1/sandboxes/{_p(sandbox_id)}/files", query={"path": path})[0]

    def write_file(self, sandbox_id: str, path: str, content: str, mode: Optional[str] = None) -> Dict[str, Any]:
        body = {"path": path, "content": content, "mode": mode}
        return self._t.call("PUT", f"/v1/sandboxes/{_p(sandbox_id)}/files", body=body)[0]

    def create_snapshot(self, sandbox_id: str, name: str, memory: bool = True) -> Snapshot:
        body = {"name": name, "memory": memory}
        return Snapshot.from_dict(self._t.call("POST", f"/v1/sandboxes/{_p(sandbox_id)}/snapshots", body=body)[0])

    def list_snapshots(self, sandbox_id: str) -> List[Snapshot]:
        return [Snapshot.from_dict(s) for s in self._c._pages(f"/v1/sandboxes/{_p(sandbox_id)}/snapshots")]

    def restore_snapshot(self, sandbox_id: str, name: str) -> Sandbox:
        path = f"/v1/sandboxes/{_p(sandbox_id)}/snapshots/{_p(name)}/restore"
        return Sandbox.from_dict(self._t.call("POST", path)[0])


class Diffs(_Part):
    """What changed on a sandbox's disk, read on the host."""

    def run(self, sandbox_id: str, from_snapshot: Optional[str] = None, to_snapshot: Optional[str] = None) -> Diff:
        body = {"from": from_snapshot, "to": to_snapshot}
        task = Task.from_dict(self._t.call("POST", f"/v1/sandboxes/{_p(sandbox_id)}/diffs", body=body)[0])
        summary = DiffSummary.from_dict(self._c.tasks.wait(task).result)
        return self.get(sandbox_id, summary.id)

    def get(self, sandbox_id: str, diff_id: Optional[str] = None) -> Diff:
        return Diff.from_dict(self._t.call("GET", f"/v1/sandboxes/{_p(sandbox_id)}/diff", query={"diff": diff_id})[0])

    def list(self, sandbox_id: str) -> List[DiffSummary]:
        return [DiffSummary.from_dict(d) for d in self._c._pages(f"/v1/sandboxes/{_p(sandbox_id)}/diffs")]


class Playbooks(_Part):
    """Playbooks generated from a sandbox's diff, verified on a fresh clone."""

    def generate(self, sandbox_id: str, playbook: Optional[str] = None) -> Dict[str, Any]:
        task = Task.from_dict(
            self._t.call("POST", "/v1/playbooks/generate", body={"sandbox": sandbox_id, "playbook": playbook})[0]
        )
        return self._c.tasks.wait(task).result

    def get(self, playbook: str, revision: Optional[int] = None) -> Dict[str, Any]:
        return self._t.call("GET", f"/v1/playbooks/{_p(playbook)}", query={"revision": revision})[0]

    def verify(self, playbook: str, revision: Optional[int] = None) -> Dict[str, Any]:
        task = Task.from_dict(
            self._t.call("POST", f"/v1/playbooks/{_p(playbook)}/verify", body={"revision": revision})[0]
        )
        return self._c.tasks.wait(task).result


class Changes(_Part):
    """Reviewable changes: submit one for a person's approval; only a person applies it."""

    def submit(
        self,
        target: str,
        sandbox: Optional[str] = None,
        playbook: Optional[str] = None,
        revision: Optional[int] = None,
        title: Optional[str] = None,
        wait: bool = True,
    ) -> Change:
        body = {"target": target, "sandbox": sandbox, "playbook": playbook, "revision": revision, "title": title}
        out = self._t.call("POST", "/v1/changes", body=body)[0]
        change = Change.from_dict(out["change"])
        if wait:
            self._c.tasks.wait(Task.from_dict(out["task"]))
            change = self.get(change.id)
        return change

    def get(self, change_id: str) -> Change:
        return Change.from_dict(self._t.call("GET", f"/v1/changes/{_p(change_id)}")[0])

    def list(self, sandbox: Optional[str] = None) -> List[Change]:
        return [Change.from_dict(c) for c in self._c._pages("/v1/changes", {"sandbox": sandbox})]


class Approvals(_Part):
    """Requests for a person's decision. An agent token reads and asks; it never decides."""

    def list(self, status: Optional[str] = None) -> List[Approval]:
        return [Approval.from_dict(a) for a in self._c._pages("/v1/approvals", {"status": status})]

    def get(self, approval_id: str) -> Approval:
        return Approval.from_dict(self._t.call("GET", f"/v1/approvals/{_p(approval_id)}")[0])

    def request(self, title: str, detail: str = "", risk: str = "medium", subject: Any = None,
                sandbox_id: Optional[str] = None, timeout_seconds: int = 3600) -> Approval:
        """File a question and return at once (see ``Fluid.ask`` to wait for the answer)."""
        body = {"title": title, "detail": detail, "risk": risk, "subject": subject, "sandboxId": sandbox_id,
                "timeoutSeconds": timeout_seconds}
        return Approval.from_dict(self._t.call("POST", "/v1/approvals", body=body)[0])

    def decide(self, approval_id: str, decision: str, note: Optional[str] = None, unattended: bool = False) -> Approval:
        """Operator tokens only, and only while a person allows unattended decisions (``unattended=True``)."""
        body: Dict[str, Any] = {"decision": decision, "note": note}
        if unattended:
            body["presence"] = {"kind": "unattended"}
        return Approval.from_dict(self._t.call("POST", f"/v1/approvals/{_p(approval_id)}/decide", body=body)[0])


class Hosts(_Part):
    def list_hosts(self) -> List[Host]:
        return [Host.from_dict(h) for h in self._c._pages("/v1/hosts")]


class Fluid:
    """A connection to a Fluid server's HTTP API (``fluid serve`` or ``fluid serve --api``).

    ``token`` defaults to the FLUID_TOKEN environment variable. ``ca_file`` trusts a certificate
    (for a server started with ``--tls-generate``: the printed fingerprint is the one to compare).
    """

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8080",
        token: Optional[str] = None,
        timeout: float = 900.0,
        ca_file: Optional[str] = None,
    ) -> None:
        self._transport = Transport(base_url, token or os.environ.get("FLUID_TOKEN"), timeout, ca_file)
        self.tasks = Tasks(self)
        self.sandbox = Sandboxes(self)
        self.sandboxes = self.sandbox
        self.diff = Diffs(self)
        self.playbooks = Playbooks(self)
        self.changes = Changes(self)
        self.approvals = Approvals(self)
        self.hosts = Hosts(self)

    def health(self) -> Dict[str, Any]:
        return self._transport.call("GET", "/health")[0]

    def ask(self, title: str, detail: str = "", risk: str = "medium", subject: Any = None,
            sandbox_id: Optional[str] = None, timeout_seconds: int = 3600) -> Approval:
        """Ask a person and wait for the answer (``.approved``, ``.note``). Undecided, it expires."""
        body = {"title": title, "detail": detail, "risk": risk, "subject": subject, "sandboxId": sandbox_id,
                "timeoutSeconds": timeout_seconds}
        return Approval.from_dict(self._transport.call("POST", "/v1/approvals/ask", body=body)[0])

    def _pages(self, path: str, query: Optional[Mapping[str, Any]] = None) -> Iterator[Any]:
        """Every item of a list route, following X-Next-Cursor."""
        q: Dict[str, Any] = dict(query or {})
        while True:
            items, headers = self._transport.call("GET", path, query=q)
            yield from items
            cursor = headers.get("x-next-cursor")
            if not cursor:
                return
            q["cursor"] = cursor
