"""Fluid's HTTP API from Python (standard library only).

    from fluid import Fluid

    client = Fluid("http://127.0.0.1:8080", "fluid_a_...")
    sandbox = client.sandbox.create_sandbox(source_vm_name="web-01", wait_for_ip=True).sandbox
    try:
        print(client.sandbox.run_command(sandbox.id, "uname -a").stdout)
    finally:
        client.sandbox.destroy_sandbox(sandbox.id)
"""

from .client import Fluid
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

__all__ = [
    "Approval",
    "Change",
    "CreateSandboxResponse",
    "Diff",
    "DiffSummary",
    "ExecResult",
    "Fluid",
    "FluidError",
    "Host",
    "Sandbox",
    "Snapshot",
    "Task",
]
