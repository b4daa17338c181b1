/**
 * Declarative wizards: a wizard is a list of steps (data), rendered by one generic <Wizard>.
 * Each step says what it shows, when the user may continue, what happens on entering it and what
 * "Continue" does. Steps can be skipped depending on the state (e.g. the local host needs no SSH).
 */
import type { ComponentType } from 'react';
import { create, type StoreApi, type UseBoundStore } from 'zustand';

export interface StepContext<S> {
  state: S;
  /** The latest state (for async work that outlives a render). */
  get: () => S;
  update: (patch: Partial<S> | ((s: S) => Partial<S>)) => void;
  goTo: (stepId: string) => void;
  next: () => void;
  back: () => void;
}

export interface WizardStep<S> {
  id: string;
  title: string;
  description: string;
  component: ComponentType<StepContext<S>>;
  /** May the user press Continue now? */
  canContinue: (state: S) => boolean;
  /** Leave the step out (and out of the indicator) for this state. */
  skip?: (state: S) => boolean;
  /** Runs each time the step is entered. */
  onEnter?: (ctx: StepContext<S>) => void | Promise<void>;
  /** Runs on Continue; resolve `false` (or throw) to stay on the step. */
  complete?: (ctx: StepContext<S>) => boolean | void | Promise<boolean | void>;
  continueLabel?: string | ((state: S) => string);
  busyLabel?: string;
  /** Hide Back (e.g. once a host was registered, going back would register it twice). */
  noBack?: boolean | ((state: S) => boolean);
}

export interface WizardModel<S> {
  stepId: string;
  /** Bumped on every step change, so onEnter runs once per visit. */
  visit: number;
  state: S;
}

export type WizardStore<S> = UseBoundStore<StoreApi<WizardModel<S>>>;

export interface WizardPersistence<S> {
  /** sessionStorage key: the wizard survives a reload of this tab (not a new tab or window). */
  key: string;
  /** What of the state to keep (nothing secret, nothing that is only true for a moment). */
  pick: (s: S) => Partial<S>;
}

export function createWizardStore<S>(
  first: string,
  initial: () => S,
  persist?: WizardPersistence<S>,
): WizardStore<S> & { reset(): void } {
  const restored = persist ? restore<S>(persist.key) : null;
  const store = create<WizardModel<S>>(() => ({
    stepId: restored?.stepId ?? first,
    visit: 1,
    state: { ...initial(), ...(restored?.state ?? {}) },
  }));
  if (persist)
    store.subscribe((m) => {
      try {
        sessionStorage.setItem(
          persist.key,
          JSON.stringify({ stepId: m.stepId, state: persist.pick(m.state) }),
        );
      } catch {
        // storage off or full: the wizard lasts for this page
      }
    });
  return Object.assign(store, {
    reset: () => {
      if (persist) sessionStorage.removeItem(persist.key);
      store.setState((m) => ({ stepId: first, visit: m.visit + 1, state: initial() }));
    },
  });
}

function restore<S>(key: string): { stepId: string; state: Partial<S> } | null {
  try {
    const v = JSON.parse(sessionStorage.getItem(key) ?? 'null') as {
      stepId?: unknown;
      state?: unknown;
    } | null;
    if (!v || typeof v.stepId !== 'string' || !v.state || typeof v.state !== 'object') return null;
    return { stepId: v.stepId, state: v.state as Partial<S> };
  } catch {
    return null;
  }
}

export function activeSteps<S>(steps: WizardStep<S>[], state: S): WizardStep<S>[] {
  return steps.filter((s) => !s.skip?.(state));
}
