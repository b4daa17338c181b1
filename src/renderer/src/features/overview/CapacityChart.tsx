/** A host's memory and disk use over the sampled window: two lines on a 0–100 % scale. */
import type { CapacitySample } from '../../stores/capacity.ts';
import { describe } from './capacityText.ts';

const W = 240;
const H = 56;

function path(
  samples: CapacitySample[],
  pick: (s: CapacitySample) => number | null,
  t0: number,
  span: number,
) {
  let d = '';
  let pen = false;
  for (const s of samples) {
    const v = pick(s);
    if (v === null) {
      pen = false;
      continue;
    }
    const x = span ? ((s.at - t0) / span) * W : W;
    const y = H - (v / 100) * (H - 4) - 2;
    d += `${pen ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`;
    pen = true;
  }
  return d;
}

export function CapacityChart({ samples, label }: { samples: CapacitySample[]; label: string }) {
  const t0 = samples[0]?.at ?? 0;
  const span = (samples.at(-1)?.at ?? 0) - t0;
  const text = describe(samples);
  return (
    <figure className="capacity-chart" data-samples={samples.length}>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        preserveAspectRatio="none"
        role="img"
        aria-label={`${label}: ${text}`}
        className="capacity-svg"
      >
        <line x1="0" y1={H - 2} x2={W} y2={H - 2} className="grid" />
        <line x1="0" y1={H / 2} x2={W} y2={H / 2} className="grid" />
        <line x1="0" y1="2" x2={W} y2="2" className="grid" />
        {samples.length === 1 ? (
          <>
            {samples[0]!.memUsedPct !== null && (
              <circle
                cx={W - 3}
                cy={H - (samples[0]!.memUsedPct / 100) * (H - 4) - 2}
                r="2.5"
                className="mem"
              />
            )}
            {samples[0]!.diskUsedPct !== null && (
              <circle
                cx={W - 3}
                cy={H - (samples[0]!.diskUsedPct / 100) * (H - 4) - 2}
                r="2.5"
                className="disk"
              />
            )}
          </>
        ) : (
          <>
            <path d={path(samples, (s) => s.diskUsedPct, t0, span)} className="disk" />
            <path d={path(samples, (s) => s.memUsedPct, t0, span)} className="mem" />
          </>
        )}
      </svg>
      <figcaption className="capacity-legend small">
        <span className="key mem">memory</span> <span className="key disk">disk</span>
        <span className="muted">{text}</span>
      </figcaption>
    </figure>
  );
}
