import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { OPTION_SPECS } from "../../src/cli/config.js";
import { ERRORS } from "../../src/errors.js";

const read = (path: string): string => readFileSync(new URL(`../../${path}`, import.meta.url), "utf8");

describe("operator documentation", () => {
  it("docs/configuration.md documents every option's config key, flag and environment variable", () => {
    const doc = read("docs/configuration.md");
    const missing = OPTION_SPECS.flatMap((s) => [`\`${s.key}\``, `\`${s.flag}\``, `\`${s.env}\``]).filter((name) => !doc.includes(name));
    assert.deepEqual(missing, []);
  });

  it("docs/errors.md documents every error code with its HTTP status", () => {
    const doc = read("docs/errors.md");
    const missing = Object.entries(ERRORS)
      .filter(([code, { status }]) => !new RegExp(`\\| \`${code}\` \\| ${status} \\|`).test(doc))
      .map(([code]) => code);
    assert.deepEqual(missing, []);
  });
});
