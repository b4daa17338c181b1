/** Toast notifications. Errors show their code and message, never a stack trace. */
import { create } from 'zustand';
import { toErrorInfo } from '../lib/errors.ts';

export interface Toast {
  id: number;
  kind: 'error' | 'success' | 'info';
  title: string;
  message: string;
  code?: string;
}

interface ToastStore {
  toasts: Toast[];
}

export const useToasts = create<ToastStore>(() => ({ toasts: [] }));

let nextId = 1;

export function toast(t: Omit<Toast, 'id'>, ttlMs = t.kind === 'error' ? 12_000 : 5_000): number {
  const id = nextId++;
  useToasts.setState((s) => ({ toasts: [...s.toasts.slice(-4), { ...t, id }] }));
  if (ttlMs > 0) setTimeout(() => dismissToast(id), ttlMs);
  return id;
}

export function dismissToast(id: number): void {
  useToasts.setState((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) }));
}

/** Show an error as a toast: "<what> failed" with its code and message. */
export function toastError(err: unknown, what = 'The operation'): void {
  const e = toErrorInfo(err);
  toast({ kind: 'error', title: `${what} failed`, message: e.message, code: e.code });
}
