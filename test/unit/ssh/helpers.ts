import { SshCa, type ValidityLimits } from '../../../src/core/ssh/ca.ts';
import { SSH_CA_MIGRATION } from '../../../src/core/ssh/schema.ts';
import { openDatabase, type Db } from '../../../src/core/store/db.ts';
import { MemorySecretStore } from '../../../src/core/platform/secrets.ts';

/** A CA over an in-memory database and secret store. */
export function makeTestCa(validity?: ValidityLimits): { ca: SshCa; db: Db; secrets: MemorySecretStore } {
  const db = openDatabase(':memory:', [{ version: 1, ...SSH_CA_MIGRATION }]);
  const secrets = new MemorySecretStore();
  return { ca: new SshCa({ secrets, db, validity }), db, secrets };
}
