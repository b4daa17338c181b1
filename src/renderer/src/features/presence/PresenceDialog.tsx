/**
 * The in-window confirmation of presence (no security key enrolled): names exactly what is being
 * confirmed; Cancel is the default. Mounted once at the app root.
 */
import { Callout, Modal } from '../../components/ui.tsx';
import { usePresencePrompt } from '../../lib/presence.ts';

export function PresenceDialog() {
  const pending = usePresencePrompt((s) => s.pending);
  if (!pending) return null;
  return (
    <Modal
      title="Confirm it is you"
      onClose={() => pending.resolve(false)}
      footer={
        <>
          <button type="button" className="btn" autoFocus onClick={() => pending.resolve(false)}>
            Cancel
          </button>
          <button
            type="button"
            className="btn btn-primary"
            data-testid="presence-confirm"
            onClick={() => pending.resolve(true)}
          >
            Yes, {pending.what}
          </button>
        </>
      }
    >
      <p>
        You are about to <strong data-testid="presence-what">{pending.what}</strong>.
      </p>
      <Callout tone="info" title="Only a person decides this">
        Agents can ask for it but never confirm it. Enrol a passkey or security key in Settings → Security and
        it will be asked for instead of this confirmation.
      </Callout>
    </Modal>
  );
}
