# Fluid's JSON events callback for ansible-playbook.
#
# Debian 12's ansible-core (2.14) ships no JSON callback (ansible.posix.json lives in the separate
# "ansible" collections package), so Fluid brings this one. It is an aggregate callback: the default
# stdout callback still writes the human log, and this one writes one JSON object per line to the
# file descriptor named by FLUID_ANSIBLE_EVENTS_FD, as things happen:
#
#   {"event": "task", "play": ..., "task": ..., "action": ..., "handler": bool}
#   {"event": "result", "play": ..., "task": ..., "action": ..., "host": ..., "status":
#    "ok" | "changed" | "failed" | "skipped" | "unreachable", "changed": bool, "handler": bool,
#    "message": str | null, "duration_ms": int | null}
#   {"event": "diff", "task": ..., "host": ..., "diff": unified diff text}   (with --diff only)
#   {"event": "stats", "hosts": {host: {"ok": n, "changed": n, "failures": n, ...}}}
#
# Fluid reads whether each task changed something from these events, never from the text log.
# A task with no_log never reports its message.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
    name: fluid_json
    type: aggregate
    short_description: Per-task results as JSON lines on a file descriptor (for Fluid)
    description:
      - Writes one JSON object per event to the descriptor named by FLUID_ANSIBLE_EVENTS_FD.
    requirements:
      - enable in configuration (callbacks_enabled)
"""

import json
import os
import time

from ansible.plugins.callback import CallbackBase

MAX_MESSAGE = 4000


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fluid_json"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        fd = os.environ.get("FLUID_ANSIBLE_EVENTS_FD")
        self._out = os.fdopen(int(fd), "w", buffering=1, encoding="utf-8") if fd else None
        self._play = ""
        self._started = {}

    def _emit(self, obj):
        if self._out is None:
            return
        try:
            self._out.write(json.dumps(obj, sort_keys=True, default=str) + "\n")
            self._out.flush()
        except (OSError, ValueError):
            self._out = None

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()

    def _task_start(self, task, handler):
        self._started[task._uuid] = time.monotonic()
        self._emit({"event": "task", "play": self._play, "task": task.get_name().strip(), "action": task.action, "handler": handler})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_start(task, False)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_start(task, True)

    def _result(self, result, status):
        task = result._task
        res = result._result or {}
        changed = bool(res.get("changed", False)) if status in ("ok", "failed") else False
        if status == "ok" and changed:
            status = "changed"
        message = None
        if task.no_log or res.get("_ansible_no_log"):
            message = "output hidden (no_log)" if status in ("failed", "unreachable") else None
        else:
            parts = []
            for key in ("msg", "stderr", "reason"):
                v = res.get(key)
                if isinstance(v, str) and v.strip():
                    parts.append(v.strip())
            if status == "failed" and not parts and isinstance(res.get("stdout"), str):
                parts.append(res["stdout"].strip())
            message = "\n".join(parts)[-MAX_MESSAGE:] or None
        started = self._started.get(task._uuid)
        handler = bool(getattr(task, "_role", None) is None and task.__class__.__name__ == "Handler")
        self._emit(
            {
                "event": "result",
                "play": self._play,
                "task": task.get_name().strip(),
                "action": task.action,
                "host": result._host.get_name(),
                "status": status,
                "changed": changed,
                "handler": handler,
                "message": message,
                "duration_ms": int((time.monotonic() - started) * 1000) if started else None,
            }
        )

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_on_file_diff(self, result):
        # With --diff (check-mode previews): what a task would change in a file. Never for no_log tasks.
        task = result._task
        res = result._result or {}
        if task.no_log or res.get("_ansible_no_log") or "diff" not in res:
            return
        diffs = res["diff"] if isinstance(res["diff"], list) else [res["diff"]]
        text = "".join(self._get_diff(d) for d in diffs if d)
        if text:
            self._emit({"event": "diff", "task": task.get_name().strip(), "host": result._host.get_name(), "diff": text[-200000:]})

    def v2_playbook_on_stats(self, stats):
        hosts = {}
        for h in sorted(stats.processed.keys()):
            hosts[h] = stats.summarize(h)
        self._emit({"event": "stats", "hosts": hosts})
