/**
 * Rows of the HTTP door: API tokens (only each secret's sha256 is kept) and the responses kept for
 * Idempotency-Key replays.
 */
export const API_MIGRATION = {
  name: 'api-tokens',
  sql: `
    CREATE TABLE api_tokens (
      id TEXT PRIMARY KEY,
      name TEXT NOT NULL,
      scope TEXT NOT NULL CHECK (scope IN ('agent','operator')),
      -- sha256 of the secret (hex); the secret itself is shown once and never stored.
      token_sha256 TEXT NOT NULL UNIQUE,
      prefix TEXT NOT NULL,
      created_at TEXT NOT NULL,
      created_by_door TEXT NOT NULL,
      created_by_id TEXT NOT NULL,
      last_used_at TEXT,
      -- When a use was last written to the audit log (the first use, then periodically).
      last_audited_at TEXT,
      revoked_at TEXT,
      revoked_by_door TEXT,
      revoked_by_id TEXT
    );
    -- One live token per name (the actor id is token:<name>).
    CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens(name) WHERE revoked_at IS NULL;
    -- A request sent again with the same Idempotency-Key gets the first response back.
    CREATE TABLE http_idempotency (
      token_id TEXT NOT NULL,
      key TEXT NOT NULL,
      method TEXT NOT NULL,
      path TEXT NOT NULL,
      body_sha256 TEXT NOT NULL,
      -- NULL while the first request runs.
      status INTEGER,
      headers TEXT,
      body TEXT,
      pid INTEGER NOT NULL,
      created_at TEXT NOT NULL,
      PRIMARY KEY (token_id, key)
    );
    CREATE INDEX http_idempotency_created ON http_idempotency(created_at);
  `,
};
