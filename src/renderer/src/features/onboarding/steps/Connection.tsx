import { Field } from '../../../components/ui.tsx';
import { validateDraft, type HostDraft, type HostWizardState } from '../state.ts';
import type { StepContext } from '../wizard.ts';

export function ConnectionStep({ state, update }: StepContext<HostWizardState>) {
  const d = state.draft;
  const errors = state.touched ? { ...validateDraft(d), ...state.fieldErrors } : state.fieldErrors;
  const set = (patch: Partial<HostDraft>) =>
    update((s) => {
      const fieldErrors = { ...s.fieldErrors };
      for (const k of Object.keys(patch) as Array<keyof HostDraft>) delete fieldErrors[k];
      if ('authType' in patch) delete fieldErrors.keyPath;
      return { draft: { ...s.draft, ...patch }, fieldErrors };
    });
  return (
    <div className="form-grid">
      <div className="form-row">
        <Field label="Address" help="Host name or IP address of the libvirt host." error={errors.address}>
          {(p) => (
            <input
              {...p}
              className="input"
              autoComplete="off"
              spellCheck={false}
              placeholder="kvm1.example.com"
              value={d.address}
              onChange={(e) => set({ address: e.target.value })}
            />
          )}
        </Field>
        <Field label="Port" error={errors.port}>
          {(p) => (
            <input
              {...p}
              className="input input-port"
              inputMode="numeric"
              value={d.port}
              onChange={(e) => set({ port: e.target.value })}
            />
          )}
        </Field>
      </div>
      <Field
        label="User"
        help='Root, or a user in the "libvirt" group that may manage qemu:///system.'
        error={errors.user}
      >
        {(p) => (
          <input
            {...p}
            className="input"
            autoComplete="off"
            spellCheck={false}
            value={d.user}
            onChange={(e) => set({ user: e.target.value })}
          />
        )}
      </Field>
      <fieldset className="radio-row">
        <legend className="field-label">Authentication</legend>
        <label className="radio">
          <input
            type="radio"
            name="auth-type"
            checked={d.authType === 'key'}
            onChange={() => set({ authType: 'key' })}
          />
          Key file
        </label>
        <label className="radio">
          <input
            type="radio"
            name="auth-type"
            checked={d.authType === 'agent'}
            onChange={() => set({ authType: 'agent' })}
          />
          SSH agent
        </label>
      </fieldset>
      {d.authType === 'key' ? (
        <Field
          label="Private key file"
          help="A path on the machine that runs the Fluid backend (not uploaded anywhere). Keys with a passphrase: use the SSH agent."
          error={errors.keyPath}
        >
          {(p) => (
            <input
              {...p}
              className="input mono"
              autoComplete="off"
              spellCheck={false}
              placeholder="/home/you/.ssh/id_ed25519"
              value={d.keyPath}
              onChange={(e) => set({ keyPath: e.target.value })}
            />
          )}
        </Field>
      ) : (
        <Field
          label="Agent socket (optional)"
          help="Leave empty to use $SSH_AUTH_SOCK of the Fluid backend."
          error={errors.agentSocket}
        >
          {(p) => (
            <input
              {...p}
              className="input mono"
              autoComplete="off"
              spellCheck={false}
              value={d.agentSocket}
              onChange={(e) => set({ agentSocket: e.target.value })}
            />
          )}
        </Field>
      )}
      <Field
        label="Name (optional)"
        help="How Fluid shows this host. Defaults to the address."
        error={errors.name}
      >
        {(p) => (
          <input
            {...p}
            className="input"
            autoComplete="off"
            spellCheck={false}
            placeholder={d.address ? (d.port === '22' ? d.address : `${d.address}-${d.port}`) : 'kvm1'}
            value={d.name}
            onChange={(e) => set({ name: e.target.value })}
          />
        )}
      </Field>
      <details className="advanced">
        <summary>Advanced</summary>
        <Field label="libvirt URI" help="Where virsh connects on the host." error={errors.libvirtUri}>
          {(p) => (
            <input
              {...p}
              className="input mono"
              spellCheck={false}
              value={d.libvirtUri}
              onChange={(e) => set({ libvirtUri: e.target.value })}
            />
          )}
        </Field>
      </details>
    </div>
  );
}
