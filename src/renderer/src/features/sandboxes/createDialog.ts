/**
 * The "New sandbox" dialog's state, kept outside the component so the form survives a retry and the
 * progress view survives re-renders of the list behind it.
 */
import { create } from 'zustand';
import { contract, type Contract } from '../../../../shared/contract/index.ts';
import { humanizeIssue } from '../../lib/errors.ts';
import type { In } from '../../../../shared/rpc.ts';

export type StartMode = 'auto' | 'restore' | 'cold';

export interface CreateForm {
  hostId: string;
  source: string;
  name: string;
  /** null: the source's own size. */
  vcpus: string | null;
  memoryMiB: string | null;
  /** null: settings.sandboxes.defaultTtlMinutes. */
  ttlMinutes: string | null;
  /** One destination per line. */
  allow: string;
  start: StartMode;
}

export type CreateInput = In<Contract, 'sandboxes.create'>;

interface CreateDialogStore {
  open: boolean;
  form: CreateForm;
  /** The creation in progress (or finished) that the dialog follows. */
  taskId: string | null;
  /** What was submitted, for Retry. */
  submitted: CreateInput | null;
  /** sandboxes.create is in flight. */
  submitting: boolean;
}

const EMPTY: CreateForm = {
  hostId: '',
  source: '',
  name: '',
  vcpus: null,
  memoryMiB: null,
  ttlMinutes: null,
  allow: '',
  start: 'auto',
};

export const useCreateDialog = create<CreateDialogStore>(() => ({
  open: false,
  form: EMPTY,
  taskId: null,
  submitted: null,
  submitting: false,
}));

export function openCreateDialog(preset: Partial<CreateForm> = {}): void {
  useCreateDialog.setState((s) => ({
    open: true,
    taskId: null,
    form: { ...(s.taskId ? EMPTY : s.form), ...preset },
  }));
}

export function closeCreateDialog(): void {
  useCreateDialog.setState((s) => ({
    open: false,
    // A finished creation starts the next one from a clean form; a cancelled dialog keeps its input.
    form: s.taskId ? EMPTY : s.form,
    taskId: null,
  }));
}

export function patchCreateForm(patch: Partial<CreateForm>): void {
  useCreateDialog.setState((s) => ({ form: { ...s.form, ...patch } }));
}

export function followCreateTask(taskId: string, submitted: CreateInput): void {
  useCreateDialog.setState({ taskId, submitted });
}

/** Back from a failed creation to the form, with what was entered. */
export function backToCreateForm(): void {
  useCreateDialog.setState({ taskId: null });
}

export function setSubmitting(submitting: boolean): void {
  useCreateDialog.setState({ submitting });
}

export function parseWhole(v: string): number | null {
  return /^\s*\d+\s*$/.test(v) ? Number(v) : null;
}

/** The Host field's value when Fluid chooses (placement: the host with the source and the most room). */
export const AUTO_HOST = '*';

/** Form field for each input path of sandboxes.create. */
const FIELD_OF: Record<string, string> = {
  host: 'host',
  source: 'source',
  name: 'name',
  vcpus: 'vcpus',
  memoryMiB: 'memoryMiB',
  ttlMinutes: 'ttlMinutes',
  allow: 'allow',
  start: 'start',
};

/**
 * Every problem with the form at once: the contract's own schema for sandboxes.create, plus what only
 * the form knows (whole numbers typed as text, a source to choose).
 */
export function validateCreate(
  input: Record<string, unknown>,
  typed: { vcpus: string; memoryMiB: string; ttlMinutes: string; source: string },
): Record<string, string> {
  const errs: Record<string, string> = {};
  if (!typed.source) errs.source = 'Choose a source VM.';
  if (parseWhole(typed.vcpus) === null) errs.vcpus = 'Must be a whole number.';
  if (parseWhole(typed.memoryMiB) === null) errs.memoryMiB = 'Must be a whole number of MiB.';
  if (parseWhole(typed.ttlMinutes) === null) errs.ttlMinutes = 'Must be a whole number of minutes.';
  const r = contract['sandboxes.create'].input.safeParse(input);
  if (!r.success)
    for (const issue of r.error.issues) {
      const field = FIELD_OF[String(issue.path[0])];
      if (!field || errs[field]) continue;
      if (field === 'allow') {
        const bad = typeof issue.path[1] === 'number' ? (input.allow as string[])[issue.path[1]] : null;
        errs.allow = `Not a destination${bad ? `: ${bad}` : ''} (use host, host:port, *.domain or an IP).`;
      } else errs[field] = humanizeIssue(issue.message);
    }
  return errs;
}
