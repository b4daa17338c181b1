/** "What to do now": the steps before sandboxes, agents and playbooks can be used, from real state. */
import { useMemo } from 'react';
import { href } from '../lib/route.ts';
import { readiness, useHosts } from '../stores/hosts.ts';
import { Icon } from './Icon.tsx';

export function ReadinessChecklist() {
  const byId = useHosts((s) => s.byId);
  const { checked, ready } = useMemo(() => {
    const hosts = Object.values(byId);
    return {
      checked: hosts.filter((h) => h.lastCheck),
      ready: hosts.filter((h) => ['ready', 'warnings'].includes(readiness(h))),
    };
  }, [byId]);
  const items = [
    {
      done: checked.length > 0,
      text: checked.length ? (
        <>
          Host checked:{' '}
          {checked.map((h, i) => (
            <span key={h.id}>
              {i > 0 && ', '}
              <a href={href('hosts', h.id)}>{h.name}</a>
            </span>
          ))}
        </>
      ) : (
        <>
          <a href={href('onboarding')}>Add a host and check it</a>: this machine or a KVM server over SSH.
        </>
      ),
    },
    {
      done: ready.length > 0,
      text: ready.length ? (
        <>Ready for sandboxes: {ready.map((h) => h.name).join(', ')}</>
      ) : (
        <>
          Make a host pass its preflight: <a href={href('hosts')}>Hosts</a> shows what to fix.
        </>
      ),
    },
  ];
  return (
    <ol className="checklist" aria-label="What to do now">
      {items.map((it, i) => (
        <li key={i} className={it.done ? 'done' : undefined}>
          <span className="checklist-mark" aria-hidden="true">
            {it.done ? <Icon name="check" size={12} /> : i + 1}
          </span>
          <span>
            {it.done && <span className="sr-only">Done: </span>}
            {it.text}
          </span>
        </li>
      ))}
    </ol>
  );
}
