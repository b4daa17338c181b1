/**
 * The shipped demo, one click from the Agent view: what it shows, what it needs (the lab's production
 * VM registered as a target), and a button that saves the demo's provider (the scripted model in
 * Fluid's own process, at a price of $0 the person confirms like any price) and starts the session.
 */
import { useState } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { Callout, ErrorBox } from '../../components/ui.tsx';
import { toErrorInfo, type ErrorInfo } from '../../lib/errors.ts';
import { useBackendQuery } from '../../lib/hooks.ts';
import { withPresence } from '../../lib/presence.ts';
import { navigate } from '../../lib/route.ts';
import { upsertSession } from '../../stores/agent.ts';
import { rpc } from '../../stores/connection.ts';
import { reloadProviders } from '../../stores/providers.ts';

export function DemoCard() {
  const info = useBackendQuery((b, signal) => b.call('agent.demo', {}, { signal }), []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const demo = info.data;
  if (!demo) return null;

  async function start() {
    setBusy(true);
    setError(null);
    try {
      // Asked again: the scenario starts from its first step, and a demo still running is shown instead.
      const d = await rpc().call('agent.demo', {});
      if (d.running) return navigate('agent', d.running);
      if (d.missing || !d.baseUrl) return;
      const provider = {
        id: d.providerId,
        kind: 'anthropic' as const,
        label: 'Demo (scripted model)',
        baseUrl: d.baseUrl,
        model: d.model,
        apiKey: 'scripted-demo',
        inputPerMTok: 0,
        outputPerMTok: 0,
        // Not the default for the person's own sessions; the demo names it.
        isDefault: false,
      };
      await withPresence('providers.save', { ...provider, apiKey: 'set' }, (presence) =>
        rpc().call('providers.save', { ...provider, presence }),
      );
      void reloadProviders();
      const session = await rpc().call('agent.sessions.create', {
        task: d.task,
        mode: 'edit',
        providerId: d.providerId,
        ...(d.host ? { host: d.host } : {}),
        source: d.source,
      });
      upsertSession(session);
      navigate('agent', session.id);
    } catch (err) {
      setError(toErrorInfo(err));
    } finally {
      setBusy(false);
    }
  }

  return (
    <section className="demo-card" aria-label="Demo">
      <Callout tone="info" icon="agent" title={`Demo: ${demo.title}`}>
        <p>{demo.description}</p>
        {demo.missing ? (
          <p className="muted small" data-testid="demo-missing">
            {demo.missing}
          </p>
        ) : (
          <p className="muted small">
            On {demo.host}, source {demo.source}; the change goes to {demo.target} for your review.
          </p>
        )}
        <button
          type="button"
          className="btn btn-small"
          disabled={busy || !!demo.missing}
          onClick={() => void start()}
        >
          <Icon name="agent" size={12} /> {demo.running ? 'Show the running demo' : 'Run the demo'}
        </button>
      </Callout>
      {error && <ErrorBox error={error} title="The demo could not start" />}
    </section>
  );
}
