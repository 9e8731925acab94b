// The import graph of tasks/**/*.ts and fabfile.ts, checked against the layering rule (README "Code layout"):
// no cycle, no import from a lower layer up, nothing outside tasks/ importing past the public entry.
// Relative imports only; type-only and dynamic import() edges count (each is still a dependency).
// Run directly for a report: `npx tsx test/helpers/import-graph.ts [root]` (exit 1 on any violation).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Directories under tasks/, lowest first; '.' is tasks/ itself (index.ts). fabfile.ts sits above them all. */
export const LAYERS = [
  'lib',
  'config',
  'lock',
  'release',
  'store',
  'scripts',
  'hosts',
  'fleet',
  'steps',
  'builtin',
  'cli',
  'init',
  '.',
  'bin',
];
export const ENTRY = 'tasks/index.ts';

export interface Edge {
  from: string;
  to: string;
}

export interface GraphReport {
  files: string[];
  edges: Edge[];
  /** Each group of files that import each other, round (a cycle); a file importing itself is a group of one. */
  cycles: string[][];
  upward: Edge[];
  /** Files in a directory that is not a layer. */
  outside: string[];
  /** Imports from outside tasks/ of anything but the entry. */
  pastEntry: Edge[];
  unresolved: string[];
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? walk(file) : name.endsWith('.ts') && !name.endsWith('.d.ts') ? [file] : [];
  });
}

const stripComments = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');

/** Every relative specifier a file imports or re-exports, statically, for its side effects or with import(). */
function specifiers(text: string): string[] {
  const code = stripComments(text);
  return [
    ...[...code.matchAll(/^[ \t]*(?:import|export)\s[^;]*?\sfrom\s*['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]!),
    ...[...code.matchAll(/^[ \t]*import\s*['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]!),
    ...[...code.matchAll(/\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)].map((m) => m[1]!),
  ];
}

export function layerOf(file: string, layers = LAYERS): number {
  if (file === 'fabfile.ts') return layers.length;
  const dir = path.posix.dirname(file.replace(/^tasks\//, ''));
  return layers.indexOf(dir === '.' ? '.' : dir.split('/')[0]!);
}

/** Tarjan's strongly connected components: each one of more than one file (or a self-import) holds a cycle. */
function cyclicGroups(files: string[], edges: Edge[]): string[][] {
  const next = new Map(files.map((f) => [f, edges.filter((e) => e.from === f).map((e) => e.to)]));
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const groups: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v)!) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const group: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      group.push(w);
    } while (w !== v);
    if (group.length > 1 || next.get(v)!.includes(v)) groups.push(group.sort());
  };
  for (const f of files) if (!index.has(f)) visit(f);
  return groups;
}

export function importGraph(root: string, layers = LAYERS, entry = ENTRY): GraphReport {
  const rel = (file: string) => path.relative(root, file).split(path.sep).join('/');
  const fabfile = path.join(root, 'fabfile.ts');
  const files = [...walk(path.join(root, 'tasks')), ...(existsSync(fabfile) ? [fabfile] : [])].map(rel).sort();
  const edges: Edge[] = [];
  const unresolved: string[] = [];
  for (const from of files) {
    for (const spec of specifiers(readFileSync(path.join(root, from), 'utf8'))) {
      const to = rel(path.resolve(path.dirname(path.join(root, from)), spec.replace(/\.js$/, '.ts')));
      if (!files.includes(to)) unresolved.push(`${from} → ${spec}`);
      else if (!edges.some((e) => e.from === from && e.to === to)) edges.push({ from, to });
    }
  }
  const placed = (e: Edge) => layerOf(e.from, layers) !== -1 && layerOf(e.to, layers) !== -1;
  return {
    files,
    edges,
    cycles: cyclicGroups(files, edges),
    upward: edges.filter((e) => placed(e) && layerOf(e.to, layers) > layerOf(e.from, layers)),
    outside: files.filter((f) => layerOf(f, layers) === -1),
    pastEntry: edges.filter((e) => !e.from.startsWith('tasks/') && e.to !== entry),
    unresolved,
  };
}

/** One line per violation and a summary line; empty violations mean the layering holds. */
export function formatReport(report: GraphReport, layers = LAYERS): { lines: string[]; violations: number } {
  const arrow = (e: Edge) => `${e.from} → ${e.to}`;
  const lines = [
    ...report.cycles.map((g) => `CYCLE among ${g.join(', ')}`),
    ...report.upward.map((e) => `UPWARD: ${arrow(e)}`),
    ...report.outside.map((f) => `NOT IN A LAYER: ${f}`),
    ...report.pastEntry.map((e) => `PAST THE ENTRY: ${arrow(e)} (import ${ENTRY} instead)`),
    ...report.unresolved.map((u) => `UNRESOLVED: ${u}`),
  ];
  const violations = lines.length;
  lines.unshift(
    `${report.files.length} files, ${report.edges.length} imports; ` +
      `layers (low → high): ${layers.join(' < ')} < fabfile.ts`,
  );
  lines.push(
    `${report.cycles.length} cycle(s), ${report.upward.length} upward import(s), ` +
      `${report.outside.length} file(s) outside the layers, ` +
      `${report.pastEntry.length} import(s) past the entry`,
  );
  return { lines, violations };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { lines, violations } = formatReport(importGraph(path.resolve(process.argv[2] ?? '.')));
  console.log(lines.join('\n'));
  process.exitCode = violations ? 1 : 0;
}
