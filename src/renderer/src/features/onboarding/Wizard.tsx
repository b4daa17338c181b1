/** The one generic wizard: step indicator, the current step, Back / Continue. */
import { useEffect, useMemo, useRef, useState, type FormEvent } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { toastError } from '../../stores/toasts.ts';
import { activeSteps, type StepContext, type WizardStep, type WizardStore } from './wizard.ts';

export function Wizard<S>({
  steps,
  store,
  label,
  onFinish,
}: {
  steps: WizardStep<S>[];
  store: WizardStore<S>;
  label: string;
  onFinish?: (state: S) => void;
}) {
  const stepId = store((m) => m.stepId);
  const visit = store((m) => m.visit);
  const state = store((m) => m.state);
  const [busy, setBusy] = useState(false);
  const headingRef = useRef<HTMLHeadingElement>(null);
  const entered = useRef(0);

  const active = activeSteps(steps, state);
  const index = Math.max(
    0,
    active.findIndex((s) => s.id === stepId),
  );
  const step = active[index]!;

  // The step API without the state: stable for the life of the wizard.
  const actions = useMemo<Omit<StepContext<S>, 'state'>>(() => {
    const get = () => store.getState().state;
    const goTo = (id: string) => store.setState((m) => ({ stepId: id, visit: m.visit + 1 }));
    const move = (delta: 1 | -1) => {
      const list = activeSteps(steps, get());
      const i = list.findIndex((s) => s.id === store.getState().stepId);
      const target = list[i + delta];
      if (target) goTo(target.id);
    };
    return {
      get,
      update: (patch) =>
        store.setState((m) => ({
          state: { ...m.state, ...(typeof patch === 'function' ? patch(m.state) : patch) },
        })),
      goTo,
      next: () => move(1),
      back: () => move(-1),
    };
  }, [steps, store]);
  const ctx: StepContext<S> = { ...actions, state };
  const fresh = (): StepContext<S> => ({ ...actions, state: store.getState().state });

  // onEnter once per visit; focus the step's heading so screen readers announce the new step.
  useEffect(() => {
    if (entered.current === visit) return;
    const first = entered.current === 0;
    entered.current = visit;
    if (!first) headingRef.current?.focus();
    const s = activeSteps(steps, store.getState().state).find((x) => x.id === store.getState().stepId);
    Promise.resolve(s?.onEnter?.({ ...actions, state: store.getState().state })).catch((err: unknown) =>
      toastError(err, s?.title ?? 'The step'),
    );
  }, [visit, steps, store, actions]);

  const isLast = index === active.length - 1;
  const canContinue = step.canContinue(state) && !busy;
  const noBack = typeof step.noBack === 'function' ? step.noBack(state) : !!step.noBack;
  const continueLabel =
    (typeof step.continueLabel === 'function' ? step.continueLabel(state) : step.continueLabel) ??
    (isLast ? 'Finish' : 'Continue');

  async function onSubmit(e: FormEvent) {
    e.preventDefault();
    if (!step.canContinue(store.getState().state) || busy) return;
    setBusy(true);
    try {
      const ok = await step.complete?.(fresh());
      if (ok === false) return;
      if (isLast) onFinish?.(store.getState().state);
      else actions.next();
    } catch (err) {
      toastError(err, step.title);
    } finally {
      setBusy(false);
    }
  }

  const Step = step.component;
  return (
    <div className="wizard">
      <ol className="steps" aria-label={`${label} steps`}>
        {active.map((s, i) => (
          <li
            key={s.id}
            className={i < index ? 'step done' : i === index ? 'step current' : 'step'}
            aria-current={i === index ? 'step' : undefined}
          >
            <span className="step-num" aria-hidden="true">
              {i < index ? <Icon name="check" size={12} /> : i + 1}
            </span>
            <span className="step-name">
              {s.title}
              {i < index && <span className="sr-only"> (done)</span>}
            </span>
          </li>
        ))}
      </ol>
      <form className="wizard-card" onSubmit={(e) => void onSubmit(e)} noValidate aria-busy={busy}>
        <div className="wizard-head">
          <div className="wizard-count muted">
            Step {index + 1} of {active.length}
          </div>
          <h2 ref={headingRef} tabIndex={-1} className="wizard-title">
            {step.title}
          </h2>
          <p className="wizard-desc">{step.description}</p>
        </div>
        <div className="wizard-body" data-step={step.id}>
          <Step {...ctx} />
        </div>
        <div className="wizard-foot">
          {index > 0 && !noBack ? (
            <button type="button" className="btn" onClick={ctx.back} disabled={busy}>
              <Icon name="arrowLeft" size={14} /> Back
            </button>
          ) : (
            <span />
          )}
          <button
            type="submit"
            className="btn btn-primary"
            disabled={!canContinue}
            aria-disabled={!canContinue}
          >
            {busy ? (
              <>
                <span className="spinner small" aria-hidden="true" /> {step.busyLabel ?? 'Working…'}
              </>
            ) : (
              <>
                {continueLabel} {!isLast && <Icon name="arrowRight" size={14} />}
              </>
            )}
          </button>
        </div>
      </form>
    </div>
  );
}
