/**
 * The soak's plot: one small line chart per measure against minutes, drawn as SVG and
 * rendered to PNG by headless Chromium (test/helpers/browser.ts), so that no chart library
 * is needed.
 */
import { writeFileSync } from "node:fs";
import { launchChromium } from "../../test/helpers/browser.js";

export interface Series {
  readonly title: string;
  readonly unit: string;
  /** [minutes, value] */
  readonly points: ReadonlyArray<readonly [number, number]>;
}

const W = 360;
const H = 170;
const PAD = { left: 48, right: 12, top: 26, bottom: 30 };

function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function escape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;");
}

function panel(s: Series, x0: number, y0: number): string {
  const xs = s.points.map((p) => p[0]);
  const xMax = Math.max(1, ...xs);
  const yMax = niceMax(Math.max(...s.points.map((p) => p[1])) * 1.1);
  const px = (x: number): number => x0 + PAD.left + (x / xMax) * (W - PAD.left - PAD.right);
  const py = (y: number): number => y0 + H - PAD.bottom - (y / yMax) * (H - PAD.top - PAD.bottom);
  const path = s.points.map((p, i) => `${i === 0 ? "M" : "L"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join(" ");
  const ticks = [0, 0.5, 1].map((f) => {
    const v = yMax * f;
    return `<line x1="${px(0)}" x2="${px(xMax)}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/><text x="${px(0) - 6}" y="${py(v) + 4}" text-anchor="end">${+v.toPrecision(3)}</text>`;
  });
  const xTicks = [0, xMax / 2, xMax].map((v) => `<text x="${px(v)}" y="${y0 + H - 12}" text-anchor="middle">${+v.toFixed(1)}</text>`);
  return `<g>
  <text x="${x0 + PAD.left}" y="${y0 + 16}" font-weight="bold">${escape(s.title)} (${escape(s.unit)})</text>
  ${ticks.join("\n  ")}
  ${xTicks.join("\n  ")}
  <path d="${path}" fill="none" stroke="#1f6feb" stroke-width="2"/>
</g>`;
}

/** An SVG of the series in two columns; the x axis is minutes since the start. */
export function chartSvg(title: string, series: readonly Series[]): string {
  const cols = 2;
  const rows = Math.ceil(series.length / cols);
  const width = cols * W;
  const height = rows * H + 40;
  const panels = series.map((s, i) => panel(s, (i % cols) * W, 40 + Math.floor(i / cols) * H));
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">
<rect width="100%" height="100%" fill="white"/>
<text x="12" y="24" font-size="14" font-weight="bold">${escape(title)}</text>
<text x="${width - 12}" y="24" text-anchor="end" fill="#666">x: minutes</text>
${panels.join("\n")}
</svg>`;
}

/** Renders `svg` to a PNG file at twice its size, for sharp text. */
export async function writePng(svg: string, path: string): Promise<void> {
  const browser = await launchChromium();
  try {
    const page = await browser.newPage({ deviceScaleFactor: 2 });
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`);
    const png = await page.locator("svg").screenshot({ type: "png" });
    writeFileSync(path, png);
  } finally {
    await browser.close();
  }
}
