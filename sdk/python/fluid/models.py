"""Typed answers of the HTTP API.

Each model mirrors one schema of the server's OpenAPI document (``__schema__``): the same fields,
in snake_case (``json`` metadata names the wire field where the rule does not), required where the
schema requires them. ``tests/test_models.py`` fails when the two drift apart. Nested objects that
have no model here stay plain dicts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Type, TypeVar

T = TypeVar("T", bound="Model")


def wire_name(f: "dataclasses.Field[Any]") -> str:
    """The JSON field a dataclass field reads."""
    explicit = f.metadata.get("json")
    if explicit:
        return str(explicit)
    head, *rest = f.name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _wire(name: str) -> Dict[str, Any]:
    return {"json": name}


class Model:
    """Base of the models: built from the server's JSON, unknown fields ignored."""

    __schema__ = ""
    #: fields holding another model (or a list of them)
    __nested__: Dict[str, Any] = {}

    @classmethod
    def from_dict(cls: Type[T], data: Dict[str, Any]) -> T:
        kwargs: Dict[str, Any] = {}
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            key = wire_name(f)
            if key not in data:
                continue
            value = data[key]
            nested = cls.__nested__.get(f.name)
            if nested is not None and value is not None:
                value = [nested.from_dict(v) for v in value] if isinstance(value, list) else nested.from_dict(value)
            kwargs[f.name] = value
        return cls(**kwargs)

    def to_dict(self) -> Dict[str, Any]:
        out: Dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if isinstance(v, Model):
                v = v.to_dict()
            elif isinstance(v, list):
                v = [x.to_dict() if isinstance(x, Model) else x for x in v]
            out[wire_name(f)] = v
        return out


@dataclass
class Task(Model):
    """Long work: creation, start, diff, playbook generation and verification, change submission."""

    __schema__ = "Task"
    id: str
    kind: str
    title: str
    target: Optional[str]
    status: str
    progress: Optional[float]
    message: str
    cancellable: bool
    created_at: str
    updated_at: str
    finished_at: Optional[str]
    result: Any
    error: Optional[Dict[str, Any]]

    @property
    def done(self) -> bool:
        return self.status != "running"


@dataclass
class Sandbox(Model):
    __schema__ = "Sandbox"
    id: str
    name: str
    host_id: str
    host_name: str
    source_name: str
    base_id: Optional[str]
    base_fingerprint: Optional[str]
    state: str
    domain_name: str
    vcpus: int
    memory_mib: int = field(metadata=_wire("memoryMiB"))
    ip: Optional[str] = None
    mac: Optional[str] = None
    ttl_minutes: Optional[int] = None
    expires_at: Optional[str] = None
    created_at: str = ""
    updated_at: str = ""
    created_by: Dict[str, Any] = field(default_factory=dict)
    start_path: Optional[str] = None
    start_path_reason: Optional[str] = None
    timings: Dict[str, float] = field(default_factory=dict)
    host_key_fingerprint: Optional[str] = None
    egress_allow: List[str] = field(default_factory=list)
    egress_warnings: Optional[List[Dict[str, Any]]] = None
    egress_health: Optional[Dict[str, Any]] = None
    error: Optional[Dict[str, Any]] = None
    task_id: Optional[str] = None
    #: how Fluid chose the host, when it chose it
    placement: Optional[Dict[str, Any]] = None
    #: the agent session working in it, if any
    session: Optional[Dict[str, Any]] = None

    #: schema fields that are required there but defaulted here (dataclass field order)
    __defaulted_required__ = (
        "ip mac ttl_minutes expires_at created_at updated_at created_by start_path start_path_reason "
        "timings host_key_fingerprint egress_allow error task_id"
    ).split()


@dataclass
class CreateSandboxResponse(Model):
    """What ``create_sandbox`` returns, as the original SDK did: ``.sandbox`` and ``.ip_address``."""

    __schema__ = "CompatCreateSandboxResponse"
    __nested__ = {"sandbox": Sandbox}
    sandbox: Sandbox
    ip_address: Optional[str] = field(metadata=_wire("ip_address"))


@dataclass
class Snapshot(Model):
    __schema__ = "Snapshot"
    id: str
    sandbox_id: str
    name: str
    kind: str
    created_at: str
    created_by: Dict[str, Any]


@dataclass
class ExecResult(Model):
    """A command's outcome (it ran as root in the sandbox)."""

    __schema__ = "ExecResult"
    exit_code: Optional[int]
    signal: Optional[str]
    stdout: str
    stderr: str
    truncated: bool
    timed_out: bool
    duration_ms: float


@dataclass
class Approval(Model):
    """A request for a person's decision (``ask`` files one of kind "ask")."""

    __schema__ = "Approval"
    id: str
    kind: str
    title: str
    detail: str
    risk: str
    subject: Any
    subject_hash: str
    requested_by: Dict[str, Any]
    sandbox_id: Optional[str]
    session_id: Optional[str]
    status: str
    decided_by: Optional[Dict[str, Any]]
    decided_via: Optional[str]
    decided_at: Optional[str]
    note: Optional[str]
    created_at: str
    expires_at: Optional[str]
    sandbox_exists: Optional[bool] = None
    sandbox_name: Optional[str] = None
    session_title: Optional[str] = None

    @property
    def approved(self) -> bool:
        return self.status == "approved"


@dataclass
class DiffSummary(Model):
    __schema__ = "DiffSummary"
    id: str
    sandbox_id: str
    from_: Dict[str, Any] = field(metadata=_wire("from"))
    to: Dict[str, Any] = field(metadata=_wire("to"))
    created_at: str = ""
    method: str = ""
    counts: Dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    __defaulted_required__ = "created_at method counts sha256".split()


@dataclass
class Diff(Model):
    """What changed on a sandbox's disk: files, packages, services, users, cron…  (items as dicts)."""

    __schema__ = "Diff"
    id: str
    sandbox_id: str
    from_: Dict[str, Any] = field(metadata=_wire("from"))
    to: Dict[str, Any] = field(metadata=_wire("to"))
    created_at: str = ""
    created_by: Dict[str, Any] = field(default_factory=dict)
    method: str = ""
    consistency: Dict[str, Any] = field(default_factory=dict)
    items: List[Dict[str, Any]] = field(default_factory=list)
    excluded: List[str] = field(default_factory=list)
    counts: Dict[str, Any] = field(default_factory=dict)
    noise_rules: Dict[str, str] = field(default_factory=dict)
    noise: Optional[List[Dict[str, Any]]] = None
    stats: Dict[str, Any] = field(default_factory=dict)
    timings: Dict[str, float] = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)
    filesystem: Dict[str, Any] = field(default_factory=dict)
    sha256: str = ""

    __defaulted_required__ = (
        "created_at created_by method consistency items excluded counts noise_rules noise stats "
        "timings warnings filesystem sha256"
    ).split()

    def paths(self) -> List[str]:
        """The paths of the file items."""
        return [str(i.get("path")) for i in self.items if i.get("kind") == "file"]


@dataclass
class Change(Model):
    """A reviewable change: a verified playbook and its preview on the target, sealed by sha256."""

    __schema__ = "Change"
    id: str
    title: str
    sha256: Optional[str]
    status: str
    status_detail: str
    target: Dict[str, Any]
    playbook: Dict[str, Any]
    sandbox: Optional[Dict[str, Any]]
    diff: Optional[Dict[str, Any]]
    verification: Optional[Dict[str, Any]]
    baseline: Optional[Dict[str, Any]]
    preview: Optional[Dict[str, Any]]
    approval: Optional[Dict[str, Any]]
    applies: List[Dict[str, Any]]
    warnings: List[str]
    error: Optional[Dict[str, Any]]
    submit_task_id: Optional[str]
    created_at: str
    created_by: Dict[str, Any]
    session_id: Optional[str]


@dataclass
class Host(Model):
    __schema__ = "Host"
    id: str
    name: str
    kind: str
    address: str
    port: int
    user: str
    auth: Dict[str, Any]
    host_key: Optional[Dict[str, Any]]
    libvirt_uri: str
    storage_dir: str
    created_at: str
    last_check: Optional[Dict[str, Any]]
    same_machine_as: Optional[List[Dict[str, Any]]] = None


MODELS: List[Type[Model]] = [
    Task,
    Sandbox,
    CreateSandboxResponse,
    Snapshot,
    ExecResult,
    Approval,
    DiffSummary,
    Diff,
    Change,
    Host,
]
