// A show from the Studio's broadcaster, live, on its own /live/{id} page in headless
// Chromium: the player plays it (time advances, the picture has a size), no page error.
// Run by tests/tests/page.rs, which starts the stack and the show and passes:
//   FEZA_BASE, FEZA_SHOW_ID
import { chromium } from "playwright-core";

const base = process.env.FEZA_BASE;
const id = process.env.FEZA_SHOW_ID;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => console.log(`page: ${m.type()}: ${m.text()}`));
  await page.goto(`${base}/live/${id}`);
  const state = () => page.evaluate(() => {
    const v = document.querySelector("#player");
    return v && { time: v.currentTime, ready: v.readyState, width: v.videoWidth, error: v.error && v.error.message };
  });
  try {
    await page.waitForFunction(() => document.querySelector("#player")?.currentTime > 3, null, { timeout: 30000 });
  } catch (e) {
    throw new Error(`the live show did not play: ${JSON.stringify(await state())}`);
  }
  const played = await state();
  if (!played.width) throw new Error(`playing, but no picture: ${JSON.stringify(played)}`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(`PASS: the live show plays (${JSON.stringify(played)})`);
} finally {
  await browser.close();
}
