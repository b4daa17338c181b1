/**
 * The "New sandbox" dialog's state, kept outside the component so the form survives a retry and the
 * progress view survives re-renders of the list behind it.
 */
import { create } from 'zustand';
import type { Contract } from '../../../../shared/contract/index.ts';
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
