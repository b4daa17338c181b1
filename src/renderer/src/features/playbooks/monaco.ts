/**
 * Monaco for playbooks, loaded on first use (its own chunk): the editor core with the YAML
 * language, monaco-yaml for validation, completion and hovers against the Ansible playbook JSON
 * schema shipped inside the app (schema/ansible-playbook.schema.json), YAML 1.1 as Ansible reads it,
 * Ansible's !unsafe and !vault tags. The workers are bundled by Vite; nothing is fetched from a CDN
 * and schema requests are off.
 */
import 'monaco-editor/esm/vs/basic-languages/yaml/yaml.contribution.js';
import { configureMonacoYaml } from 'monaco-yaml';
import { monaco, registerWorker } from '../../components/monaco/monaco.ts';
import YamlWorker from './yaml.worker.ts?worker';
import playbookSchema from './schema/ansible-playbook.schema.json';

// The app's one Monaco (components/monaco): the core and its editor worker are shared with every editor.
export { monaco, type MonacoNamespace } from '../../components/monaco/monaco.ts';

/** The model path every playbook editor uses: the schema applies to it. */
export const PLAYBOOK_GLOB = '**/playbook.yml';
export const SCHEMA_URI = 'fluid://schemas/ansible-playbook.json';

registerWorker('yaml', () => new YamlWorker());

// monaco-yaml (through monaco-worker-manager) still creates its worker the pre-0.53 way ({ moduleId,
// label, createData }); the full 'monaco-editor' entry adapts that call, the editor core alone does
// not (its createWebWorker wants the worker itself). The same adapter, for monaco-yaml's sake.
type LegacyWorkerOptions = {
  label?: string;
  createData?: unknown;
  host?: unknown;
  keepIdleModels?: boolean;
  worker?: unknown;
};
type CreateWebWorker = (o: LegacyWorkerOptions) => unknown;
const editorApi = monaco.editor as unknown as { createWebWorker: CreateWebWorker & { fluidLegacy?: true } };
if (!editorApi.createWebWorker.fluidLegacy) {
  const core = editorApi.createWebWorker;
  const adapted: CreateWebWorker & { fluidLegacy?: true } = (opts) => {
    if (opts.worker !== undefined) return core(opts);
    const env = (globalThis as { MonacoEnvironment?: { getWorker(id: string, label: string): Worker } })
      .MonacoEnvironment!;
    const worker = Promise.resolve(env.getWorker('workerMain.js', opts.label ?? 'editorWorkerService')).then(
      (w) => {
        w.postMessage('ignore');
        w.postMessage(opts.createData);
        return w;
      },
    );
    return core({ worker, host: opts.host, keepIdleModels: opts.keepIdleModels });
  };
  adapted.fluidLegacy = true;
  editorApi.createWebWorker = adapted;
}

configureMonacoYaml(monaco, {
  enableSchemaRequest: false,
  validate: true,
  hover: true,
  completion: true,
  format: { enable: false },
  yamlVersion: '1.1',
  customTags: ['!unsafe scalar', '!vault scalar'],
  schemas: [{ fileMatch: [PLAYBOOK_GLOB], uri: SCHEMA_URI, schema: playbookSchema as object }],
});
