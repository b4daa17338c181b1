// The YAML language worker (monaco-yaml), bundled by Vite as a worker of its own (no CDN).
import 'monaco-yaml/yaml.worker.js';
