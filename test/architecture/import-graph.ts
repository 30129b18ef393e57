/**
 * The import graph of src/, read from the sources' text: every `import … from`, `export …
 * from`, side-effect `import "…"` and `import("…")` with a relative specifier, type-only
 * ones included (a type cycle still ties two modules together). Paths are relative to the
 * repository, `.js` specifiers mapped to their `.ts` files.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");

const SPECIFIER = /(?:^|[\s;])(?:import|export)\s[^"'`;]*?\sfrom\s*["']([^"']+)["']|(?:^|[\s;])import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']\s*\)/gm;

function sourcesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourcesUnder(path);
    return e.name.endsWith(".ts") && !e.name.endsWith(".d.ts") ? [path] : [];
  });
}

/** Comments removed, so that an import shown in a comment does not count. */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/(^|[^:"'`])\/\/.*$/gm, "$1");
}

function specifiers(file: string): string[] {
  return [...code(readFileSync(file, "utf8")).matchAll(SPECIFIER)].map((m) => m[1] ?? m[2] ?? m[3]!);
}

/** module -> the packages it imports (`node:fs`, `@sinclair/typebox`; subpaths cut to the package). */
export function packageImports(): Map<string, string[]> {
  const imports = new Map<string, string[]>();
  for (const file of sourcesUnder(join(ROOT, "src"))) {
    const packages = specifiers(file)
      .filter((spec) => !spec.startsWith("."))
      .map((spec) => spec.split("/").slice(0, spec.startsWith("@") ? 2 : 1).join("/"));
    imports.set(relative(ROOT, file), [...new Set(packages)].sort());
  }
  return imports;
}

/** module -> the src modules it imports (outside src/, e.g. scripts/, and packages are left out). */
export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of sourcesUnder(join(ROOT, "src"))) {
    const from = relative(ROOT, file);
    const targets = new Set<string>();
    for (const spec of specifiers(file)) {
      if (!spec.startsWith(".")) continue;
      const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
      const rel = relative(ROOT, target);
      if (!rel.startsWith("src/")) continue;
      if (!existsSync(target)) throw new Error(`${from} imports ${spec}, which does not exist`);
      targets.add(rel);
    }
    graph.set(from, [...targets].sort());
  }
  return graph;
}

const NAMED = /(?:^|[\s;])(?:import|export)\s+(?:type\s+)?\{([^}]*)\}\s*from\s*["'](\.[^"']+)["']/gm;

/** The names `module` imports from `target` by name (`import { a, type B as C }` gives a, B), both relative to the repository. */
export function importedNames(module: string, target: string): string[] {
  const names: string[] = [];
  for (const m of code(readFileSync(join(ROOT, module), "utf8")).matchAll(NAMED)) {
    const rel = relative(ROOT, resolve(dirname(join(ROOT, module)), m[2]!.replace(/\.js$/, ".ts")));
    if (rel !== target) continue;
    for (const part of m[1]!.split(",")) {
      const name = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0]!;
      if (name !== "") names.push(name);
    }
  }
  return names;
}

/** Every cycle, each once, as the modules along it (Tarjan's strongly connected components). */
export function cycles(graph: Map<string, string[]>): string[][] {
  let index = 0;
  const indices = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    indices.set(v, index);
    low.set(v, index);
    index += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!indices.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, indices.get(w)!));
      }
    }
    if (low.get(v) === indices.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(component.sort());
    }
  };
  for (const v of graph.keys()) if (!indices.has(v)) visit(v);
  return out;
}

/** Every module `start` reaches through imports, itself included. */
export function reachable(graph: Map<string, string[]>, starts: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...starts];
  while (todo.length > 0) {
    const v = todo.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    todo.push(...(graph.get(v) ?? []));
  }
  return seen;
}
