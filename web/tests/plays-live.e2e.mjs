// A show from the Studio's broadcaster, live, on its own /live/{id} page in headless
// Chromium: the player plays it (time advances, the picture has a size), no page error.
// Run by tests/tests/page.rs, which starts the stack and the show and passes:
//   FEZA_BASE, FEZA_SHOW_ID
import { openShowPage } from "./show-page.mjs";

const base = process.env.FEZA_BASE;
const id = process.env.FEZA_SHOW_ID;

const { browser, page, errors } = await openShowPage(base, id, { logConsole: true });
try {
  const state = () => page.evaluate(() => {
    const v = document.querySelector("#player");
    return v && { time: v.currentTime, ready: v.readyState, width: v.videoWidth, error: v.error && v.error.message };
  });
  try {
    // Playing: past 3 s, with a picture there to show (all three seen at once).
    await page.waitForFunction(() => {
      const v = document.querySelector("#player");
      return v && v.currentTime > 3 && v.readyState >= 2 && v.videoWidth > 0;
    }, null, { timeout: 30000 });
  } catch (e) {
    throw new Error(`the live show did not play: ${JSON.stringify(await state())}`);
  }
  const played = await state();
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log(`PASS: the live show plays (${JSON.stringify(played)})`);
} finally {
  await browser.close();
}
