import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { defaultTextOf, OPTION_SPECS } from "../../src/cli/config.js";
import { ERRORS } from "../../src/errors.js";

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

describe("operator documentation", () => {
  it("docs/configuration.md documents every option's config key, flag and environment variable", () => {
    const doc = read("docs/configuration.md");
    const missing = OPTION_SPECS.flatMap((s) => [`\`${s.key}\``, `\`${s.flag}\``, `\`${s.env}\``]).filter((name) => !doc.includes(name));
    assert.deepEqual(missing, []);
  });

  it("docs/configuration.md gives each option's declared default, as `tidings serve --help` shows it", () => {
    const rows = read("docs/configuration.md").split("\n");
    const wrong = OPTION_SPECS.flatMap((s) => {
      const cell = rows.find((l) => l.startsWith(`| \`${s.key}\` |`))?.split(" | ")[3]?.replaceAll("`", "");
      return cell?.startsWith(defaultTextOf(s)) ? [] : [`${s.key}: documented ${cell}, declared ${defaultTextOf(s)}`];
    });
    assert.deepEqual(wrong, []);
  });

  it("docs/errors.md documents every error code with its HTTP status", () => {
    const doc = read("docs/errors.md");
    const missing = Object.entries(ERRORS)
      .filter(([code, { status }]) => !new RegExp(`\\| \`${code}\` \\| ${status} \\|`).test(doc))
      .map(([code]) => code);
    assert.deepEqual(missing, []);
  });

  it("README.md and docs/ link to, and name, only files that exist", () => {
    const docs = (dir: string): string[] =>
      readdirSync(new URL(`../../${dir}`, import.meta.url), { withFileTypes: true }).flatMap((e) =>
        e.isDirectory() ? docs(`${dir}/${e.name}`) : e.name.endsWith(".md") ? [`${dir}/${e.name}`] : [],
      );
    const exists = (path: string) => existsSync(new URL(`../../${path}`, import.meta.url));
    const broken: string[] = [];
    for (const file of ["README.md", ...docs("docs")]) {
      const text = read(file);
      // Relative Markdown links, resolved from the file's folder.
      for (const [, target] of text.matchAll(/\]\(([^)#\s]+)(?:#[^)]*)?\)/g)) {
        if (!/^[a-z]+:/.test(target!) && !exists(normalize(join(dirname(file), target!)))) broken.push(`${file}: link ${target}`);
      }
      // Paths named in the text, from the root of the checkout ("see docs/changes.md").
      for (const [, path] of text.matchAll(/(?<![\w/.])((?:docs|src|test|examples|bench)\/[\w./-]+\.(?:md|ts|sql))/g)) {
        if (!exists(path!)) broken.push(`${file}: ${path}`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
