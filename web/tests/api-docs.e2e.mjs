// The API reference at /api/docs as an integrator sees it, in headless Chromium
// (Debian's, driven by playwright-core). Run by tests/tests/page.rs, which starts the
// server and passes FEZA_BASE (and FEZA_SCREENSHOT: where to save what the page shows).
import { chromium } from "playwright-core";

const base = process.env.FEZA_BASE;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(`error: ${e}`));
  page.on("console", (m) => { if (m.type() === "error") problems.push(`console: ${m.text()}`); });
  page.on("response", (r) => { if (r.status() >= 400) problems.push(`${r.status()} for ${r.url()}`); });
  const outside = [];
  page.on("request", (r) => { if (!r.url().startsWith(base) && !r.url().startsWith("data:")) outside.push(r.url()); });
  await page.goto(`${base}/api/docs`);
  // Every operation of the served document is listed, under its method and path.
  const doc = await (await fetch(`${base}/api/openapi.json`)).json();
  const expected = Object.entries(doc.paths).flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`));
  await page.locator(".opblock").nth(expected.length - 1).waitFor({ timeout: 20000 });
  const shown = await page.$$eval(".opblock-summary", (els) => els.map((e) =>
    `${e.querySelector(".opblock-summary-method").textContent.trim()} ${e.querySelector(".opblock-summary-path").getAttribute("data-path")}`));
  const missing = expected.filter((op) => !shown.includes(op));
  if (missing.length) throw new Error(`operations not shown: ${missing.join(", ")}`);
  console.log(`step: ${shown.length} operations shown, as in the document`);

  // An operation opens with its parameters and its declared answers.
  await page.locator("#operations-streams-create_stream .opblock-summary").click();
  await page.locator("#operations-streams-create_stream .responses-table").waitFor();
  const codes = await page.$$eval("#operations-streams-create_stream tr.response", (rows) => rows.map((r) => r.getAttribute("data-code")));
  for (const code of ["201", "400", "401", "413", "415"]) {
    if (!codes.includes(code)) throw new Error(`POST /api/streams shows answers ${codes}, not ${code}`);
  }
  console.log(`step: POST /api/streams opens with its answers ${codes.join(", ")}`);
  if (process.env.FEZA_SCREENSHOT) await page.screenshot({ path: process.env.FEZA_SCREENSHOT, fullPage: false });
  if (outside.length) throw new Error(`the page fetched from elsewhere: ${outside.join(", ")}`);
  if (problems.length) throw new Error(`the page reported: ${problems.join("; ")}`);
  console.log("PASS");
} finally {
  await browser.close();
}
