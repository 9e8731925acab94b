// The layering rule on the real tasks/ (README "Code layout"): no import cycle, no import from a lower layer up,
// fabfile.ts through the public entry only. The checker is shown to catch each kind of violation on a scratch tree.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { formatReport, importGraph } from '../helpers/import-graph.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const scratch = mkdtempSync(path.join(tmpdir(), 'slipway-layers-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function tree(name: string, files: Record<string, string>): string {
  const root = path.join(scratch, name);
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    writeFileSync(path.join(root, file), text);
  }
  return root;
}

describe('layers', () => {
  it(
    'tasks/ has no cycle, no upward import, no file outside a layer, ' + 'and fabfile.ts imports only tasks/index.ts',
    () => {
      const report = importGraph(ROOT);
      const { lines, violations } = formatReport(report);
      expect(lines.slice(1, -1)).toEqual([]);
      expect(violations).toBe(0);
      expect(report.files).toContain('tasks/index.ts');
      expect(report.edges.filter((e) => e.from === 'fabfile.ts')).toEqual([
        { from: 'fabfile.ts', to: 'tasks/index.ts' },
      ]);
    },
  );

  it('the checker catches a cycle, an upward import (type-only and dynamic too) and an import past the entry', () => {
    const root = tree('bad', {
      'tasks/lib/a.ts': "import { b } from './b.js';\nexport const a = 1;\n",
      'tasks/lib/b.ts': "import { a } from './a.js';\nexport const b = 2;\n",
      'tasks/config/c.ts': "import type { S } from '../steps/s.js';\nconst m = import('../hosts/h.js');\n",
      'tasks/steps/s.ts': 'export type S = string;\n',
      'tasks/hosts/h.ts': 'export const h = 1;\n',
      'tasks/odd/o.ts': 'export const o = 1;\n',
      'tasks/index.ts': "export { a } from './lib/a.js';\n",
      'fabfile.ts': "import { s } from './tasks/steps/s.js';\n",
    });
    const { lines, violations } = formatReport(importGraph(root));
    expect(lines).toEqual(
      expect.arrayContaining([
        'CYCLE among tasks/lib/a.ts, tasks/lib/b.ts',
        'UPWARD: tasks/config/c.ts → tasks/steps/s.ts',
        'UPWARD: tasks/config/c.ts → tasks/hosts/h.ts',
        'NOT IN A LAYER: tasks/odd/o.ts',
        'PAST THE ENTRY: fabfile.ts → tasks/steps/s.ts (import tasks/index.ts instead)',
      ]),
    );
    expect(violations).toBe(5);
  });
});
