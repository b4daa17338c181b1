import './csp.ts';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './app/App.tsx';
import { startConnection } from './stores/connection.ts';
import { hydrateStores } from './stores/index.ts';
import './styles/app.css';

void startConnection(hydrateStores);

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
