/**
 * Loading tree-sitter-bash and turning its tree into plain objects.
 *
 * Walking web-tree-sitter `Node`s crosses into wasm on every property access, which is slow;
 * one pass with a TreeCursor copies what the policy needs (type, field, span, children) into
 * ordinary objects, and the wasm tree is freed at once.
 */
import { createRequire } from 'node:module';
import { Language, Parser, type TreeCursor } from 'web-tree-sitter';

export interface SNode {
  type: string;
  named: boolean;
  field: string | null;
  /** UTF-16 offsets into the source (web-tree-sitter parses JS strings as UTF-16). */
  start: number;
  end: number;
  missing: boolean;
  children: SNode[];
}

export interface ParsedScript {
  root: SNode;
  hasError: boolean;
}

export interface BashParser {
  parse(source: string): ParsedScript;
}

let loading: Promise<Parser> | null = null;

/** Resolve the wasm files as real paths so this works from the TS sources and from a bundle. */
function wasmPaths(): { runtime: string; bash: string } {
  const require = createRequire(import.meta.url);
  return {
    runtime: require.resolve('web-tree-sitter/web-tree-sitter.wasm'),
    bash: require.resolve('tree-sitter-bash/tree-sitter-bash.wasm'),
  };
}

async function load(): Promise<Parser> {
  const paths = wasmPaths();
  await Parser.init({ locateFile: () => paths.runtime });
  const language = await Language.load(paths.bash);
  const parser = new Parser();
  parser.setLanguage(language);
  return parser;
}

function convert(cursor: TreeCursor): SNode {
  const node: SNode = {
    type: cursor.nodeType,
    named: cursor.nodeIsNamed,
    field: cursor.currentFieldName,
    start: cursor.startIndex,
    end: cursor.endIndex,
    missing: cursor.nodeIsMissing,
    children: [],
  };
  if (cursor.gotoFirstChild()) {
    do node.children.push(convert(cursor));
    while (cursor.gotoNextSibling());
    cursor.gotoParent();
  }
  return node;
}

/** Load the grammar once per process; later calls share it. */
export async function loadBashParser(): Promise<BashParser> {
  loading ??= load();
  let parser: Parser;
  try {
    parser = await loading;
  } catch (err) {
    loading = null;
    throw err;
  }
  return {
    parse(source: string): ParsedScript {
      const tree = parser.parse(source);
      if (!tree) throw new Error('The shell parser returned no tree.');
      try {
        const cursor = tree.walk();
        try {
          return { root: convert(cursor), hasError: tree.rootNode.hasError };
        } finally {
          cursor.delete();
        }
      } finally {
        tree.delete();
      }
    },
  };
}
