# Fluid's diff callback for ansible-playbook --diff (the production preview and the post-apply check).
#
# An aggregate callback beside fluid_json: for every task result that carries a diff (check mode
# with --diff), it writes one JSON line to the file descriptor named by FLUID_ANSIBLE_EVENTS_FD:
#
#   {"event": "diff", "play": ..., "task": ..., "host": ..., "diff": "<unified diff text>"}
#
# The text is what Ansible's default output shows for --diff. A task with no_log never reports its
# diff (the line says it is hidden), so a secret a task writes never reaches Fluid's records.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = """
    name: fluid_preview
    type: aggregate
    short_description: Per-task diffs as JSON lines on a file descriptor (for Fluid)
    description:
      - Writes one JSON object per task diff to the descriptor named by FLUID_ANSIBLE_EVENTS_FD.
    requirements:
      - enable in configuration (callbacks_enabled)
"""

import json
import os

from ansible.plugins.callback import CallbackBase

MAX_DIFF = 200000


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fluid_preview"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super(CallbackModule, self).__init__(display=display)
        fd = os.environ.get("FLUID_ANSIBLE_EVENTS_FD")
        # a second writer on the same descriptor: whole lines, flushed one at a time
        self._out = os.fdopen(os.dup(int(fd)), "w", buffering=1, encoding="utf-8") if fd else None
        self._play = ""

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

    def _diff_of(self, res):
        if not res.get("diff") or not res.get("changed", False):
            return None
        try:
            text = self._get_diff(res["diff"])
        except Exception as e:  # a module's odd diff must not stop the run
            text = "(the diff could not be rendered: %s)" % e
        return text[:MAX_DIFF] if text else None

    def v2_on_file_diff(self, result):
        task = result._task
        res = result._result or {}
        parts = []
        if task.loop and "results" in res:
            for item in res["results"]:
                d = self._diff_of(item)
                if d:
                    parts.append(d)
        else:
            d = self._diff_of(res)
            if d:
                parts.append(d)
        if not parts:
            return
        hidden = task.no_log or res.get("_ansible_no_log")
        self._emit(
            {
                "event": "diff",
                "play": self._play,
                "task": task.get_name().strip(),
                "host": result._host.get_name(),
                "diff": "(diff hidden: the task has no_log)" if hidden else "".join(parts),
            }
        )
