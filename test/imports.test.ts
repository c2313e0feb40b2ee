// No import cycles: the folders form layers that only look down, and within a folder no two files
// need each other. The graph is every relative import and re-export (type-only ones too) of the
// TypeScript in src/ and the AssemblyScript in assembly/ and wasi/.

import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const FOLDERS = ['src', 'assembly', 'wasi'];

function sourceFiles(folder: string): string[] {
  return readdirSync(folder).flatMap((name) => {
    const path = join(folder, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

/** The files a file imports from, by relative specifier (`./x.ts`, or AssemblyScript's `./x`). */
function importsOf(file: string): string[] {
  const source = readFileSync(file, 'utf8');
  const specifiers = [...source.matchAll(/^\s*(?:import|export)\b[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm)].map(
    (m) => m[1],
  );
  return specifiers
    .filter((s) => s.startsWith('.'))
    .map((s) => resolve(dirname(file), s.endsWith('.ts') || s.endsWith('.js') || s.endsWith('.json') ? s : `${s}.ts`));
}

/** Every cycle's files, found by depth-first search (each cycle reported once, from where it was entered). */
function findCycles(graph: Map<string, string[]>): string[][] {
  const cycles: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    path.push(file);
    for (const next of graph.get(file) ?? []) {
      if (state.get(next) === 'open') cycles.push([...path.slice(path.indexOf(next)), next]);
      else if (!state.has(next)) visit(next);
    }
    path.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return cycles;
}

test('the cycle finder finds a cycle, and none in a chain (its control)', () => {
  const cycle = findCycles(
    new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]),
  );
  assert.equal(cycle, [['a', 'b', 'c', 'a']]);
  assert.equal(
    findCycles(
      new Map([
        ['a', ['b']],
        ['b', ['c']],
        ['d', ['b', 'c']],
      ]),
    ),
    [],
  );
});

test('no import cycle in src/, assembly/ or wasi/', () => {
  const files = FOLDERS.flatMap((folder) => sourceFiles(join(ROOT, folder)));
  const graph = new Map(files.map((file) => [file, importsOf(file)]));
  assert.ok(graph.size > 90 && [...graph.values()].flat().length > 250, 'the graph holds the imports');
  const cycles = findCycles(graph).map((cycle) => cycle.map((file) => relative(ROOT, file)).join(' -> '));
  assert.equal(cycles, []);
});

test.run();
