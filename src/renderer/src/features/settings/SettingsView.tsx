/**
 * Settings: General (a form generated from the settings schema, validated by the backend; system info
 * and doctor), Providers (the models agents use) and Agent (limits and approval rules).
 */
import { useEffect } from 'react';
import { Icon } from '../../components/Icon.tsx';
import { Badge, ErrorBox, KV, Section, Spinner, StatusIcon } from '../../components/ui.tsx';
import { useBackendQuery } from '../../lib/hooks.ts';
import { href } from '../../lib/route.ts';
import { useConnection } from '../../stores/connection.ts';
import { useSandboxes } from '../../stores/sandboxes.ts';
import { useSettings } from '../../stores/settings.ts';
import { useSystem } from '../../stores/system.ts';
import { AgentSettings } from './AgentSettings.tsx';
import { ProvidersPanel } from './ProvidersPanel.tsx';
import { SecurityPanel } from './SecurityPanel.tsx';
import { TokensPanel } from './TokensPanel.tsx';
import { SETTINGS_SECTIONS, SettingsForm } from './SettingsForm.tsx';

/** Settings → General: everything but the agent's (Settings → Agent). */
const GENERAL = SETTINGS_SECTIONS.filter((s) => s.key !== 'agent' && s.key !== 'approvals');

function SystemPanel() {
  const info = useSystem((s) => s.info);
  const door = useConnection((s) => s.door);
  const doctor = useBackendQuery((b, signal) => b.call('system.doctor', {}, { signal }), []);
  return (
    <>
      <Section title="This installation">
        {info ? (
          <dl className="kv">
            <KV label="Version">{info.version}</KV>
            <KV label="Door">{door === 'app' ? 'desktop app' : 'web mode'}</KV>
            <KV label="You are" mono>
              {info.actor.door}:{info.actor.id}
            </KV>
            <KV label="Data directory" mono>
              {info.dataDir}
            </KV>
            <KV label="Database" mono>
              {info.dbPath} (schema {info.schemaVersion})
            </KV>
            <KV label="Backend">
              {info.platform}, Node {info.node}, pid {info.pid}
            </KV>
          </dl>
        ) : (
          <Spinner label="Loading" />
        )}
      </Section>
      <Section
        title="Doctor"
        actions={
          <button type="button" className="btn btn-small" onClick={doctor.reload} disabled={doctor.loading}>
            <Icon name="refresh" size={12} /> Run again
          </button>
        }
      >
        {doctor.error ? (
          <ErrorBox error={doctor.error} title="The doctor could not run" />
        ) : doctor.data ? (
          <>
            <p>
              {doctor.data.ok ? <Badge tone="ok">Healthy</Badge> : <Badge tone="fail">Needs attention</Badge>}
            </p>
            <ul className="checks" aria-label="Doctor checks">
              {doctor.data.checks.map((c) => (
                <li key={c.id} className={`check check-${c.status}`} data-check={c.id}>
                  <StatusIcon status={c.status} />
                  <div className="check-body">
                    <div className="check-title">{c.title}</div>
                    <div className="check-detail mono small">{c.detail}</div>
                    {c.advice && <div className="check-advice">{c.advice}</div>}
                  </div>
                </li>
              ))}
            </ul>
          </>
        ) : (
          <Spinner label="Running the doctor" />
        )}
      </Section>
    </>
  );
}

/** How full the warm pool is (Settings → Sandboxes → Warm pool), again after each change. */
function PoolPanel() {
  const lines = useSettings((s) => s.settings?.sandboxes.warmPool);
  const sandboxes = useSandboxes((s) => s.byId);
  const pool = useBackendQuery(
    (b, signal) => b.call('sandboxes.pool', {}, { signal }),
    [],
    [lines, sandboxes],
  );
  const filling = !!pool.data?.some((p) => p.ready < p.size);
  const { reload } = pool;
  // Members are made in the background: look again while the pool is not full.
  useEffect(() => {
    if (!filling) return;
    const t = setInterval(reload, 5000);
    return () => clearInterval(t);
  }, [filling, reload]);
  if (!lines?.length) return null;
  return (
    <Section title="Warm pool">
      {pool.error ? (
        <ErrorBox error={pool.error} title="The warm pool could not be read" />
      ) : pool.data ? (
        <ul className="checks" aria-label="Warm pool">
          {pool.data.map((p) => (
            <li
              key={`${p.host}/${p.source}`}
              className={`check check-${p.ready >= p.size ? 'pass' : 'warn'}`}
              data-pool={p.source}
            >
              <StatusIcon status={p.ready >= p.size ? 'pass' : 'warn'} />
              <div className="check-body">
                <div className="check-title">
                  {p.source} on {p.host}: {p.ready}/{p.size} ready
                  {p.filling ? `, ${p.filling} being made` : ''}
                </div>
                {p.note && <div className="check-detail small">{p.note}</div>}
              </div>
            </li>
          ))}
        </ul>
      ) : (
        <Spinner label="Reading the warm pool" />
      )}
    </Section>
  );
}

type SettingsTab = 'general' | 'providers' | 'agent' | 'security' | 'tokens';

const TABS: { id: SettingsTab; label: string; icon: string }[] = [
  { id: 'general', label: 'General', icon: 'gear' },
  { id: 'providers', label: 'Providers', icon: 'plug' },
  { id: 'agent', label: 'Agent', icon: 'agent' },
  { id: 'security', label: 'Security', icon: 'key' },
  { id: 'tokens', label: 'API tokens', icon: 'plug' },
];

function SettingsTabs({ current }: { current: SettingsTab }) {
  return (
    <nav className="tabs page-tabs" aria-label="Settings views">
      {TABS.map((t) => (
        <a
          key={t.id}
          className={current === t.id ? 'tab active' : 'tab'}
          href={t.id === 'general' ? href('settings') : href('settings', t.id)}
          aria-current={current === t.id ? 'page' : undefined}
        >
          <Icon name={t.icon} size={14} /> {t.label}
        </a>
      ))}
    </nav>
  );
}

/** Routes: #/settings (general), #/settings/providers, #/settings/agent, #/settings/security. */
export function SettingsView({ sub = [] }: { sub?: string[] }) {
  const tab: SettingsTab =
    (['providers', 'agent', 'security', 'tokens'] as const).find((t) => t === sub[0]) ?? 'general';
  return (
    <div className="page-pad settings-wrap">
      <SettingsTabs current={tab} />
      {tab === 'general' && (
        <div className="settings-page">
          <div className="settings-main">
            <SettingsForm sections={GENERAL} />
          </div>
          <div className="settings-side">
            <PoolPanel />
            <SystemPanel />
          </div>
        </div>
      )}
      {tab === 'providers' && <ProvidersPanel />}
      {tab === 'agent' && <AgentSettings />}
      {tab === 'security' && <SecurityPanel />}
      {tab === 'tokens' && <TokensPanel />}
    </div>
  );
}
