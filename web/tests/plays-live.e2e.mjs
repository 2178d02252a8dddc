// A show from the Studio's broadcaster, live, on its own /live/{id} page in headless
// Chromium: the player plays it (time advances, the picture has a size), no page error.
// Then the seller ends and saves the show: the player says so over its last picture,
// and once the replay is ready offers it (not started by itself), which then plays.
// Run by tests/tests/page.rs, which starts the stack and the show and passes:
//   FEZA_BASE, FEZA_SHOW_ID, FEZA_PLAYING (a file this script creates once the show
//   plays, for the test to end the show)
import { writeFileSync } from "node:fs";
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
  const notice = () => page.evaluate(() => {
    const n = document.querySelector("[data-testid=player-notice]");
    return n && !n.hidden && n.getBoundingClientRect().height > 0 ? n.textContent : null;
  });
  if (await notice()) throw new Error(`a notice over a show that plays: ${await notice()}`);
  console.log(`the live show plays (${JSON.stringify(played)}); the seller ends it`);
  writeFileSync(process.env.FEZA_PLAYING, "");
  // Said at once, the replay's coming with it while it is uploaded and made.
  const said = [];
  for (let waited = 0; !said.at(-1)?.includes("replay is ready"); waited++) {
    if (waited > 240) throw new Error(`the replay was never offered (said: ${JSON.stringify(said)})`);
    const now = await notice();
    if (now && now !== said.at(-1)) said.push(now);
    await new Promise((r) => setTimeout(r, 250));
  }
  console.log(`said: ${JSON.stringify(said)}`);
  if (!said.every((s) => s.startsWith("This show has ended."))) throw new Error(`the end was not said first: ${JSON.stringify(said)}`);
  if (await page.evaluate(() => document.querySelector("[data-testid=say]").getBoundingClientRect().height > 0)) {
    throw new Error("the chat still takes comments on an ended show");
  }
  const offered = await page.evaluate(() => {
    const v = document.querySelector("#player");
    return { src: v.currentSrc, paused: v.paused, time: v.currentTime };
  });
  if (!offered.src.includes("/media/replays/") || !offered.paused) {
    throw new Error(`the replay is not offered as it should be: ${JSON.stringify(offered)}`);
  }
  await page.evaluate(() => document.querySelector("#player").play());
  try {
    await page.waitForFunction(() => document.querySelector("#player").currentTime > 1, null, { timeout: 20000 });
  } catch (e) {
    throw new Error(`the replay did not play: ${JSON.stringify(await state())}`);
  }
  if (await notice()) throw new Error(`a notice over the replay that plays: ${await notice()}`);
  if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
  console.log("PASS: the live show plays; its end is said, and its replay offered and played");
} finally {
  await browser.close();
}
