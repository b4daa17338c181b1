import { Icon } from '../components/Icon.tsx';
import { href } from '../lib/route.ts';
import { useSystem } from '../stores/system.ts';
import { SECTIONS } from './sections.ts';

export function Nav({ current }: { current: string }) {
  const version = useSystem((s) => s.info?.version);
  return (
    <nav className="nav" aria-label="Sections">
      <div className="brand">
        <span className="brand-mark" aria-hidden="true">
          <svg viewBox="0 0 24 24" width="20" height="20">
            <path
              d="M4 15c3-5 6 3 9-2s4-6 7-4"
              fill="none"
              stroke="currentColor"
              strokeWidth="2.4"
              strokeLinecap="round"
            />
            <path
              d="M4 19.5c3-5 6 3 9-2s4-6 7-4"
              fill="none"
              stroke="currentColor"
              strokeWidth="2.4"
              strokeLinecap="round"
              opacity=".45"
            />
          </svg>
        </span>
        <span className="brand-name">Fluid</span>
      </div>
      <ul className="nav-list">
        {SECTIONS.map((s) => (
          <li key={s.id}>
            <a
              className={current === s.id ? 'nav-link active' : 'nav-link'}
              href={href(s.id)}
              aria-current={current === s.id ? 'page' : undefined}
            >
              <Icon name={s.icon} size={16} />
              <span>{s.label}</span>
            </a>
          </li>
        ))}
      </ul>
      <div className="nav-foot">{version ? `v${version}` : ''}</div>
    </nav>
  );
}
