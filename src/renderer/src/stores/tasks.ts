/** Tasks: snapshot with tasks.list, then tasks.changed deltas (newest state wins by updatedAt). */
import { create } from 'zustand';
import type { Task } from '../../../shared/contract/tasks.ts';
import type { Backend } from '../backend.ts';
import { toast, toastError } from './toasts.ts';

export interface TaskLogLine {
  at: string;
  message: string;
  progress: number | null;
}

interface TasksStore {
  loaded: boolean;
  byId: Record<string, Task>;
  /** Each message a task showed while this window followed it, in order (for live progress views). */
  log: Record<string, TaskLogLine[]>;
}

export const useTasks = create<TasksStore>(() => ({ loaded: false, byId: {}, log: {} }));

const MAX_LOG = 200;

function appendLog(log: TasksStore['log'], t: Task): TasksStore['log'] {
  const lines = log[t.id] ?? [];
  if (!t.message || lines.at(-1)?.message === t.message) return log;
  return {
    ...log,
    [t.id]: [...lines.slice(-(MAX_LOG - 1)), { at: t.updatedAt, message: t.message, progress: t.progress }],
  };
}

/** Events arrive in order; a snapshot may be older than an event that overtook it. */
const newer = (a: Task, b: Task | undefined) =>
  !b || a.updatedAt > b.updatedAt || (a.updatedAt === b.updatedAt && b.status === 'running');

export function upsertTask(t: Task): void {
  const prev = useTasks.getState().byId[t.id];
  if (!newer(t, prev)) return;
  useTasks.setState((s) => ({ byId: { ...s.byId, [t.id]: t }, log: appendLog(s.log, t) }));
}

/** Tasks a view is showing right now (their failure is on screen already: no toast). */
const shown = new Map<string, number>();

export function showTaskInView(id: string): () => void {
  shown.set(id, (shown.get(id) ?? 0) + 1);
  return () => {
    const n = (shown.get(id) ?? 1) - 1;
    if (n > 0) shown.set(id, n);
    else shown.delete(id);
  };
}

export function attachTasks(backend: Backend): () => void {
  let alive = true;
  const off = backend.on('tasks.changed', (t) => {
    const prev = useTasks.getState().byId[t.id];
    upsertTask(t);
    // Tell about failures the user may not be looking at; the view that started the task shows details.
    if (prev?.status === 'running' && t.status === 'failed' && t.error && !shown.has(t.id))
      toast({ kind: 'error', title: `${t.title} failed`, message: t.error.message, code: t.error.code });
  });
  backend.call('tasks.list', { limit: 100 }).then(
    (tasks) => {
      if (!alive) return;
      const byId = { ...useTasks.getState().byId };
      for (const t of tasks) if (newer(t, byId[t.id])) byId[t.id] = t;
      useTasks.setState({ loaded: true, byId });
    },
    (err: unknown) => alive && toastError(err, 'Loading tasks'),
  );
  return () => {
    alive = false;
    off();
  };
}

export function sortTasks(tasks: Task[]): Task[] {
  return [...tasks].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
}

/** The newest task of a kind for a target (e.g. the last preflight of a host). */
export function latestTask(byId: Record<string, Task>, kind: string, target: string): Task | null {
  let best: Task | null = null;
  for (const t of Object.values(byId))
    if (t.kind === kind && t.target === target && (!best || t.createdAt > best.createdAt)) best = t;
  return best;
}
