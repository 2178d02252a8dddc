// A viewer's headless Chromium (Debian's) on one show's /live/{id} page, autoplay
// allowed; page errors are collected in `errors`, and with `logConsole` what the page
// logs is printed.
import { chromium } from "playwright-core";

export async function openShowPage(base, id, { logConsole = false } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  if (logConsole) page.on("console", (m) => console.log(`page: ${m.type()}: ${m.text()}`));
  await page.goto(`${base}/live/${id}`);
  return { browser, page, errors };
}
