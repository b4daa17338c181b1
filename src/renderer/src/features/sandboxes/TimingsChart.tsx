/** A sandbox's creation phases as horizontal bars, in the order they ran, with their durations. */
import { formatDuration } from '../../lib/format.ts';

/** The order Fluid runs the phases in; anything unknown goes after, before the total. */
const ORDER = [
  'inspect',
  'admission',
  'network',
  'base',
  'reserve',
  'restore',
  'define',
  'boot',
  'identity',
  'egress',
  'ssh',
  'baseline',
];

const LABEL: Record<string, string> = {
  inspect: 'Inspect source',
  admission: 'Admission',
  network: 'Network',
  base: 'Base copy',
  reserve: 'Reserve address',
  restore: 'Restore template',
  define: 'Define VM',
  boot: 'Boot',
  identity: 'New identity',
  egress: 'Egress proxy',
  ssh: 'SSH login',
  baseline: 'Diff baseline',
};

export function TimingsChart({ timings }: { timings: Record<string, number> }) {
  const phases = Object.entries(timings)
    .filter(([k]) => k !== 'total')
    .sort(([a], [b]) => {
      const ia = ORDER.indexOf(a);
      const ib = ORDER.indexOf(b);
      return (ia < 0 ? ORDER.length : ia) - (ib < 0 ? ORDER.length : ib);
    });
  const total = timings.total ?? phases.reduce((n, [, v]) => n + v, 0);
  const max = Math.max(1, ...phases.map(([, v]) => v));
  if (!phases.length) return <p className="muted">No timings recorded.</p>;
  return (
    <table className="timings" aria-label="Creation timings">
      <tbody>
        {phases.map(([k, v]) => (
          <tr key={k} data-phase={k}>
            <th scope="row">{LABEL[k] ?? k}</th>
            <td className="timings-bar-cell">
              <div
                className={`timings-bar phase-${k}`}
                style={{ width: `${Math.max(0.5, (v / max) * 100)}%` }}
              />
            </td>
            <td className="num mono">{formatDuration(v)}</td>
            <td className="num muted small">{total ? `${Math.round((v / total) * 100)}%` : ''}</td>
          </tr>
        ))}
      </tbody>
      <tfoot>
        <tr>
          <th scope="row">Total</th>
          <td />
          <td className="num mono strong">{formatDuration(total)}</td>
          <td />
        </tr>
      </tfoot>
    </table>
  );
}
